//! Docker's legacy container links, `--link NAME[:ALIAS]`: the linking container finds the
//! linked one in `/etc/hosts` under its alias, host name and name, and gets its address,
//! exposed ports and environment as `ALIAS_*` variables (moby's `daemon/links`).
//!
//! Links are stored as `NAME:ALIAS` and resolved by name at every start: the linked container must be running then, on a network
//! the linking container is on too.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use rusqlite::Connection;

use super::endpoint::endpoints;
use crate::container::state::{self, Container, ContainerState};
use crate::{EngineError, Result};

/// One resolved link: what the linking container learns of the linked one.
#[derive(Debug, Clone)]
pub struct Link {
    /// `/PARENT/ALIAS`, Docker's link name.
    pub name: String,
    pub alias: String,
    pub ip: Ipv4Addr,
    pub child_name: String,
    pub child_hostname: String,
    /// `KEY=VALUE`.
    pub child_env: Vec<String>,
    /// Exposed and published ports, `80/tcp`.
    pub child_ports: Vec<String>,
}

/// `--link NAME[:ALIAS]` as stored: `NAME:ALIAS`. The link's name in Docker's form depends
/// on the linking container's name, which a rename changes, so [`docker_form`] makes it when
/// shown.
pub fn normalize(link: &str) -> Result<String> {
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/');
    let alias = alias.trim_start_matches('/');
    if name.is_empty() || alias.is_empty() || alias.contains('/') || name.contains('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid link format: {link:?}"
        )));
    }
    Ok(format!("{name}:{alias}"))
}

/// A stored link as Docker's `HostConfig.Links` shows it: `/NAME:/PARENT/ALIAS`.
pub fn docker_form(stored: &str, parent: &str) -> String {
    let (name, alias) = split_stored(stored);
    format!("/{name}:/{parent}/{alias}")
}

/// Splits a stored link into the linked container's name and the alias.
fn split_stored(stored: &str) -> (&str, &str) {
    stored.split_once(':').unwrap_or((stored, stored))
}

/// Checks at create time that every linked container exists and is not the container itself.
pub fn check_exist(conn: &Connection, container: &Container) -> Result<()> {
    for stored in &container.host_config.links {
        let (name, _) = split_stored(stored);
        let child = state::resolve(conn, name).map_err(|e| {
            EngineError::NotFound(format!(
                "could not get container for {}: {e}",
                name.trim_start_matches('/')
            ))
        })?;
        if child.id == container.id {
            return Err(EngineError::InvalidArgument(
                "Cannot link to self".to_string(),
            ));
        }
    }
    Ok(())
}

/// The links of `container`, each to a running container on a network it shares with
/// `container`.
pub fn resolve(conn: &Connection, container: &Container) -> Result<Vec<Link>> {
    if container.host_config.links.is_empty() {
        return Ok(Vec::new());
    }
    let own_networks: BTreeSet<String> = endpoints(conn, &container.id)?
        .into_iter()
        .map(|ep| ep.network_id)
        .collect();
    container
        .host_config
        .links
        .iter()
        .map(|stored| {
            let (child_name, alias) = split_stored(stored);
            let name = format!("/{}/{alias}", container.name);
            let child = state::resolve(conn, child_name)?;
            if child.state != ContainerState::Running {
                return Err(EngineError::Conflict(format!(
                    "Cannot link to a non running container: /{} AS {name}",
                    child.name
                )));
            }
            let ip = endpoints(conn, &child.id)?
                .into_iter()
                .filter(|ep| own_networks.contains(&ep.network_id))
                .find_map(|ep| ep.ip)
                .ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "Cannot link to /{}, as it does not belong to the default network",
                        child.name
                    ))
                })?;
            Ok(Link {
                name,
                alias: alias.to_string(),
                ip,
                child_ports: child
                    .config
                    .exposed_ports
                    .keys()
                    .chain(child.host_config.port_bindings.keys())
                    .cloned()
                    .collect(),
                child_name: child.name,
                child_hostname: child.config.hostname,
                child_env: child.config.env,
            })
        })
        .collect()
}

/// The `/etc/hosts` entries: the alias, the linked container's host name and, when the alias
/// differs from it, its name.
pub fn hosts_entries(links: &[Link]) -> Vec<(String, IpAddr)> {
    links
        .iter()
        .map(|link| {
            let mut names = format!("{} {}", link.alias, link.child_hostname);
            if link.alias != link.child_name {
                names.push(' ');
                names.push_str(&link.child_name);
            }
            (names, IpAddr::V4(link.ip))
        })
        .collect()
}

/// A container port as `(number, protocol)`, for sorting as moby does: TCP first, then by
/// number.
fn port_of(key: &str) -> Option<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((port.parse().ok()?, proto.to_ascii_lowercase()))
}

/// The environment variables of one link (moby's `Link.ToEnv`).
pub fn env(link: &Link) -> Vec<String> {
    let alias = link.alias.to_ascii_uppercase().replace('-', "_");
    let ip = link.ip;
    let mut ports: Vec<(u16, String)> = link
        .child_ports
        .iter()
        .filter_map(|k| port_of(k))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ports.sort_by(|(pa, a), (pb, b)| (a != "tcp", a, pa).cmp(&(b != "tcp", b, pb)));

    let mut env = Vec::new();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
    }
    // A run of consecutive ports of one protocol also gets _START/_END variables, written
    // after the variables of the port that ends the run (moby's order).
    let range_env = |env: &mut Vec<String>, (start, proto): &(u16, String), end: u16| {
        let prefix = format!("{alias}_PORT_{start}_{}", proto.to_ascii_uppercase());
        env.push(format!("{prefix}_START={proto}://{ip}:{start}"));
        env.push(format!("{prefix}_PORT_START={start}"));
        env.push(format!("{prefix}_END={proto}://{ip}:{end}"));
        env.push(format!("{prefix}_PORT_END={end}"));
    };
    let mut run: Option<(&(u16, String), u16)> = None;
    for (i, port) in ports.iter().enumerate() {
        let (number, proto) = port;
        let prefix = format!("{alias}_PORT_{number}_{}", proto.to_ascii_uppercase());
        env.push(format!("{prefix}={proto}://{ip}:{number}"));
        env.push(format!("{prefix}_ADDR={ip}"));
        env.push(format!("{prefix}_PORT={number}"));
        env.push(format!("{prefix}_PROTO={proto}"));
        match run {
            Some((start, end)) if start.1 == *proto && *number == end + 1 => {
                run = Some((start, *number));
                if i + 1 < ports.len() {
                    continue;
                }
            }
            _ => {}
        }
        if let Some((start, end)) = run.filter(|(start, end)| start.0 != *end) {
            range_env(&mut env, start, end);
        }
        run = Some((port, *number));
    }
    env.push(format!("{alias}_NAME={}", link.name));
    for var in &link.child_env {
        let Some((key, value)) = var.split_once('=') else {
            continue;
        };
        // Set by builds, not meaningful to the linking container.
        if key == "HOME" || key == "PATH" {
            continue;
        }
        env.push(format!("{alias}_ENV_{key}={value}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_show_in_dockers_form() {
        let shown = |link| docker_form(&normalize(link).unwrap(), "web");
        assert_eq!(shown("db"), "/db:/web/db");
        assert_eq!(shown("db:data"), "/db:/web/data");
        assert_eq!(shown("/db:/data"), "/db:/web/data");
        for bad in [":x", "db:", "db:a/b", "a/b:c"] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    fn link(ports: &[&str], env: &[&str]) -> Link {
        Link {
            name: "/web/my-db".into(),
            alias: "my-db".into(),
            ip: Ipv4Addr::new(172, 17, 0, 2),
            child_name: "db".into(),
            child_hostname: "0123456789ab".into(),
            child_env: env.iter().map(|s| s.to_string()).collect(),
            child_ports: ports.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn env_matches_moby() {
        let env = env(&link(
            &["5432/tcp", "53/udp", "8000/tcp", "8001/tcp"],
            &["PATH=/bin", "PASSWORD=x=y", "HOME=/root"],
        ));
        assert_eq!(
            env,
            [
                "MY_DB_PORT=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_PORT_8000_TCP=tcp://172.17.0.2:8000",
                "MY_DB_PORT_8000_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_8000_TCP_PORT=8000",
                "MY_DB_PORT_8000_TCP_PROTO=tcp",
                "MY_DB_PORT_8001_TCP=tcp://172.17.0.2:8001",
                "MY_DB_PORT_8001_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_8001_TCP_PORT=8001",
                "MY_DB_PORT_8001_TCP_PROTO=tcp",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_8000_TCP_START=tcp://172.17.0.2:8000",
                "MY_DB_PORT_8000_TCP_PORT_START=8000",
                "MY_DB_PORT_8000_TCP_END=tcp://172.17.0.2:8001",
                "MY_DB_PORT_8000_TCP_PORT_END=8001",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PASSWORD=x=y",
            ]
        );
    }

    #[test]
    fn a_run_of_ports_at_the_end_gets_its_range() {
        let env = env(&link(&["81/tcp", "80/tcp"], &[]));
        assert_eq!(
            &env[env.len() - 5..],
            [
                "MY_DB_PORT_80_TCP_START=tcp://172.17.0.2:80",
                "MY_DB_PORT_80_TCP_PORT_START=80",
                "MY_DB_PORT_80_TCP_END=tcp://172.17.0.2:81",
                "MY_DB_PORT_80_TCP_PORT_END=81",
                "MY_DB_NAME=/web/my-db",
            ]
        );
    }

    #[test]
    fn hosts_names_alias_hostname_and_name() {
        assert_eq!(
            hosts_entries(&[link(&[], &[])]),
            [(
                "my-db 0123456789ab db".to_string(),
                IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2))
            )]
        );
    }
}
