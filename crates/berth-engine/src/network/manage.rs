//! The `network` verbs: create, ls, inspect, rm, prune, connect, disconnect.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::ipam::{self, Subnet};
use berth_net::netlink::Netlink;
use berth_net::netns;
use rusqlite::params;
use serde_json::{json, Value};

use super::bridge::{self, net_err, HostLock};
use super::endpoint::{self, EndpointOptions};
use super::{load_all, resolve, Network};
use crate::container::state::{self, Container};
use crate::system::PruneFilter;
use crate::{Engine, EngineError, Result};

/// `network create` flags.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    pub name: String,
    pub driver: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// `network ls --filter` keys Docker knows.
const FILTER_KEYS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

impl Engine {
    fn db(&self) -> &rusqlite::Connection {
        self.store().db().conn()
    }

    /// Creates a user network and its bridge.
    pub fn create_network(&self, opts: &NetworkCreate) -> Result<Network> {
        let driver = if opts.driver.is_empty() {
            "bridge"
        } else {
            opts.driver.as_str()
        };
        if driver != "bridge" {
            return Err(EngineError::NotFound(format!(
                "plugin \"{driver}\" not found"
            )));
        }
        if opts.name.is_empty()
            || !opts
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(EngineError::InvalidArgument(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                opts.name
            )));
        }
        if resolve(self.db(), &opts.name).is_ok_and(|n| n.name == opts.name) {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                opts.name
            )));
        }
        if opts.gateway.is_some() && opts.subnet.is_none() {
            return Err(EngineError::InvalidArgument(
                "a gateway needs a --subnet".into(),
            ));
        }
        if let (Some(subnet), Some(gateway)) = (opts.subnet, opts.gateway) {
            if !subnet.contains(gateway) {
                return Err(EngineError::InvalidArgument(format!(
                    "no matching subnet for gateway {gateway}"
                )));
            }
        }
        let mut nl = Netlink::open().map_err(|e| net_err("open netlink", e))?;
        let _lock = HostLock::take()?;
        let subnet = match opts.subnet {
            Some(s) => {
                bridge::check_free(self.db(), &mut nl, s)?;
                s
            }
            None => bridge::free_subnet(self.db(), &mut nl)?,
        };
        let id = loop {
            let id = super::new_id();
            if id[..12].bytes().any(|b| b.is_ascii_alphabetic()) {
                break id;
            }
        };
        let net = Network {
            bridge: format!("br-{}", &id[..12]),
            id,
            name: opts.name.clone(),
            driver: driver.into(),
            subnet: Some(subnet),
            gateway: Some(opts.gateway.unwrap_or_else(|| subnet.first_host())),
            internal: opts.internal,
            labels: opts.labels.clone(),
            created: crate::container::now_nanos(),
        };
        self.db().execute(
            "INSERT INTO networks (id, name, driver, bridge, subnet, gateway, internal, labels, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                net.id,
                net.name,
                net.driver,
                net.bridge,
                subnet.to_string(),
                net.gateway.map(|g| g.to_string()).unwrap_or_default(),
                net.internal,
                serde_json::to_string(&net.labels).expect("labels serialise"),
                net.created
            ],
        ).map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                EngineError::Conflict(format!("network with name {} already exists", net.name))
            }
            e => e.into(),
        })?;
        if let Err(err) = bridge::create_link(&mut nl, &net) {
            let _ = self
                .db()
                .execute("DELETE FROM networks WHERE id = ?1", [&net.id]);
            return Err(err);
        }
        self.network_event("create", &net, None);
        Ok(net)
    }

    pub fn network(&self, name_or_id: &str) -> Result<Network> {
        resolve(self.db(), name_or_id)
    }

    /// Networks matching Docker's `--filter key=value` flags, by name.
    pub fn list_networks(&self, filters: &[(String, String)]) -> Result<Vec<Network>> {
        for (k, _) in filters {
            if !FILTER_KEYS.contains(&k.as_str()) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{k}'"
                )));
            }
        }
        let nets = load_all(self.db())?;
        let mut out = Vec::new();
        for n in nets {
            let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
            keys.dedup();
            let mut ok = true;
            for key in keys {
                let hit = filters
                    .iter()
                    .filter(|(k, _)| k == key)
                    .any(|(_, v)| match key {
                        "name" => n.name.contains(v.as_str()),
                        "id" => n.id.starts_with(v.as_str()),
                        "driver" => n.driver == *v,
                        "scope" => v == "local",
                        "type" => (v == "builtin") == n.is_predefined(),
                        "label" => match v.split_once('=') {
                            Some((k, want)) => n.labels.get(k).is_some_and(|have| have == want),
                            None => n.labels.contains_key(v.as_str()),
                        },
                        "dangling" => {
                            let dangling = !n.is_predefined() && self.network_users(&n).is_empty();
                            matches!(v.as_str(), "true" | "1") == dangling
                        }
                        _ => false,
                    });
                ok &= hit;
            }
            if ok {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// IDs of the containers attached to `net`.
    fn network_users(&self, net: &Network) -> Vec<String> {
        let mut ids: Vec<String> = self
            .db()
            .prepare("SELECT container_id FROM endpoints WHERE network_id = ?1")
            .and_then(|mut s| s.query_map([&net.id], |r| r.get(0))?.collect())
            .unwrap_or_default();
        if let Ok(all) = state::load_all(self.db()) {
            ids.extend(
                all.into_iter()
                    .filter(|c| c.host_config.network_mode == net.name && !net.is_bridge())
                    .map(|c| c.id),
            );
        }
        ids
    }

    /// Docker's `network inspect` document.
    pub fn inspect_network(&self, net: &Network) -> Result<Value> {
        let mut containers = serde_json::Map::new();
        let mut stmt = self.db().prepare(
            "SELECT e.container_id, c.name, e.endpoint_id, e.ip,
                    coalesce(json_extract(c.config, '$.MacAddress'), ''),
                    (SELECT count(*) FROM endpoints f
                     WHERE f.container_id = e.container_id AND f.attached < e.attached)
             FROM endpoints e JOIN containers c ON c.id = e.container_id
             WHERE e.network_id = ?1 AND e.ip IS NOT NULL ORDER BY c.name",
        )?;
        type Row = (String, String, String, String, String, i64);
        let rows: Vec<Row> = stmt
            .query_map([&net.id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (id, name, endpoint, ip, requested_mac, k) in rows {
            let prefix = net.subnet.map_or(0, |s| s.prefix());
            let mac = ip
                .parse()
                .map(|ip| ipam::format_mac(endpoint::endpoint_mac(&requested_mac, k as usize, ip)))
                .unwrap_or_default();
            containers.insert(
                id,
                json!({
                    "Name": name, "EndpointID": endpoint, "MacAddress": mac,
                    "IPv4Address": format!("{ip}/{prefix}"), "IPv6Address": "",
                }),
            );
        }
        let config: Vec<Value> = match (net.subnet, net.gateway) {
            (Some(s), Some(g)) => {
                vec![json!({ "Subnet": s.to_string(), "Gateway": g.to_string() })]
            }
            _ => Vec::new(),
        };
        let mut options = serde_json::Map::new();
        if net.is_bridge() {
            options.insert("com.docker.network.bridge.name".into(), json!(net.bridge));
            if net.is_default() {
                options.insert(
                    "com.docker.network.bridge.default_bridge".into(),
                    json!("true"),
                );
            }
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                json!((!net.internal).to_string()),
            );
        }
        Ok(json!({
            "Name": net.name,
            "Id": net.id,
            "Created": crate::container::rfc3339(net.created),
            "Scope": "local",
            "Driver": net.driver,
            "EnableIPv6": false,
            "IPAM": { "Driver": "default", "Options": if net.is_default() { Value::Null } else { json!({}) }, "Config": config },
            "Internal": net.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": { "Network": "" },
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": net.labels,
        }))
    }

    /// Removes a user network that no container uses, with its bridge, nft table and DNS
    /// server.
    pub fn remove_network(&self, name_or_id: &str) -> Result<Network> {
        let net = resolve(self.db(), name_or_id)?;
        if net.is_predefined() {
            return Err(EngineError::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                net.name
            )));
        }
        if !self.network_users(&net).is_empty() {
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints",
                net.name, net.id
            )));
        }
        self.db()
            .execute("DELETE FROM networks WHERE id = ?1", [&net.id])?;
        super::dns::stop(self.runroot(), &net.id);
        let _lock = HostLock::take()?;
        bridge::remove_link(&net.bridge)?;
        self.network_event("destroy", &net, None);
        Ok(net)
    }

    /// Removes every user network no container uses (and `filter` matches); returns their
    /// names.
    pub fn prune_networks(&self, filter: &PruneFilter) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for net in load_all(self.db())? {
            if net.is_predefined()
                || !filter.matches(&net.labels, net.created)
                || !self.network_users(&net).is_empty()
            {
                continue;
            }
            self.remove_network(&net.id)?;
            removed.push(net.name);
        }
        Ok(removed)
    }

    /// Attaches a container to a network; a running one gets its interface at once.
    pub fn connect_network(
        &self,
        network: &str,
        container: &str,
        opts: &EndpointOptions,
    ) -> Result<()> {
        let net = resolve(self.db(), network)?;
        let c = self.container(container)?;
        if !net.is_bridge() || mode_is_exclusive(&c) {
            return Err(EngineError::Conflict(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        endpoint::add_endpoint(self.db(), &c.id, &net, opts)?;
        if c.state.is_active() {
            if let Err(err) = self.plug_running(&c, &net) {
                let _ = self.db().execute(
                    "DELETE FROM endpoints WHERE container_id = ?1 AND network_id = ?2",
                    params![c.id, net.id],
                );
                return Err(err);
            }
        }
        self.network_event("connect", &net, Some(&c.id));
        Ok(())
    }

    fn plug_running(&self, c: &Container, net: &Network) -> Result<()> {
        let net = bridge::ensure(self.db(), self.root(), net)?;
        let pin = endpoint::netns_path(self.runroot(), &c.id);
        let mut inside = netns::netlink_in(&pin)
            .map_err(|e| net_err("enter the container's network namespace", e))?;
        let ns_file =
            netns::open(&pin).map_err(|e| net_err("open the container's network namespace", e))?;
        let eps = endpoint::endpoints(self.db(), &c.id)?;
        let ep = eps
            .iter()
            .find(|e| e.network_id == net.id)
            .cloned()
            .expect("just added");
        let ip = endpoint::lease(self.db(), &net, &ep, &c.id)?;
        let mut host_nl = Netlink::open().map_err(|e| net_err("open netlink", e))?;
        let mut routed = true;
        let veth = endpoint::plug(
            &bridge::port_owner(self.root()),
            &mut host_nl,
            &mut inside,
            &ns_file,
            &net,
            (
                ip,
                endpoint::endpoint_mac(&c.config.mac_address, eps.len() - 1, ip),
            ),
            eps.len() - 1,
            &mut routed,
        )?;
        self.db().execute(
            "UPDATE endpoints SET veth = ?3 WHERE container_id = ?1 AND network_id = ?2",
            params![c.id, net.id, veth],
        )?;
        if !net.is_default() {
            super::dns::ensure_running(self.root(), self.runroot(), &net)?;
        }
        Ok(())
    }

    /// Detaches a container from a network (its interface goes at once if it runs).
    pub fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let net = resolve(self.db(), network)?;
        let c = match self.container(container) {
            Ok(c) => c,
            Err(_) if force => {
                self.db().execute("DELETE FROM endpoints WHERE network_id = ?1 AND substr(container_id, 1, length(?2)) = ?2", params![net.id, container])?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let ep = endpoint::endpoints(self.db(), &c.id)?
            .into_iter()
            .find(|e| e.network_id == net.id)
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "container {} is not connected to network {}",
                    c.id, net.name
                ))
            })?;
        if !ep.veth.is_empty() {
            Netlink::open()
                .and_then(|mut nl| nl.delete_link(&ep.veth))
                .map_err(|e| net_err("delete the veth", e))?;
        }
        self.db().execute(
            "DELETE FROM endpoints WHERE container_id = ?1 AND network_id = ?2",
            params![c.id, net.id],
        )?;
        self.network_event("disconnect", &net, Some(&c.id));
        Ok(())
    }

    /// Removes every network and the default bridge (`system reset`): containers must be gone.
    /// A bridge that another installation's containers are still plugged into (daemon.json
    /// may give several roots one `bridge`) stays, with its nft table and forwarding rules.
    pub fn reset_networks(&self) -> Result<()> {
        let mut errors = Vec::new();
        let owner = bridge::port_owner(self.root());
        for net in load_all(self.db())? {
            if !net.is_bridge() {
                continue;
            }
            super::dns::stop(self.runroot(), &net.id);
            let _lock = HostLock::take()?;
            match bridge::foreign_ports(&net.bridge, &owner) {
                Ok(ports) if ports.is_empty() => {
                    if let Err(e) = bridge::remove_link(&net.bridge) {
                        errors.push(e.to_string());
                    }
                }
                Ok(ports) => tracing::info!(
                    bridge = %net.bridge,
                    ?ports,
                    "keeping the bridge: other installations use it"
                ),
                Err(e) => errors.push(e.to_string()),
            }
            if net.is_predefined() {
                self.db().execute(
                    "UPDATE networks SET subnet = '', gateway = '', last_ip = '' WHERE id = ?1",
                    [&net.id],
                )?;
            } else {
                self.db()
                    .execute("DELETE FROM networks WHERE id = ?1", [&net.id])?;
            }
        }
        if let Err(e) = netns::remove_dir(&self.runroot().join("netns")) {
            errors.push(format!("remove the network namespace directory: {e}"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Conflict(errors.join("; ")))
        }
    }
}

fn mode_is_exclusive(c: &Container) -> bool {
    let mode = c.host_config.network_mode.as_str();
    mode == "host" || mode == "none" || mode.starts_with("container:")
}
