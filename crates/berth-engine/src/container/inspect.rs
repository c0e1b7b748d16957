//! `inspect` of a container, in the JSON shape of Docker's `GET /containers/{id}/json`.

use serde_json::{json, Value};

use super::state::{Container, ContainerState};
use super::{log_path, rfc3339, rootfs};
use crate::{Engine, Result};

impl Engine {
    /// Docker's inspect document for the container `name_or_id` names.
    pub fn inspect_container(&self, name_or_id: &str, size: bool) -> Result<Value> {
        let c = self.container(name_or_id)?;
        Ok(self.inspect_loaded(&c, size))
    }

    pub fn inspect_loaded(&self, c: &Container, size: bool) -> Value {
        let dir = self.container_dir(&c.id);
        let lowers = rootfs::lower_dirs(self, &c.image_id).unwrap_or_default();
        let running = matches!(c.state, ContainerState::Running | ContainerState::Paused);
        let args = c.config.args();
        let (path, rest) = match args.split_first() {
            Some((p, r)) => (p.clone(), r.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let mut config = serde_json::to_value(&c.config).expect("config serialises");
        if c.config.labels.is_empty() {
            config["Labels"] = json!({});
        }
        let mut host = serde_json::to_value(&c.host_config).expect("host config serialises");
        host["NetworkMode"] = json!(if c.host_config.network_mode.is_empty() {
            "default"
        } else {
            &c.host_config.network_mode
        });
        crate::volume::mounts::docker_host_nulls(&mut host);
        host["Links"] = if c.host_config.links.is_empty() {
            json!(null)
        } else {
            json!(c
                .host_config
                .links
                .iter()
                .map(|link| crate::network::links::docker_form(link, &c.name))
                .collect::<Vec<_>>())
        };
        host["LogConfig"] = json!({ "Type": "json-file", "Config": {} });
        let mut doc = json!({
            "Id": c.id,
            "Created": rfc3339(c.created),
            "Path": path,
            "Args": rest,
            "State": {
                "Status": c.state.as_str(),
                "Running": running,
                "Paused": c.state == ContainerState::Paused,
                "Restarting": c.state == ContainerState::Restarting,
                "OOMKilled": c.oom_killed,
                "Dead": c.state == ContainerState::Dead,
                "Pid": if running { c.pid } else { 0 },
                "ExitCode": c.exit_code,
                "Error": c.error,
                "StartedAt": rfc3339(c.started_at),
                "FinishedAt": rfc3339(c.finished_at),
            },
            "Image": c.image_id,
            "ResolvConfPath": dir.join("resolv.conf").display().to_string(),
            "HostnamePath": dir.join("hostname").display().to_string(),
            "HostsPath": dir.join("hosts").display().to_string(),
            "LogPath": log_path(self.root(), &c.id).display().to_string(),
            "Name": format!("/{}", c.name),
            "RestartCount": c.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": host,
            "GraphDriver": {
                "Data": {
                    "LowerDir": lowers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                    "MergedDir": dir.join("rootfs").display().to_string(),
                    "UpperDir": dir.join("upper").display().to_string(),
                    "WorkDir": dir.join("work").display().to_string(),
                },
                "Name": "overlay"
            },
            "Mounts": crate::volume::mounts::inspect_mounts(self.store().db().conn(), self.root(), &c.id),
            "Config": config,
            "NetworkSettings": self.network_settings(c),
        });
        if size {
            doc["SizeRw"] = json!(self.container_size(c));
            doc["SizeRootFs"] = json!(self.container_virtual_size(c));
        }
        doc
    }
}
