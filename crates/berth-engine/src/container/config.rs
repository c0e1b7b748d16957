//! A container's stored configuration, in the shape of Docker's `Config` and `HostConfig` so
//! that `inspect` shows it as Docker does and the Docker API can take it as it comes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::resources::Resources;

/// What runs and how (Docker's container `Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    /// The image's `VOLUME`s and `-v /path`: where anonymous volumes go.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `--mac-address`: the MAC of the container's interface on its first network.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `EXPOSE` and `--expose`: `"80/tcp": {}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl Config {
    /// ENTRYPOINT followed by CMD: the process's arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args = self.entrypoint.clone().unwrap_or_default();
        args.extend(self.cmd.clone().unwrap_or_default());
        args
    }

    /// The signal `stop` sends first.
    pub fn stop_signal(&self) -> &str {
        self.stop_signal
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("SIGTERM")
    }
}

/// `--restart`: Docker's restart policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Parses `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub fn parse(text: &str) -> Result<RestartPolicy, String> {
        let (name, count) = match text.split_once(':') {
            Some((name, count)) => (name, Some(count)),
            None => (text, None),
        };
        let maximum_retry_count = match count {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                format!(
                    "invalid restart policy format: maximum retry count must be an integer: {text}"
                )
            })?,
        };
        match name {
            "" | "no" if count.is_none() => Ok(RestartPolicy { name: "no".into(), maximum_retry_count: 0 }),
            "always" | "unless-stopped" if count.is_none() => {
                Ok(RestartPolicy { name: name.into(), maximum_retry_count: 0 })
            }
            "always" | "unless-stopped" | "no" => {
                Err(format!("invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'"))
            }
            "on-failure" => Ok(RestartPolicy { name: name.into(), maximum_retry_count }),
            _ => Err(format!("invalid restart policy format: unknown policy '{name}'")),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self.name.as_str(), "" | "no")
    }

    /// Docker's restart manager: whether a container that ended with `exit_code` after
    /// `restart_count` restarts starts again. `stopped` is a `stop` (or `kill`) by the user.
    pub fn should_restart(&self, exit_code: i32, restart_count: i64, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0
                    && (self.maximum_retry_count == 0 || restart_count < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    pub fn parse(text: &str) -> Result<Ulimit, String> {
        let (name, values) = text
            .split_once('=')
            .ok_or_else(|| format!("invalid ulimit argument: {text}"))?;
        let number = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| format!("invalid ulimit argument: {text}"))
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (number(s)?, number(h)?),
            None => (number(values)?, number(values)?),
        };
        if soft > hard && hard >= 0 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
        if crate::container::spec::rlimit_type(name).is_none() {
            return Err(format!("invalid ulimit type: {name}"));
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

/// One `-p` publication of a container port (Docker's `PortBinding`); `HostPort` may be
/// empty (any free port) or a range (`8000-8010`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// How the container relates to the host (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `default` (the `bridge` network), `none`, `host`, `container:NAME` or a network name.
    pub network_mode: String,
    /// `-p`: Docker's `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`.
    pub publish_all_ports: bool,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host name:ip`.
    pub extra_hosts: Vec<String>,
    /// `--link`, as Docker stores them: `/NAME:/PARENT/ALIAS`.
    pub links: Vec<String>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub readonly_rootfs: bool,
    /// `--tmpfs /path[:options]`.
    pub tmpfs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(flatten)]
    pub resources: Resources,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    /// `-v` as given (resolved into mount points by `crate::volume::mounts`).
    pub binds: Vec<String>,
    /// `--mount`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<crate::volume::mounts::MountSpec>,
    /// `--volumes-from CONTAINER[:ro|rw]`.
    pub volumes_from: Vec<String>,
    /// `--sysctl KEY=VALUE`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(RestartPolicy::parse("no").unwrap().is_none());
        let p = RestartPolicy::parse("on-failure:3").unwrap();
        assert_eq!(p.maximum_retry_count, 3);
        assert!(p.should_restart(1, 2, false));
        assert!(!p.should_restart(1, 3, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::parse("always")
            .unwrap()
            .should_restart(0, 100, false));
        assert!(!RestartPolicy::parse("always")
            .unwrap()
            .should_restart(0, 0, true));
        assert!(RestartPolicy::parse("always:3").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            Ulimit::parse("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert!(Ulimit::parse("nofile=2048:1024").is_err());
        assert!(Ulimit::parse("bogus=1").is_err());
    }
}
