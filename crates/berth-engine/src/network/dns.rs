//! The embedded DNS server of a user network: a `berth dns-server <network-id>` process
//! (detached like a monitor) listening on the network's gateway, port 53, answering for the
//! names, aliases and short IDs of the network's running containers and forwarding the rest
//! (to the asking container's `--dns` servers when it has them, to the host's otherwise).
//!
//! The first container start on the network spawns it; it exits by itself once no container
//! on the network runs (or the network is gone), and `network rm` stops it. Its `flock` on
//! `<runroot>/networks/<id>/lock` says whether one runs; a server that decides to exit lets
//! go of the lock before its last look, so a container starting at that moment either keeps
//! it alive or finds the lock free and starts a new one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_net::dns::{self, DnsServer, Records};
use rusqlite::Connection;

use super::Network;
use crate::container::sys::{self, LockAttempt, MonitorLock};
use crate::{EngineError, Result};

/// The run directory of a network's DNS server.
pub fn run_dir(runroot: &Path, network_id: &str) -> PathBuf {
    runroot.join("networks").join(network_id)
}

/// Starts the network's DNS server unless one runs; returns once it listens.
pub fn ensure_running(root: &Path, runroot: &Path, net: &Network) -> Result<()> {
    let dir = run_dir(runroot, &net.id);
    if MonitorLock::is_held(&dir) {
        return Ok(());
    }
    let io = |action: &'static str| {
        let path = dir.display().to_string();
        move |source| EngineError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(io("create"))?;
    let (mut mine, theirs) = sys::socket_pair().map_err(io("create a socket pair in"))?;
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let runroot = std::path::absolute(runroot).unwrap_or_else(|_| runroot.to_path_buf());
    let fd = theirs.as_raw_fd().to_string();
    let args: [&OsStr; 8] = [
        "--root".as_ref(),
        root.as_os_str(),
        "--runroot".as_ref(),
        runroot.as_os_str(),
        "dns-server".as_ref(),
        net.id.as_ref(),
        "--ready-fd".as_ref(),
        fd.as_ref(),
    ];
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    sys::spawn_detached(&exe, &args, &[theirs.as_raw_fd()])
        .map_err(io("start the DNS server in"))?;
    drop(theirs);
    let _ = mine.set_read_timeout(Some(Duration::from_secs(10)));
    let mut byte = [0u8; 1];
    match mine.read(&mut byte) {
        Ok(1) => Ok(()),
        _ => {
            // Lost a race with another starter, or could not bind: containers still run, only
            // name resolution on this network is missing.
            if !MonitorLock::is_held(&dir) {
                tracing::warn!(network = %net.name, "the network's DNS server did not start");
            }
            Ok(())
        }
    }
}

/// Stops the network's DNS server, if one runs.
pub fn stop(runroot: &Path, network_id: &str) {
    let dir = run_dir(runroot, network_id);
    if let Ok(pid) = std::fs::read_to_string(dir.join("pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            if MonitorLock::is_held(&dir) {
                sys::signal(pid, libc::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(5);
                while MonitorLock::is_held(&dir) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names of the network's running containers, re-read when the database changed.
struct NetworkRecords {
    conn: Connection,
    network_id: String,
    /// Whether unknown names are forwarded at all (not on an internal network).
    forwarding: bool,
    snapshot: RefCell<Snapshot>,
}

#[derive(Default)]
struct Snapshot {
    data_version: i64,
    loaded: bool,
    a: HashMap<String, Vec<Ipv4Addr>>,
    ptr: HashMap<Ipv4Addr, String>,
    /// The `--dns` servers of the containers that have their own, by their address here.
    upstreams: HashMap<Ipv4Addr, Vec<SocketAddr>>,
}

impl NetworkRecords {
    fn refresh(&self) {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap_or(-1);
        let mut snap = self.snapshot.borrow_mut();
        if snap.loaded && snap.data_version == version {
            return;
        }
        let mut fresh = Snapshot {
            data_version: version,
            loaded: true,
            ..Snapshot::default()
        };
        let rows = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.name, e.aliases, e.ip, json_extract(c.host_config, '$.Dns')
                 FROM endpoints e JOIN containers c ON c.id = e.container_id
                 WHERE e.network_id = ?1 AND e.ip IS NOT NULL",
            )
            .and_then(|mut stmt| {
                stmt.query_map([&self.network_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap_or_default();
        for (id, name, aliases, ip, dns) in rows {
            let Ok(ip) = ip.parse::<Ipv4Addr>() else {
                continue;
            };
            let servers: Vec<String> = dns
                .and_then(|dns| serde_json::from_str(&dns).ok())
                .unwrap_or_default();
            let upstreams: Vec<SocketAddr> = servers
                .iter()
                .filter_map(|server| server.parse::<IpAddr>().ok())
                .map(|server| SocketAddr::new(server, 53))
                .collect();
            if !upstreams.is_empty() {
                fresh.upstreams.insert(ip, upstreams);
            }
            let aliases: Vec<String> = serde_json::from_str(&aliases).unwrap_or_default();
            fresh.ptr.insert(ip, name.clone());
            for key in std::iter::once(name)
                .chain(aliases)
                .chain(std::iter::once(id[..12].to_string()))
            {
                fresh.a.entry(key.to_lowercase()).or_default().push(ip);
            }
        }
        *snap = fresh;
    }
}

/// Whether a container on the network runs (and the network still exists).
fn running_endpoints(conn: &Connection, network_id: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM endpoints WHERE network_id = ?1 AND ip IS NOT NULL)
                    AND EXISTS (SELECT 1 FROM networks WHERE id = ?1)",
        [network_id],
        |r| r.get(0),
    )
    .unwrap_or(false)
}

impl Records for NetworkRecords {
    fn lookup_a(&self, name: &str) -> Vec<Ipv4Addr> {
        self.refresh();
        let key = name.trim_end_matches('.').to_lowercase();
        self.snapshot
            .borrow()
            .a
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    fn lookup_ptr(&self, ip: Ipv4Addr) -> Option<String> {
        self.refresh();
        self.snapshot.borrow().ptr.get(&ip).cloned()
    }

    /// A container's `--dns`, as Docker's embedded server forwards to it. Loopback servers
    /// are the host's: this server runs in the host's namespace, as moby's forwards to
    /// loopback resolvers from the host's.
    fn upstreams_for(&self, client: IpAddr) -> Option<Vec<SocketAddr>> {
        let IpAddr::V4(client) = client else {
            return None;
        };
        if !self.forwarding {
            return None;
        }
        self.refresh();
        self.snapshot.borrow().upstreams.get(&client).cloned()
    }
}

/// `berth dns-server <network-id>`: serves until the network has no running container.
pub fn server_main(root: &Path, runroot: &Path, network_id: &str, ready_fd: Option<i32>) -> i32 {
    // SAFETY: the starter passed this descriptor to us and nothing else owns it.
    let mut ready =
        ready_fd.map(|fd| std::os::unix::net::UnixStream::from(unsafe { sys::adopt_fd(fd) }));
    let conn = match crate::monitor::open_db(root) {
        Ok(conn) => conn,
        Err(err) => {
            tracing::error!(%err, "dns-server: cannot open the database");
            return 1;
        }
    };
    let Ok(net) = super::resolve(&conn, network_id) else {
        return 1;
    };
    let Some(gateway) = net.gateway else {
        return 1;
    };
    let upstreams = if net.internal {
        Vec::new()
    } else {
        dns::upstreams_from_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        )
        .into_iter()
        .filter(|a| !a.ip().is_loopback())
        .collect()
    };
    let Ok(watch) = crate::monitor::open_db(root) else {
        return 1;
    };
    let dir = run_dir(runroot, network_id);
    let mut records = NetworkRecords {
        conn,
        network_id: net.id.clone(),
        forwarding: !net.internal,
        snapshot: RefCell::new(Snapshot::default()),
    };
    loop {
        let lock = match MonitorLock::try_take(&dir) {
            Ok(LockAttempt::Taken(lock)) => lock,
            _ => return 0,
        };
        let _ = std::fs::write(dir.join("pid"), std::process::id().to_string());
        let server = match DnsServer::bind(SocketAddr::from((gateway, 53)), upstreams.clone()) {
            Ok(server) => server,
            Err(err) => {
                tracing::error!(%err, "dns-server: cannot listen on {gateway}:53");
                return 1;
            }
        };
        if let Some(mut r) = ready.take() {
            let _ = r.write_all(b"1");
        }
        let mut next_check = Instant::now();
        let mut alive = true;
        let served = server.serve(&mut records, || {
            if Instant::now() >= next_check {
                alive = running_endpoints(&watch, network_id);
                next_check = Instant::now() + Duration::from_millis(500);
            }
            alive
        });
        drop(server);
        drop(lock);
        if let Err(err) = served {
            tracing::error!(%err, "dns-server failed");
            return 1;
        }
        if !running_endpoints(&watch, network_id) {
            return 0;
        }
    }
}
