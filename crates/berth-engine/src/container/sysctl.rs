//! `--sysctl KEY=VALUE`: which kernel parameters a container may set, by runc's rules (the
//! runtime writes them under `/proc/sys` inside the container's namespaces, so only those the
//! kernel keeps per namespace are safe to accept; anything else would change the host).
//!
//! A container always has its own IPC and UTS namespaces here, so the IPC ones and
//! `kernel.domainname` are always accepted; `net.*` is, unless the container shares the
//! host's network namespace. The messages are runc's, which Docker prints; berth refuses at
//! `create` rather than at start, so nothing is stored.

use std::collections::BTreeMap;

use serde_json::Value;

/// The IPC namespace's sysctls outside `fs.mqueue.*`.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Refuses a sysctl the container's namespaces do not isolate.
pub fn validate(sysctls: &BTreeMap<String, String>, network_mode: &str) -> Result<(), String> {
    for key in sysctls.keys() {
        let well_formed = !key.is_empty()
            && key
                .split('.')
                .all(|part| !part.is_empty() && !part.contains(['/', '\0']));
        if !well_formed {
            return Err(format!("sysctl {key:?} is not a valid sysctl name"));
        }
        if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            continue;
        }
        if key.starts_with("net.") {
            if network_mode == "host" {
                return Err(format!(
                    "sysctl {key:?} not allowed in host network namespace"
                ));
            }
            continue;
        }
        match key.as_str() {
            "kernel.domainname" => continue,
            "kernel.hostname" => {
                return Err(format!(
                    "sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field"
                ))
            }
            _ => {
                return Err(format!(
                    "sysctl {key:?} is not in a separate kernel namespace"
                ))
            }
        }
    }
    Ok(())
}

/// `KEY=VALUE` flags as Docker's map (a bare `KEY` maps to an empty value, as Docker's
/// `MapOpts` does; the last of a repeated key wins).
pub fn parse(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|flag| {
            let (key, value) = flag.split_once('=').unwrap_or((flag.as_str(), ""));
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// The spec's `linux.sysctl` with the container's own on top of the defaults.
pub fn apply_in_spec(sysctls: &BTreeMap<String, String>, linux: &mut Value) {
    if sysctls.is_empty() {
        return;
    }
    if !linux["sysctl"].is_object() {
        linux["sysctl"] = Value::Object(Default::default());
    }
    let map = linux["sysctl"].as_object_mut().expect("an object");
    for (key, value) in sysctls {
        map.insert(key.clone(), Value::String(value.clone()));
    }
}

/// Drops the `net.*` sysctls of a container in the host's network namespace: they are the
/// host's, not the container's, to set.
pub fn drop_network_sysctls(linux: &mut Value) {
    if let Some(map) = linux["sysctl"].as_object_mut() {
        map.retain(|key, _| !key.starts_with("net."));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, mode: &str) -> Result<(), String> {
        validate(&parse(&[format!("{key}=1")]), mode)
    }

    #[test]
    fn namespaced_sysctls_only() {
        assert!(check("net.ipv4.ip_forward", "default").is_ok());
        assert!(check("net.ipv4.ip_forward", "container:web").is_ok());
        assert!(check("kernel.shmmax", "host").is_ok());
        assert!(check("fs.mqueue.msg_max", "host").is_ok());
        assert!(check("kernel.domainname", "default").is_ok());
        assert_eq!(
            check("net.ipv4.ip_forward", "host").unwrap_err(),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        assert_eq!(
            check("kernel.core_pattern", "default").unwrap_err(),
            "sysctl \"kernel.core_pattern\" is not in a separate kernel namespace"
        );
        assert!(check("kernel.hostname", "default").is_err());
        assert!(check("net..ipv4", "default").is_err());
        assert!(check("net.ipv4/../../kernel", "default").is_err());
    }

    #[test]
    fn spec_sysctls_merge_and_host_network_drops_net() {
        let mut linux =
            serde_json::json!({ "sysctl": { "net.ipv4.ip_unprivileged_port_start": "0" } });
        apply_in_spec(
            &parse(&[
                "net.ipv4.ip_unprivileged_port_start=80".into(),
                "kernel.shmmni=100".into(),
            ]),
            &mut linux,
        );
        assert_eq!(linux["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "80");
        drop_network_sysctls(&mut linux);
        assert_eq!(
            linux["sysctl"],
            serde_json::json!({ "kernel.shmmni": "100" })
        );
    }
}
