//! `create`: the image's config merged with the flags, a new row, and the container's
//! directories — one SQLite transaction, nothing started.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use berth_image::config::RunConfig;

use super::config::{Config, HostConfig};
use super::state::{Container, ContainerState};
use super::{container_dir, names, now_nanos};
use crate::error::io_error;
use crate::{Engine, EngineError, Result};

pub use crate::registry::PullPolicy;

/// Everything `create` and `run` take from the command line.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub image: String,
    /// Arguments after the image: they replace CMD.
    pub cmd: Vec<String>,
    /// `--entrypoint`: replaces ENTRYPOINT and resets CMD; `""` clears it.
    pub entrypoint: Option<String>,
    /// `-e`/`--env-file`, already expanded to `KEY=VALUE`.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    /// `--domainname`: the UTS domain name.
    pub domainname: Option<String>,
    /// `--mac-address`, already validated.
    pub mac_address: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Attached in the foreground (`run` without `-d`, `create -a`).
    pub attach: bool,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub pull: PullPolicy,
    pub platform: Option<String>,
    pub host: HostConfig,
    /// `--expose`: `80/tcp`, added to the image's exposed ports.
    pub expose: Vec<String>,
    /// `--network-alias`, `--ip`.
    pub endpoint: crate::network::endpoint::EndpointOptions,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            name: None,
            image: String::new(),
            cmd: Vec::new(),
            entrypoint: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            hostname: None,
            mac_address: None,
            domainname: None,
            tty: false,
            open_stdin: false,
            attach: false,
            labels: BTreeMap::new(),
            stop_signal: None,
            stop_timeout: None,
            pull: PullPolicy::Missing,
            platform: None,
            host: HostConfig::default(),
            expose: Vec::new(),
            endpoint: Default::default(),
        }
    }
}

impl Engine {
    /// Creates a container; returns it as recorded.
    pub fn create_container(&self, opts: &CreateOptions) -> Result<Container> {
        if let Some(name) = &opts.name {
            names::validate(name).map_err(EngineError::InvalidArgument)?;
        }
        validate_host_config(&opts.host)?;
        let by_mode = matches!(opts.host.network_mode.as_str(), "host" | "none")
            || opts.host.network_mode.starts_with("container:");
        if opts.mac_address.is_some() && by_mode {
            return Err(EngineError::InvalidArgument(
                "conflicting options: mac-address and the network mode".into(),
            ));
        }
        let image_id = self.ensure_image(
            &opts.image,
            opts.pull,
            opts.platform.as_deref(),
            &crate::registry::quiet,
        )?;
        let (_, image) = self.store().image_config(&image_id)?;
        let id = new_id();
        let mut config = merge_config(&image.config, opts, &id)?;
        let mounts = crate::volume::mounts::plan(
            self.store().db().conn(),
            &opts.host,
            &image.config,
            &mut config,
        )?;

        let dir = container_dir(self.root(), &id);
        make_dirs(&dir, &config, &opts.host)?;
        let mut host_config = opts.host.clone();
        host_config.links = host_config
            .links
            .iter()
            .map(|link| crate::network::links::normalize(link))
            .collect::<Result<_>>()?;
        let mut container = Container {
            id: id.clone(),
            name: String::new(),
            image_id: image_id.to_string(),
            image: opts.image.clone(),
            state: ContainerState::Created,
            created: now_nanos(),
            config,
            host_config,
            pid: 0,
            monitor_pid: 0,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            oom_killed: false,
            restart_count: 0,
            manual_stop: false,
            error: String::new(),
        };
        let inserted = (|| -> Result<()> {
            let tx = self.store().db().write()?;
            match &opts.name {
                Some(name) => {
                    container.name = name.trim_start_matches('/').to_string();
                    container.insert(&tx)?;
                }
                None => {
                    let mut retry = 0;
                    loop {
                        container.name = names::random_name(retry);
                        match container.insert(&tx) {
                            Err(EngineError::Conflict(_)) if retry < 10 => retry += 1,
                            other => break other?,
                        }
                    }
                }
            }
            crate::network::links::check_exist(&tx, &container)?;
            crate::volume::mounts::record(&tx, self.root(), &id, &mounts)?;
            crate::network::endpoint::on_create(&tx, &container, &opts.endpoint)?;
            crate::events::container(&tx, &id, "create", &[]);
            tx.commit()?;
            Ok(())
        })();
        if let Err(err) = inserted {
            let _ = fs::remove_dir_all(&dir);
            return Err(err);
        }
        Ok(container)
    }
}

/// 32 random bytes as 64 hex digits, never all digits (Docker avoids IDs that parse as
/// numbers).
fn new_id() -> String {
    loop {
        let bytes: [u8; 32] = rand::random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if id[..12].bytes().any(|b| b.is_ascii_alphabetic()) {
            return id;
        }
    }
}

fn validate_host_config(host: &HostConfig) -> Result<()> {
    let bad = |m: String| Err(EngineError::InvalidArgument(m));
    if host.resources.memory != 0 && host.resources.memory < 6 * 1024 * 1024 {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if host.resources.memory_swap > 0 && host.resources.memory == 0 {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if host.resources.memory_swap > 0 && host.resources.memory_swap < host.resources.memory {
        return bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if host.resources.nano_cpus < 0 {
        return bad("Range of CPUs is from 0.01 to the number of CPUs available".into());
    }
    if host.network_mode.starts_with("container:") && !host.dns.is_empty() {
        return bad("conflicting options: dns and the network mode".into());
    }
    if !host.links.is_empty() {
        if host.network_mode == "host" {
            return bad("conflicting options: host type networking can't be used with links. This would result in undefined behavior".into());
        }
        if host.network_mode.starts_with("container:") {
            return bad("conflicting options: container type network can't be used with links. This would result in undefined behavior".into());
        }
    }
    super::sysctl::validate(&host.sysctls, &host.network_mode)
        .map_err(EngineError::InvalidArgument)?;
    if host.auto_remove && !host.restart_policy.is_none() {
        return bad("conflicting options: cannot specify both --restart and --rm".into());
    }
    for opt in &host.security_opt {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match key {
            "seccomp" | "apparmor" | "label" => {}
            "no-new-privileges" if matches!(value, "" | "true" | "false") => {}
            _ => return bad(format!("Invalid --security-opt: {opt:?}")),
        }
        if key == "seccomp" && !matches!(value, "unconfined" | "") && !Path::new(value).exists() {
            return bad(format!(
                "opening seccomp profile ({value}) failed: no such file"
            ));
        }
    }
    Ok(())
}

/// The container's `Config`: the image's defaults with the flags on top, by Docker's rules
/// (run arguments replace CMD; `--entrypoint` replaces ENTRYPOINT and resets CMD; `-e`
/// overrides image variables of the same name).
fn merge_config(image: &RunConfig, opts: &CreateOptions, id: &str) -> Result<Config> {
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(ep) => {
            let ep = if ep.is_empty() {
                None
            } else {
                Some(vec![ep.clone()])
            };
            (
                ep,
                if opts.cmd.is_empty() {
                    None
                } else {
                    Some(opts.cmd.clone())
                },
            )
        }
        None => (
            image.entrypoint.clone().filter(|e| !e.is_empty()),
            if opts.cmd.is_empty() {
                image.cmd.clone()
            } else {
                Some(opts.cmd.clone())
            },
        ),
    };
    let mut env = image.env.clone().unwrap_or_default();
    for var in &opts.env {
        let key = var.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(var.clone());
    }
    let mut labels = image.labels.clone().unwrap_or_default();
    labels.extend(opts.labels.clone());
    let config = Config {
        hostname: opts.hostname.clone().unwrap_or_else(|| {
            if opts.host.network_mode == "host" {
                host_name()
            } else {
                id[..12].to_string()
            }
        }),
        domainname: opts.domainname.clone().unwrap_or_default(),
        user: opts.user.clone().unwrap_or_else(|| image.user.clone()),
        attach_stdin: opts.attach && opts.open_stdin,
        attach_stdout: opts.attach,
        attach_stderr: opts.attach,
        tty: opts.tty,
        open_stdin: opts.open_stdin,
        stdin_once: opts.attach && opts.open_stdin,
        env,
        cmd,
        image: opts.image.clone(),
        working_dir: opts
            .workdir
            .clone()
            .unwrap_or_else(|| image.working_dir.clone()),
        entrypoint,
        labels,
        volumes: None,
        stop_signal: opts
            .stop_signal
            .clone()
            .or_else(|| Some(image.stop_signal.clone()).filter(|s| !s.is_empty())),
        stop_timeout: opts.stop_timeout.or(image.stop_timeout),
        mac_address: opts.mac_address.clone().unwrap_or_default(),
        exposed_ports: image
            .exposed_ports
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .chain(opts.expose.iter().cloned())
            .map(|k| (k, Default::default()))
            .collect(),
    };
    // The kernel's limit (__NEW_UTS_LEN): longer, the runtime's setdomainname would fail at
    // every start.
    if config.domainname.len() > 64 {
        return Err(EngineError::InvalidArgument(format!(
            "invalid domainname {:?}: longer than 64 bytes",
            config.domainname
        )));
    }
    if config.args().is_empty() {
        return Err(EngineError::InvalidArgument("No command specified".into()));
    }
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            config.working_dir
        )));
    }
    if let Some(signal) = &config.stop_signal {
        super::kill::parse_signal(signal)?;
    }
    Ok(config)
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// `upper/`, `work/`, `rootfs/` and the files bind-mounted over `/etc`.
fn make_dirs(dir: &Path, config: &Config, host: &HostConfig) -> Result<()> {
    fs::create_dir_all(dir.parent().expect("containers dir")).map_err(io_error("create", dir))?;
    fs::create_dir(dir).map_err(io_error("create", dir))?;
    let made = (|| -> Result<()> {
        for sub in ["upper", "work", "rootfs"] {
            let p = dir.join(sub);
            fs::create_dir(&p).map_err(io_error("create", &p))?;
        }
        let hostname = format!("{}\n", config.hostname);
        let (hosts, resolv) = if host.network_mode == "host" {
            (
                fs::read_to_string("/etc/hosts").unwrap_or_default(),
                fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
        } else {
            (
                format!(
                    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                     fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
                     ff02::2\tip6-allrouters\n127.0.1.1\t{}\n",
                    config.hostname
                ),
                String::new(),
            )
        };
        for (name, content) in [
            ("hostname", hostname),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            let p = dir.join(name);
            fs::write(&p, content).map_err(io_error("write", &p))?;
        }
        Ok(())
    })();
    if made.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> RunConfig {
        RunConfig {
            entrypoint: entrypoint.map(|e| e.iter().map(|s| s.to_string()).collect()),
            cmd: cmd.map(|e| e.iter().map(|s| s.to_string()).collect()),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..RunConfig::default()
        }
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn run_args_replace_cmd_and_follow_entrypoint() {
        let opts = CreateOptions {
            cmd: vec!["x".into()],
            ..Default::default()
        };
        let c = merge_config(&image(Some(&["ep"]), Some(&["default"])), &opts, ID).unwrap();
        assert_eq!(c.args(), ["ep", "x"]);
        let c = merge_config(
            &image(Some(&["ep"]), Some(&["default"])),
            &CreateOptions::default(),
            ID,
        )
        .unwrap();
        assert_eq!(c.args(), ["ep", "default"]);
        assert_eq!(c.hostname, "0123456789ab");
    }

    #[test]
    fn entrypoint_flag_resets_cmd() {
        let opts = CreateOptions {
            entrypoint: Some("/bin/echo".into()),
            ..Default::default()
        };
        let c = merge_config(&image(Some(&["ep"]), Some(&["default"])), &opts, ID).unwrap();
        assert_eq!(c.args(), ["/bin/echo"]);
        let opts = CreateOptions {
            entrypoint: Some(String::new()),
            ..Default::default()
        };
        assert!(merge_config(&image(Some(&["ep"]), Some(&["default"])), &opts, ID).is_err());
    }

    #[test]
    fn env_overrides_by_key() {
        let opts = CreateOptions {
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        let c = merge_config(&image(None, Some(&["sh"])), &opts, ID).unwrap();
        assert_eq!(c.env, ["PATH=/bin", "A=2", "B=3"]);
    }
}
