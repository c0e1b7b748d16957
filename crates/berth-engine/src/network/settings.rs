//! What `inspect` (NetworkSettings), `ps` (PORTS) and `port` show of a container's network.

use berth_net::ipam;
use berth_net::ports::{ContainerPort, PortMapping};
use serde_json::{json, Value};

use super::endpoint::{self, netns_path};
use super::{mode_network, resolve};
use crate::container::state::Container;
use crate::{Engine, Result};

impl Engine {
    /// The publications in force for a container.
    pub fn port_mappings(&self, c: &Container) -> Result<Vec<PortMapping>> {
        endpoint::mappings(self.store().db().conn(), &c.id)
    }

    /// `ps`'s PORTS column: `0.0.0.0:8080->80/tcp, 443/tcp`.
    pub fn ports_summary(&self, c: &Container) -> String {
        let mappings = self.port_mappings(c).unwrap_or_default();
        let mut parts: Vec<String> = mappings
            .iter()
            .map(|m| format!("{}:{}->{}", m.host_ip_text(), m.host_port, m.container))
            .collect();
        for key in c.config.exposed_ports.keys() {
            if let Ok(port) = key.parse::<ContainerPort>() {
                if !mappings.iter().any(|m| m.container == port) {
                    parts.push(port.to_string());
                }
            }
        }
        parts.join(", ")
    }

    /// Docker's `NetworkSettings` of a container.
    pub fn network_settings(&self, c: &Container) -> Value {
        let conn = self.store().db().conn();
        let running = c.state.is_active();
        let mut ports = serde_json::Map::new();
        if running {
            for key in c.config.exposed_ports.keys() {
                ports.insert(key.clone(), Value::Null);
            }
            for m in self.port_mappings(c).unwrap_or_default() {
                let entry = ports
                    .entry(m.container.to_string())
                    .or_insert_with(|| json!([]));
                if !entry.is_array() {
                    *entry = json!([]);
                }
                entry.as_array_mut().expect("array").push(json!({
                    "HostIp": m.host_ip_text(), "HostPort": m.host_port.to_string()
                }));
            }
        }
        let mut networks = serde_json::Map::new();
        let mut top = json!({ "IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "" });
        let mode = c.host_config.network_mode.as_str();
        for (k, ep) in endpoint::endpoints(conn, &c.id)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let Ok(net) = resolve(conn, &ep.network_id) else {
                continue;
            };
            let ip = ep.ip.filter(|_| running);
            let prefix = net
                .subnet
                .filter(|_| ip.is_some())
                .map_or(0, |s| s.prefix());
            let gateway = net
                .gateway
                .filter(|_| ip.is_some())
                .map(|g| g.to_string())
                .unwrap_or_default();
            let mac = ip
                .map(|ip| ipam::format_mac(endpoint::endpoint_mac(&c.config.mac_address, k, ip)))
                .unwrap_or_default();
            let ip_text = ip.map(|ip| ip.to_string()).unwrap_or_default();
            if net.is_default() {
                top = json!({ "IPAddress": ip_text, "IPPrefixLen": prefix, "Gateway": gateway, "MacAddress": mac });
            }
            let mut dns_names: Vec<String> = Vec::new();
            if !net.is_default() {
                dns_names.push(c.name.clone());
                dns_names.extend(ep.aliases.iter().cloned());
                dns_names.push(c.short_id().to_string());
            }
            networks.insert(net.name.clone(), json!({
                "IPAMConfig": ep.requested_ip.map(|ip| json!({ "IPv4Address": ip.to_string() })),
                "Links": null,
                "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
                "MacAddress": mac,
                "DriverOpts": null,
                "NetworkID": net.id,
                "EndpointID": if ip.is_some() { json!(ep.endpoint_id) } else { json!("") },
                "Gateway": gateway,
                "IPAddress": ip_text,
                "IPPrefixLen": prefix,
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DNSNames": if dns_names.is_empty() { Value::Null } else { json!(dns_names) },
            }));
        }
        if mode_network(mode).is_none() && !mode.starts_with("container:") {
            if let Ok(net) = resolve(conn, mode) {
                networks.insert(net.name.clone(), json!({
                    "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                    "DriverOpts": null, "NetworkID": net.id, "EndpointID": "", "Gateway": "",
                    "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0, "DNSNames": null,
                }));
            }
        }
        let pin = netns_path(self.runroot(), &c.id);
        let sandbox = if running && berth_net::netns::exists(&pin) {
            pin.display().to_string()
        } else {
            String::new()
        };
        json!({
            "Bridge": "",
            "SandboxID": if sandbox.is_empty() { "" } else { &c.id },
            "SandboxKey": sandbox,
            "Ports": ports,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": top["Gateway"],
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": top["IPAddress"],
            "IPPrefixLen": top["IPPrefixLen"],
            "IPv6Gateway": "",
            "MacAddress": top["MacAddress"],
            "Networks": networks,
        })
    }

    /// The name of the container's first network as `ps --filter network=` and `{{.Networks}}`
    /// see it.
    pub fn network_names(&self, c: &Container) -> Vec<String> {
        let conn = self.store().db().conn();
        let mode = c.host_config.network_mode.as_str();
        let mut names: Vec<String> = endpoint::endpoints(conn, &c.id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|ep| resolve(conn, &ep.network_id).ok().map(|n| n.name))
            .collect();
        if names.is_empty() {
            names.push(match mode {
                m if m.starts_with("container:") => m.to_string(),
                "" | "default" => "bridge".into(),
                m => m.to_string(),
            });
        }
        names
    }
}
