//! Networks: the model behind `network create/ls/inspect/rm/connect`, `-p` and `--network`.
//!
//! Where to start reading:
//! - this file: the `networks`, `endpoints` and `port_mappings` tables and name resolution;
//! - [`bridge`]: a network's Linux bridge and nft table, created under a host-wide lock;
//! - [`endpoint`]: a container's network namespace, set up by its monitor before the
//!   container starts and torn down after its final exit (or by `rm -f` / reconcile);
//! - [`manage`]: the `network` verbs; [`dns`]: the embedded DNS server process;
//! - [`settings`]: what `inspect`, `ps` and `port` show.
//!
//! The mechanism (netlink, nft, IPAM arithmetic) is `berth_net`'s. An endpoint row exists
//! for each (container, network) attachment from `create`/`connect` on; its `ip` is the
//! lease, set while the container runs and NULL otherwise. The unique index on
//! `(network_id, ip)` is what makes handing one address to two live endpoints impossible,
//! whatever number of berth processes allocate at once.

pub mod bridge;
pub mod dns;
pub mod endpoint;
pub mod links;
pub mod manage;
pub mod settings;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use berth_net::ipam::Subnet;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{EngineError, Result};

/// The name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default bridge when daemon.json names none.
pub const DEFAULT_BRIDGE: &str = "berth0";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS networks (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    driver    TEXT NOT NULL,
    bridge    TEXT NOT NULL DEFAULT '',
    subnet    TEXT NOT NULL DEFAULT '',
    gateway   TEXT NOT NULL DEFAULT '',
    internal  INTEGER NOT NULL DEFAULT 0,
    labels    TEXT NOT NULL DEFAULT '{}',
    created   INTEGER NOT NULL,
    last_ip   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT NOT NULL,
    network_id   TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    aliases      TEXT NOT NULL DEFAULT '[]',
    requested_ip TEXT NOT NULL DEFAULT '',
    ip           TEXT,
    veth         TEXT NOT NULL DEFAULT '',
    attached     INTEGER NOT NULL,
    PRIMARY KEY (container_id, network_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS endpoints_lease ON endpoints(network_id, ip);
CREATE TABLE IF NOT EXISTS port_mappings (
    container_id   TEXT NOT NULL,
    proto          TEXT NOT NULL,
    container_port INTEGER NOT NULL,
    host_ip        TEXT NOT NULL,
    host_port      INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS network_rows_of_removed_containers AFTER DELETE ON containers
BEGIN
    DELETE FROM endpoints WHERE container_id = OLD.id;
    DELETE FROM port_mappings WHERE container_id = OLD.id;
END;
"#;

/// One network.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// The Linux bridge (bridge driver only).
    pub bridge: String,
    /// Chosen at `network create`, or when the default bridge is first needed.
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub created: i64,
}

impl Network {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Network> {
        let subnet: String = row.get(4)?;
        let gateway: String = row.get(5)?;
        let labels: String = row.get(7)?;
        Ok(Network {
            id: row.get(0)?,
            name: row.get(1)?,
            driver: row.get(2)?,
            bridge: row.get(3)?,
            subnet: subnet.parse().ok(),
            gateway: gateway.parse().ok(),
            internal: row.get(6)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            created: row.get(8)?,
        })
    }

    /// `bridge`, `host` and `none` exist in every installation and cannot be removed.
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), DEFAULT_NETWORK | "host" | "none")
    }

    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    /// Whether containers on it get an endpoint (a veth on its bridge).
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

const COLUMNS: &str = "id, name, driver, bridge, subnet, gateway, internal, labels, created";

/// Creates the network tables and the predefined networks if this database lacks them.
pub fn ensure_schema(conn: &Connection, root: &Path) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'networks'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Ok(());
    }
    let daemon = bridge::DaemonConfig::load(root)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(SCHEMA)?;
    let now = crate::container::now_nanos();
    for (name, driver, bridge) in [
        (DEFAULT_NETWORK, "bridge", daemon.bridge.as_str()),
        ("host", "host", ""),
        ("none", "null", ""),
    ] {
        tx.execute(
            "INSERT OR IGNORE INTO networks (id, name, driver, bridge, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![new_id(), name, driver, bridge, now],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// 64 random hex digits.
pub(crate) fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Docker's error for an unknown network.
pub fn not_found(name: &str) -> EngineError {
    EngineError::NotFound(format!("network {name} not found"))
}

/// The network `name_or_id` names: a name, a full ID, or a unique ID prefix.
pub fn resolve(conn: &Connection, name_or_id: &str) -> Result<Network> {
    if name_or_id.is_empty() {
        return Err(not_found(name_or_id));
    }
    if let Some(n) = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM networks WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1"),
            [name_or_id],
            Network::from_row,
        )
        .optional()?
    {
        return Ok(n);
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM networks WHERE substr(id, 1, ?2) = ?1 LIMIT 2"
    ))?;
    let found: Vec<Network> = stmt
        .query_map(
            params![name_or_id.to_ascii_lowercase(), name_or_id.len() as i64],
            Network::from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(not_found(name_or_id)),
        _ => Err(EngineError::InvalidArgument(format!(
            "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
            found.len()
        ))),
    }
}

/// Every network, by name.
pub fn load_all(conn: &Connection) -> Result<Vec<Network>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM networks ORDER BY name"))?;
    let nets = stmt
        .query_map([], Network::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(nets)
}

/// The network a container's `--network` names, when it is one containers join with an
/// endpoint (`none`, `host` and `container:…` are not).
pub fn mode_network(mode: &str) -> Option<&str> {
    match mode {
        "" | "default" | DEFAULT_NETWORK => Some(DEFAULT_NETWORK),
        "none" | "host" => None,
        m if m.starts_with("container:") => None,
        m => Some(m),
    }
}
