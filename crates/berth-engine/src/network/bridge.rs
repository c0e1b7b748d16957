//! A network's Linux bridge, its address, sysctls and nft table.
//!
//! Several berth installations (roots) may share one host, so the choice of a subnet and the
//! creation of a bridge happen under a host-wide `flock`: a subnet is free when no host
//! route, no host address and no network of this installation overlaps it.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use berth_net::firewall;
use berth_net::ipam::{self, Subnet};
use berth_net::netlink::Netlink;
use rusqlite::{params, Connection};

use super::{load_all, Network};
use crate::{EngineError, Result};

/// The host-wide lock around subnet choice and bridge creation.
const HOST_LOCK: &str = "/run/lock/berth-network.lock";

/// `<root>/daemon.json`: Docker's `bridge` and `bip` keys.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub bridge: String,
    /// The default bridge's address and subnet, e.g. `172.30.0.1/16`.
    pub bip: Option<(Subnet, Ipv4Addr)>,
}

impl DaemonConfig {
    pub fn load(root: &Path) -> Result<DaemonConfig> {
        let path = root.join("daemon.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(EngineError::Io {
                    action: "read",
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let doc: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| {
                EngineError::InvalidArgument(format!("invalid {}: {e}", path.display()))
            })?
        };
        let bridge = doc["bridge"].as_str().unwrap_or(super::DEFAULT_BRIDGE);
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid bridge name in {}: {bridge:?}",
                path.display()
            )));
        }
        let bip = doc["bip"]
            .as_str()
            .map(Subnet::parse_with_host)
            .transpose()
            .map_err(EngineError::InvalidArgument)?;
        Ok(DaemonConfig {
            bridge: bridge.to_string(),
            bip,
        })
    }
}

/// Holds the host-wide network lock while alive.
pub struct HostLock {
    _file: File,
}

impl HostLock {
    pub fn take() -> Result<HostLock> {
        let io_err = |source| EngineError::Io {
            action: "lock",
            path: HOST_LOCK.into(),
            source,
        };
        let _ = std::fs::create_dir_all("/run/lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(HOST_LOCK)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        Ok(HostLock { _file: file })
    }
}

pub(crate) fn net_err(what: &str, err: io::Error) -> EngineError {
    EngineError::Conflict(format!("failed to {what}: {err}"))
}

/// A subnet for a new network: the first of Docker's pools that overlaps nothing on the host
/// and no network of this installation. Call with the host lock held.
pub fn free_subnet(conn: &Connection, nl: &mut Netlink) -> Result<Subnet> {
    let mut taken = nl.routes().map_err(|e| net_err("list routes", e))?;
    taken.extend(
        nl.addresses()
            .map_err(|e| net_err("list addresses", e))?
            .into_iter()
            .map(|(_, ip, prefix)| Subnet::new(ip, prefix)),
    );
    taken.extend(load_all(conn)?.into_iter().filter_map(|n| n.subnet));
    ipam::free_pool(&taken).ok_or_else(|| {
        EngineError::Conflict(
            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
        )
    })
}

/// Whether `subnet` overlaps anything on the host or another network here.
pub fn check_free(conn: &Connection, nl: &mut Netlink, subnet: Subnet) -> Result<()> {
    let routes = nl.routes().map_err(|e| net_err("list routes", e))?;
    let mine = load_all(conn)?.into_iter().filter_map(|n| n.subnet);
    if routes.into_iter().chain(mine).any(|s| s.overlaps(&subnet)) {
        return Err(EngineError::Conflict(
            "Pool overlaps with other one on this address space".into(),
        ));
    }
    Ok(())
}

/// Makes sure `net`'s bridge exists and is configured; returns the network with its subnet
/// and gateway (chosen now for a default network that has none yet). Fast when it exists.
pub fn ensure(conn: &Connection, root: &Path, net: &Network) -> Result<Network> {
    let mut nl = Netlink::open().map_err(|e| net_err("open netlink", e))?;
    if net.subnet.is_some()
        && nl
            .link_index(&net.bridge)
            .map_err(|e| net_err("look up the bridge", e))?
            .is_some()
    {
        return Ok(net.clone());
    }
    let _lock = HostLock::take()?;
    let mut net = super::resolve(conn, &net.id)?;
    let existing = nl
        .link_index(&net.bridge)
        .map_err(|e| net_err("look up the bridge", e))?;
    if net.subnet.is_none() {
        let daemon = DaemonConfig::load(root)?;
        let (subnet, gateway) = match (daemon.bip, existing) {
            (Some(bip), _) => bip,
            // A bridge left by an earlier life of this installation keeps its address.
            (None, Some(index)) => nl
                .addresses()
                .map_err(|e| net_err("list addresses", e))?
                .into_iter()
                .find(|(i, _, _)| *i == index)
                .map(|(_, ip, prefix)| (Subnet::new(ip, prefix), ip))
                .map_or_else(
                    || free_subnet(conn, &mut nl).map(|s| (s, s.first_host())),
                    Ok,
                )?,
            (None, None) => {
                let s = free_subnet(conn, &mut nl)?;
                (s, s.first_host())
            }
        };
        conn.execute(
            "UPDATE networks SET subnet = ?2, gateway = ?3 WHERE id = ?1",
            params![net.id, subnet.to_string(), gateway.to_string()],
        )?;
        net.subnet = Some(subnet);
        net.gateway = Some(gateway);
    }
    if existing.is_none() {
        create_link(&mut nl, &net)?;
    }
    Ok(net)
}

/// Creates and configures the bridge of `net` (subnet chosen). Call with the host lock held.
pub fn create_link(nl: &mut Netlink, net: &Network) -> Result<()> {
    let (Some(subnet), Some(gateway)) = (net.subnet, net.gateway) else {
        return Err(EngineError::Conflict(format!(
            "network {} has no subnet",
            net.name
        )));
    };
    let index = match nl.create_bridge(&net.bridge) {
        Ok(index) => index,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => nl
            .link_index(&net.bridge)
            .map_err(|e| net_err("look up the bridge", e))?
            .ok_or_else(|| net_err("create the bridge", e))?,
        Err(e) => return Err(net_err(&format!("create bridge {}", net.bridge), e)),
    };
    let configured = (|| -> io::Result<()> {
        nl.add_address(index, gateway, subnet.prefix())?;
        nl.set_link(index, None, None)?;
        firewall::set_sysctl("ip_forward", "1")?;
        // Published ports reached through 127.0.0.1 leave through the bridge with a loopback
        // source, which the kernel drops as martian unless the bridge allows it.
        firewall::set_sysctl(&format!("conf/{}/route_localnet", net.bridge), "1")?;
        firewall::apply(&firewall::network_rules(&net.bridge, subnet, net.internal))?;
        firewall::allow_forwarding(&net.bridge);
        Ok(())
    })();
    if let Err(e) = configured {
        let _ = remove_link(&net.bridge);
        return Err(net_err(&format!("configure bridge {}", net.bridge), e));
    }
    Ok(())
}

/// Longest interface alias the kernel keeps (IFALIASZ less the NUL).
const MAX_ALIAS: usize = 255;

/// The label this installation puts on the bridge ports of its containers: its absolute root,
/// or a digest of it when the path is too long for an interface alias.
pub fn port_owner(root: &Path) -> String {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let label = format!("berth {}", root.display());
    if label.len() <= MAX_ALIAS {
        return label;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    format!("berth sha256:{}", hex::encode(digest))
}

/// The ports of `bridge` that are not `owner`'s: another installation's containers (or
/// anything else plugged in by hand). Ports of this installation's removed containers may
/// linger while the kernel destroys their namespaces; they carry `owner` and do not count.
pub fn foreign_ports(bridge: &str, owner: &str) -> Result<Vec<String>> {
    let mut nl = Netlink::open().map_err(|e| net_err("open netlink", e))?;
    let Some(index) = nl
        .link_index(bridge)
        .map_err(|e| net_err("look up the bridge", e))?
    else {
        return Ok(Vec::new());
    };
    let ports = nl
        .bridge_ports(index)
        .map_err(|e| net_err(&format!("list the ports of {bridge}"), e))?;
    Ok(ports
        .into_iter()
        .filter(|(_, label)| label.as_deref() != Some(owner))
        .map(|(name, _)| name)
        .collect())
}

/// Removes the bridge, its nft table and its forwarding rules; anything already gone is fine.
pub fn remove_link(bridge: &str) -> Result<()> {
    let mut errors = Vec::new();
    match Netlink::open().and_then(|mut nl| nl.delete_link(bridge)) {
        Ok(()) => {}
        Err(e) => errors.push(format!("delete bridge {bridge}: {e}")),
    }
    if let Err(e) = firewall::apply(&firewall::delete_table_rules(&firewall::network_table(
        bridge,
    ))) {
        errors.push(e.to_string());
    }
    firewall::remove_forwarding(bridge);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Conflict(errors.join("; ")))
    }
}
