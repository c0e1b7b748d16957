//! A container's place on its networks: the pinned network namespace, one veth per
//! endpoint, the address lease, published ports, `/etc/hosts` and `/etc/resolv.conf`.
//!
//! [`setup`] runs in the container's monitor before the runtime creates the container (the
//! OCI spec joins `<runroot>/netns/<id>` by path), so the network is complete when the
//! container's first instruction runs, and the monitor holds the sockets that reserve the
//! published host ports for as long as the container lives. [`teardown`] runs after the
//! final exit (not between restarts), from `rm -f`, and from reconcile when a monitor died;
//! it is idempotent.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_net::files::{self, ResolvOptions};
use berth_net::firewall;
use berth_net::ipam::{self, Subnet};
use berth_net::netlink::Netlink;
use berth_net::netns;
use berth_net::ports::{ContainerPort, PortMapping, PortRequest, Proto};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::bridge::{self, net_err};
use super::{mode_network, resolve, Network};
use crate::container::state::{self, Container};
use crate::{EngineError, Result};

/// What a running container's monitor keeps: the sockets reserving its host ports.
#[derive(Default)]
pub struct Attachment {
    _reservations: Vec<OwnedFd>,
}

/// `--network-alias` and `--ip` of the container's first network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointOptions {
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
}

/// Where the container's network namespace is pinned.
pub fn netns_path(runroot: &Path, id: &str) -> PathBuf {
    runroot.join("netns").join(id)
}

/// One endpoint row.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub network_id: String,
    pub endpoint_id: String,
    pub aliases: Vec<String>,
    pub requested_ip: Option<Ipv4Addr>,
    pub ip: Option<Ipv4Addr>,
    pub veth: String,
}

/// The container's endpoints, in the order they were attached.
pub fn endpoints(conn: &Connection, id: &str) -> Result<Vec<Endpoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT network_id, endpoint_id, aliases, requested_ip, ip, veth FROM endpoints
         WHERE container_id = ?1 ORDER BY attached",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            let aliases: String = r.get(2)?;
            let requested: String = r.get(3)?;
            let ip: Option<String> = r.get(4)?;
            Ok(Endpoint {
                network_id: r.get(0)?,
                endpoint_id: r.get(1)?,
                aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                requested_ip: requested.parse().ok(),
                ip: ip.and_then(|ip| ip.parse().ok()),
                veth: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Records that container `id` joins `net` (at `create` or `connect`).
pub fn add_endpoint(
    conn: &Connection,
    id: &str,
    net: &Network,
    opts: &EndpointOptions,
) -> Result<()> {
    if !net.is_bridge() {
        return Ok(());
    }
    if net.is_default() && !opts.aliases.is_empty() {
        return Err(EngineError::InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    if let Some(ip) = opts.ip {
        if net.is_default() {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !net.subnet.is_some_and(|s| s.contains(ip)) || Some(ip) == net.gateway {
            return Err(EngineError::InvalidArgument(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO endpoints (container_id, network_id, endpoint_id, aliases, requested_ip, attached)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            net.id,
            super::new_id(),
            serde_json::to_string(&opts.aliases).expect("aliases serialise"),
            opts.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            crate::container::now_nanos()
        ],
    )?;
    if inserted == 0 {
        return Err(EngineError::Conflict(format!(
            "endpoint with name {} already exists in network {}",
            container_name(conn, id),
            net.name
        )));
    }
    Ok(())
}

fn container_name(conn: &Connection, id: &str) -> String {
    conn.query_row("SELECT name FROM containers WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .unwrap_or_else(|_| id.to_string())
}

/// The `create` hook: checks `--network` and records the container's first endpoint.
pub fn on_create(conn: &Connection, c: &Container, opts: &EndpointOptions) -> Result<()> {
    let mode = c.host_config.network_mode.as_str();
    if let Some(target) = mode.strip_prefix("container:") {
        state::resolve(conn, target)?;
        return Ok(());
    }
    match mode_network(mode) {
        Some(name) => add_endpoint(conn, &c.id, &resolve(conn, name)?, opts),
        None if opts.ip.is_some() || !opts.aliases.is_empty() => Err(EngineError::InvalidArgument(
            "network-scoped aliases and --ip are only supported for user-defined networks".into(),
        )),
        None => Ok(()),
    }
}

/// How the OCI spec joins the network: the namespace to enter by path, or `None` for the
/// host's.
pub fn spec_netns(conn: &Connection, runroot: &Path, c: &Container) -> Result<Option<PathBuf>> {
    let mode = c.host_config.network_mode.as_str();
    if mode == "host" {
        return Ok(None);
    }
    if let Some(target) = mode.strip_prefix("container:") {
        let other = state::resolve(conn, target)?;
        if !other.state.is_active() || other.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "cannot join network of a non running container: {}",
                other.id
            )));
        }
        let pin = netns_path(runroot, &other.id);
        return Ok(Some(if netns::exists(&pin) {
            pin
        } else {
            PathBuf::from(format!("/proc/{}/ns/net", other.pid))
        }));
    }
    Ok(Some(netns_path(runroot, &c.id)))
}

/// Sets up the container's network before it starts (see the module docs).
pub fn setup(conn: &Connection, root: &Path, runroot: &Path, c: &Container) -> Result<Attachment> {
    let dir = crate::container::container_dir(root, &c.id);
    let mode = c.host_config.network_mode.as_str();
    if mode == "host" {
        let host_resolv = host_file("/etc/resolv.conf");
        let h = &c.host_config;
        let resolv = if h.dns.is_empty() && h.dns_search.is_empty() && h.dns_options.is_empty() {
            host_resolv
        } else {
            files::resolv_conf(
                &host_resolv,
                &ResolvOptions {
                    host_network: true,
                    ..resolv_options(c)
                },
            )
        };
        write_files(&dir, &host_file("/etc/hosts"), &resolv)?;
        return Ok(Attachment::default());
    }
    if let Some(target) = mode.strip_prefix("container:") {
        let other = state::resolve(conn, target)?;
        let other_dir = crate::container::container_dir(root, &other.id);
        write_files(
            &dir,
            &host_file(other_dir.join("hosts")),
            &host_file(other_dir.join("resolv.conf")),
        )?;
        return Ok(Attachment::default());
    }
    let result = setup_namespace(conn, root, runroot, c, &dir);
    if result.is_err() {
        if let Err(err) = teardown(conn, runroot, &c.id) {
            tracing::warn!(%err, "failed to clean up a failed network setup");
        }
    }
    result
}

fn host_file(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn write_files(dir: &Path, hosts: &str, resolv: &str) -> Result<()> {
    for (name, text) in [("hosts", hosts), ("resolv.conf", resolv)] {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| EngineError::Io {
            action: "write",
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

fn setup_namespace(
    conn: &Connection,
    root: &Path,
    runroot: &Path,
    c: &Container,
    dir: &Path,
) -> Result<Attachment> {
    let pin = netns_path(runroot, &c.id);
    // A pin left by a monitor that was killed belongs to no running container.
    netns::remove(&pin).map_err(|e| net_err("remove a stale network namespace", e))?;
    let ns = netns::create(&pin).map_err(|e| net_err("create the network namespace", e))?;
    let mut inside = ns.netlink;
    inside
        .set_link(1, None, None)
        .map_err(|e| net_err("bring up loopback", e))?;

    let mut host_nl = Netlink::open().map_err(|e| net_err("open netlink", e))?;
    let owner = bridge::port_owner(root);
    let mut own: Option<(Ipv4Addr, Network, Vec<String>)> = None;
    let mut embedded_dns = None;
    let mut routed = false;
    for (k, ep) in endpoints(conn, &c.id)?.into_iter().enumerate() {
        let net = bridge::ensure(conn, root, &resolve(conn, &ep.network_id)?)?;
        let ip = lease(conn, &net, &ep, &c.id)?;
        let veth = plug(
            &owner,
            &mut host_nl,
            &mut inside,
            &ns.file,
            &net,
            (ip, endpoint_mac(&c.config.mac_address, k, ip)),
            k,
            &mut routed,
        )?;
        conn.execute(
            "UPDATE endpoints SET veth = ?3 WHERE container_id = ?1 AND network_id = ?2",
            params![c.id, net.id, veth],
        )?;
        if !net.is_default() && embedded_dns.is_none() {
            embedded_dns = net.gateway;
            super::dns::ensure_running(root, runroot, &net)?;
        }
        if own.is_none() {
            own = Some((ip, net, ep.aliases));
        }
    }

    let mut attachment = Attachment::default();
    if let Some((ip, net, _)) = own.as_ref().filter(|(_, n, _)| !n.internal) {
        attachment._reservations = publish(conn, c, net, *ip)?;
    }
    let mut extra = extra_hosts(c, own.as_ref().and_then(|(_, n, _)| n.gateway))?;
    extra.extend(super::links::hosts_entries(&super::links::resolve(
        conn, c,
    )?));
    let hostname = c.config.hostname.as_str();
    // Docker's line for the container's own name has `host.domain host` with a domain name.
    let own_names = match c.config.domainname.as_str() {
        "" => hostname.to_string(),
        domain => format!("{hostname}.{domain} {hostname}"),
    };
    let mut names: Vec<&str> = vec![&own_names];
    if let Some((_, net, aliases)) = &own {
        if !net.is_default() {
            names.extend(aliases.iter().map(String::as_str));
        }
    }
    let hosts = files::hosts(
        own.as_ref().map(|(ip, _, _)| (*ip, own_names.as_str())),
        &names,
        &extra,
    );
    // On a user network `--dns` is not the container's resolver but the embedded server's
    // upstream for this container (see `dns`).
    let resolv = files::resolv_conf(
        &host_file("/etc/resolv.conf"),
        &ResolvOptions {
            embedded: embedded_dns,
            ..resolv_options(c)
        },
    );
    write_files(dir, &hosts, &resolv)?;
    Ok(attachment)
}

/// The container's `--dns`, `--dns-search` and `--dns-option`.
fn resolv_options(c: &Container) -> ResolvOptions<'_> {
    ResolvOptions {
        nameservers: &c.host_config.dns,
        search: &c.host_config.dns_search,
        options: &c.host_config.dns_options,
        ..ResolvOptions::default()
    }
}

/// `--add-host name:ip` (`host-gateway`: the network's gateway).
fn extra_hosts(c: &Container, gateway: Option<Ipv4Addr>) -> Result<Vec<(String, IpAddr)>> {
    c.host_config
        .extra_hosts
        .iter()
        .map(|entry| {
            let (name, ip) = entry.split_once([':', '=']).unwrap_or((entry, ""));
            let ip = match ip {
                "host-gateway" => gateway.map(IpAddr::V4),
                ip => ip.trim_matches(['[', ']']).parse().ok(),
            }
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!("invalid IP address in add-host: {entry:?}"))
            })?;
            Ok((name.to_string(), ip))
        })
        .collect()
}

/// The MAC of a container's `k`th endpoint: its `--mac-address` on the first, else the
/// one Docker derives from the address.
pub fn endpoint_mac(requested: &str, k: usize, ip: Ipv4Addr) -> [u8; 6] {
    Some(requested)
        .filter(|_| k == 0)
        .and_then(ipam::parse_mac)
        .unwrap_or_else(|| ipam::mac_for(ip))
}

/// Takes an address of `net` for the endpoint: the requested one, or the next free one.
pub(super) fn lease(conn: &Connection, net: &Network, ep: &Endpoint, id: &str) -> Result<Ipv4Addr> {
    let subnet = net.subnet.expect("ensured networks have a subnet");
    let conn_tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let taken: BTreeSet<Ipv4Addr> = {
        let mut stmt = conn_tx.prepare(
            "SELECT ip FROM endpoints WHERE network_id = ?1 AND ip IS NOT NULL AND container_id != ?2",
        )?;
        let ips: Vec<String> = stmt
            .query_map(params![net.id, id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ips.iter()
            .filter_map(|ip| ip.parse().ok())
            .chain(net.gateway)
            .collect()
    };
    let ip = match ep.requested_ip {
        Some(ip) if taken.contains(&ip) => {
            return Err(EngineError::Conflict(format!(
                "Address already in use: {ip} on network {}",
                net.name
            )))
        }
        Some(ip) => ip,
        None => {
            let last: Option<String> = conn_tx
                .query_row(
                    "SELECT last_ip FROM networks WHERE id = ?1",
                    [&net.id],
                    |r| r.get(0),
                )
                .optional()?;
            let last = last.and_then(|l| l.parse().ok());
            ipam::next_free(subnet, &taken, last).ok_or_else(|| {
                EngineError::Conflict(format!(
                    "no available IPv4 addresses on network {}",
                    net.name
                ))
            })?
        }
    };
    conn_tx.execute(
        "UPDATE endpoints SET ip = ?3 WHERE container_id = ?1 AND network_id = ?2",
        params![id, net.id, ip.to_string()],
    )?;
    conn_tx.execute(
        "UPDATE networks SET last_ip = ?2 WHERE id = ?1",
        params![net.id, ip.to_string()],
    )?;
    conn_tx.commit()?;
    Ok(ip)
}

/// A veth pair: `veth…` on the bridge (labelled with the installation's
/// [`bridge::port_owner`]), `eth<k>` with `ip` and `mac` inside; the first endpoint on a network that is
/// not internal gets the default route.
#[allow(clippy::too_many_arguments)]
pub(super) fn plug(
    owner: &str,
    host_nl: &mut Netlink,
    inside: &mut Netlink,
    ns_file: &OwnedFd,
    net: &Network,
    (ip, mac): (Ipv4Addr, [u8; 6]),
    k: usize,
    routed: &mut bool,
) -> Result<String> {
    let subnet: Subnet = net.subnet.expect("ensured networks have a subnet");
    let bridge_index = host_nl
        .link_index(&net.bridge)
        .map_err(|e| net_err("look up the bridge", e))?
        .ok_or_else(|| EngineError::Conflict(format!("bridge {} is missing", net.bridge)))?;
    let rand: u32 = rand::random();
    let veth = format!("veth{:07x}", rand & 0x0fff_ffff);
    let peer = format!("eth{k}");
    use std::os::fd::AsFd;
    host_nl
        .create_veth(&veth, &peer, ns_file.as_fd())
        .map_err(|e| net_err("create the veth pair", e))?;
    let host_index = host_nl
        .link_index(&veth)
        .map_err(|e| net_err("look up the veth", e))?
        .ok_or_else(|| EngineError::Conflict(format!("veth {veth} vanished")))?;
    host_nl
        .attach_to_bridge(host_index, bridge_index, owner)
        .map_err(|e| net_err("attach the veth to the bridge", e))?;
    host_nl
        .set_hairpin(host_index)
        .map_err(|e| net_err("set hairpin mode", e))?;
    let peer_index = inside
        .link_index(&peer)
        .map_err(|e| net_err("look up the container interface", e))?
        .ok_or_else(|| EngineError::Conflict(format!("{peer} is missing in the container")))?;
    inside
        .set_link(peer_index, Some(mac), None)
        .map_err(|e| net_err("bring up the container interface", e))?;
    inside
        .add_address(peer_index, ip, subnet.prefix())
        .map_err(|e| net_err("set the container address", e))?;
    if !net.internal && !*routed {
        if let Some(gateway) = net.gateway {
            inside
                .add_default_route(gateway)
                .map_err(|e| net_err("add the default route", e))?;
            *routed = true;
        }
    }
    Ok(veth)
}

/// The container's requested publications: `-p`, and with `-P` every exposed port not
/// already published, on a random host port.
pub fn requested_ports(c: &Container) -> Result<Vec<PortRequest>> {
    let mut requests = Vec::new();
    for (port, bindings) in &c.host_config.port_bindings {
        for b in bindings {
            let spec = format!("{}:{}:{port}", b.host_ip, b.host_port);
            requests.extend(
                berth_net::ports::parse_publish(&spec).map_err(EngineError::InvalidArgument)?,
            );
        }
    }
    if c.host_config.publish_all_ports {
        for key in c.config.exposed_ports.keys() {
            let port: ContainerPort = key.parse().map_err(EngineError::InvalidArgument)?;
            if !requests.iter().any(|r| r.container == port) {
                requests.push(PortRequest {
                    container: port,
                    host_ip: None,
                    host_ports: (0, 0),
                });
            }
        }
    }
    Ok(requests)
}

/// Reserves the host ports (a bound socket per port, which is also what makes a second
/// container or a host process asking for the same port fail) and installs the DNAT rules.
fn publish(conn: &Connection, c: &Container, net: &Network, ip: Ipv4Addr) -> Result<Vec<OwnedFd>> {
    let requests = requested_ports(c)?;
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::new();
    let mut mappings = Vec::new();
    for r in &requests {
        let (socket, port) = reserve(r)?;
        sockets.push(socket);
        mappings.push(PortMapping {
            container: r.container,
            host_ip: r.host_ip,
            host_port: port,
        });
    }
    let tx = conn.unchecked_transaction()?;
    for m in &mappings {
        tx.execute(
            "INSERT INTO port_mappings (container_id, proto, container_port, host_ip, host_port)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                c.id,
                m.container.proto.as_str(),
                m.container.port,
                m.host_ip_text(),
                m.host_port
            ],
        )?;
    }
    tx.commit()?;
    let subnet = net.subnet.expect("ensured networks have a subnet");
    firewall::apply(&firewall::port_rules(
        &c.id,
        &net.bridge,
        subnet,
        ip,
        &mappings,
    ))
    .map_err(|e| net_err("publish ports", e))?;
    Ok(sockets)
}

fn reserve(r: &PortRequest) -> Result<(OwnedFd, u16)> {
    let ip = r.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mut last_err = None;
    for port in r.host_ports.0..=r.host_ports.1 {
        let addr = SocketAddrV4::new(ip, port);
        let bound: std::io::Result<(OwnedFd, u16)> = match r.container.proto {
            Proto::Tcp => bind_tcp(addr),
            Proto::Udp => UdpSocket::bind(addr).and_then(|s| {
                let port = s.local_addr()?.port();
                Ok((s.into(), port))
            }),
        };
        match bound {
            Ok(found) => return Ok(found),
            Err(e) => last_err = Some(e),
        }
    }
    let err = last_err.expect("at least one port tried");
    let shown = if r.host_ports.0 == r.host_ports.1 {
        r.host_ports.0.to_string()
    } else {
        format!("{}-{}", r.host_ports.0, r.host_ports.1)
    };
    Err(EngineError::Conflict(
        if err.kind() == std::io::ErrorKind::AddrInUse {
            format!("driver failed programming external connectivity: Bind for {ip}:{shown} failed: port is already allocated")
        } else {
            format!("driver failed programming external connectivity: Bind for {ip}:{shown} failed: {err}")
        },
    ))
}

/// A TCP socket bound to `addr` and not listening: it holds the port and accepts nothing.
fn bind_tcp(addr: SocketAddrV4) -> std::io::Result<(OwnedFd, u16)> {
    use rustix::net::{bind, getsockname, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    bind(&fd, &addr)?;
    let local = SocketAddrV4::try_from(getsockname(&fd)?)
        .map_err(|_| std::io::Error::other("a non-IPv4 local address"))?;
    Ok((fd, local.port()))
}

/// The container's publications in force.
pub fn mappings(conn: &Connection, id: &str) -> Result<Vec<PortMapping>> {
    let mut stmt = conn.prepare_cached(
        "SELECT proto, container_port, host_ip, host_port FROM port_mappings WHERE container_id = ?1",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            let proto: String = r.get(0)?;
            let host_ip: String = r.get(2)?;
            Ok(PortMapping {
                container: ContainerPort {
                    port: r.get(1)?,
                    proto: proto.parse().unwrap_or(Proto::Tcp),
                },
                host_ip: host_ip
                    .parse()
                    .ok()
                    .filter(|ip: &Ipv4Addr| !ip.is_unspecified()),
                host_port: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rows = rows;
    rows.sort();
    Ok(rows)
}

/// Undoes [`setup`]: port rules, veths, the namespace pin, the leases. Keeps going past
/// failures and reports them all.
pub fn teardown(conn: &Connection, runroot: &Path, id: &str) -> Result<()> {
    let mut errors = Vec::new();
    let has_ports: bool = conn
        .query_row(
            "SELECT 1 FROM port_mappings WHERE container_id = ?1 LIMIT 1",
            [id],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if has_ports {
        if let Err(e) = firewall::apply(&firewall::delete_table_rules(&firewall::ports_table(id))) {
            errors.push(e.to_string());
        }
    }
    // Unpinning the namespace ends it, and the kernel's namespace cleanup deletes its veths
    // (and so their host ends) in the background: deleting a veth here instead costs 15–20 ms
    // of RTNL time on every container exit. Only veths whose namespace was already gone
    // (a crash between the two) are deleted by hand.
    let pin = netns_path(runroot, id);
    let pinned = netns::exists(&pin);
    if let Err(e) = netns::remove(&pin) {
        errors.push(format!("remove the network namespace: {e}"));
    }
    let veths: Vec<String> = endpoints(conn, id)?
        .into_iter()
        .map(|e| e.veth)
        .filter(|v| !v.is_empty())
        .collect();
    if !pinned && !veths.is_empty() {
        match Netlink::open() {
            Ok(mut nl) => {
                for veth in veths {
                    if let Err(e) = nl.delete_link(&veth) {
                        errors.push(format!("delete {veth}: {e}"));
                    }
                }
            }
            Err(e) => errors.push(format!("open netlink: {e}")),
        }
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM port_mappings WHERE container_id = ?1", [id])?;
    tx.execute(
        "UPDATE endpoints SET ip = NULL, veth = '' WHERE container_id = ?1",
        [id],
    )?;
    tx.commit()?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Conflict(format!(
            "failed to tear down the network of {id}: {}",
            errors.join("; ")
        )))
    }
}

/// The start path's hook: the OCI spec joins the namespace [`setup`] will make (or the
/// other container's, or the host's).
/// The links' variables go after the defaults and before the container's own, which win
/// (Docker's order).
fn add_link_env(links: &[super::links::Link], spec: &mut serde_json::Value) {
    let Some(env) = spec["process"]["env"].as_array_mut() else {
        return;
    };
    let key = |var: &str| var.split('=').next().unwrap_or("").to_string();
    let taken: BTreeSet<String> = env.iter().filter_map(|v| v.as_str()).map(key).collect();
    let mut at = env
        .iter()
        .position(|v| v.as_str().is_some_and(|v| v.starts_with("HOSTNAME=")))
        .map_or(0, |i| i + 1);
    if env
        .get(at)
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.starts_with("TERM="))
    {
        at += 1;
    }
    for var in links.iter().flat_map(super::links::env) {
        if !taken.contains(&key(&var)) {
            env.insert(at, serde_json::Value::String(var));
            at += 1;
        }
    }
}

pub fn join_in_spec(
    engine: &crate::Engine,
    c: &Container,
    spec: &mut serde_json::Value,
) -> Result<()> {
    let conn = engine.store().db().conn();
    add_link_env(&super::links::resolve(conn, c)?, spec);
    let netns = spec_netns(conn, engine.runroot(), c)?;
    let linux = &mut spec["linux"];
    let Some(namespaces) = linux["namespaces"].as_array_mut() else {
        return Ok(());
    };
    namespaces.retain(|n| n["type"] != "network");
    if let Some(path) = netns {
        namespaces
            .push(serde_json::json!({ "type": "network", "path": path.display().to_string() }));
    } else {
        crate::container::sysctl::drop_network_sysctls(linux);
    }
    Ok(())
}
