//! A container → its OCI runtime spec (`config.json` in `<root>/containers/<id>/`).
//!
//! Starts from the runtime's Docker-equivalent defaults (`spec_defaults`) and applies the
//! container's `Config` and `HostConfig`: command, env, user, cwd, hostname, tty, the overlay
//! root (described as a mount of type `overlay` on `/`, which the runtime mounts inside the
//! container's own mount namespace), `/etc/{hostname,hosts,resolv.conf}`, tmpfs mounts,
//! network namespace, resources, capabilities, seccomp and rlimits. The spec is edited as JSON:
//! the shape is the OCI one, and the runtime reads it back with `oci-spec`.

use std::fs;
use std::path::{Path, PathBuf};

use berth_runtime::spec_defaults;
use serde_json::{json, Value};

use super::rootfs::{self, find_file};
use super::state::Container;
use crate::{EngineError, Result};

/// Docker's `PATH` when neither image nor flags set one.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Every capability the kernel knows, for `--privileged` and `--cap-add ALL`.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Where the host keeps a static init for `--init` (Docker's `docker-init` is tini).
const INIT_CANDIDATES: &[&str] = &[
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
    "/usr/bin/tini-static",
    "/sbin/tini-static",
];

/// The OCI rlimit type for a `--ulimit` name.
pub fn rlimit_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

/// Builds the spec of `container`; `lowers` are the image's layer dirs, topmost first.
pub fn build(container: &Container, dir: &Path, lowers: &[PathBuf]) -> Result<Value> {
    let mut spec = serde_json::to_value(spec_defaults::default_spec()).expect("spec serialises");
    let config = &container.config;
    let host = &container.host_config;
    let upper = dir.join("upper");

    // Process.
    let mut args = config.args();
    let mut env: Vec<String> = Vec::new();
    if !config.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.into());
    }
    env.push(format!("HOSTNAME={}", config.hostname));
    if config.tty {
        env.push("TERM=xterm".into());
    }
    for var in &config.env {
        let key = var.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(var.clone());
    }
    let (user, home) = resolve_user(&config.user, &upper, lowers)?;
    // runc's rule: HOME from the user's passwd entry unless the environment sets it.
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    let mut extra_mounts: Vec<Value> = Vec::new();
    if host.init == Some(true) {
        let init = INIT_CANDIDATES
            .iter()
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| {
                EngineError::InvalidArgument(
                    "--init: no static init binary (docker-init or tini-static) on this host"
                        .into(),
                )
            })?;
        extra_mounts.push(json!({
            "destination": "/sbin/docker-init", "type": "bind", "source": init,
            "options": ["bind", "ro", "nosuid", "nodev"]
        }));
        let mut with_init = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }
    {
        let process = &mut spec["process"];
        process["args"] = json!(args);
        process["env"] = json!(env);
        process["cwd"] = json!(if config.working_dir.is_empty() {
            "/"
        } else {
            &config.working_dir
        });
        process["terminal"] = json!(config.tty);
        process["user"] = user;
        if config.tty {
            process["consoleSize"] = json!({ "height": 24, "width": 80 });
        }
    }
    spec["hostname"] = json!(config.hostname);
    if !config.domainname.is_empty() {
        spec["domainname"] = json!(config.domainname);
    }
    spec["root"] = json!({ "path": "rootfs", "readonly": host.readonly_rootfs });

    // Mounts: the overlay root first, then Docker's defaults, the /etc files, tmpfs.
    let mut lowerdirs: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    if lowerdirs.is_empty() {
        let empty = dir.join("lower");
        fs::create_dir_all(&empty).map_err(|source| EngineError::Io {
            action: "create",
            path: empty.display().to_string(),
            source,
        })?;
        lowerdirs.push(empty.display().to_string());
    }
    let mut overlay_options = vec![
        format!("lowerdir={}", lowerdirs.join(":")),
        format!("upperdir={}", upper.display()),
        format!("workdir={}", dir.join("work").display()),
        "index=off".into(),
        "redirect_dir=off".into(),
        "metacopy=off".into(),
    ];
    if host.auto_remove {
        // An `--rm` container's writable layer is deleted when it exits: it need not survive a
        // crash, so its unmount skips the sync of the whole upper filesystem (podman does the
        // same for `--rm`).
        overlay_options.push("volatile".into());
    }
    let overlay = json!({
        "destination": "/",
        "type": "overlay",
        "source": "overlay",
        "options": overlay_options,
    });
    let mut mounts = vec![overlay];
    mounts.extend(spec["mounts"].as_array().cloned().unwrap_or_default());
    for name in ["hostname", "hosts", "resolv.conf"] {
        mounts.push(json!({
            "destination": format!("/etc/{name}"), "type": "bind",
            "source": dir.join(name).display().to_string(),
            "options": ["rbind", "rprivate"]
        }));
    }
    for (path, options) in &host.tmpfs {
        let mut opts = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        opts.extend(
            options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        if !opts.iter().any(|o| o.starts_with("mode=")) {
            opts.push("mode=1777".into());
        }
        mounts.push(
            json!({ "destination": path, "type": "tmpfs", "source": "tmpfs", "options": opts }),
        );
    }
    mounts.extend(extra_mounts);
    if host.privileged {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                m["options"] = json!(["nosuid", "noexec", "nodev"]);
            }
        }
    }
    spec["mounts"] = Value::Array(mounts);

    // Namespaces and network.
    let linux = &mut spec["linux"];
    linux["cgroupsPath"] = json!(super::cgroup_path(&container.id));
    super::sysctl::apply_in_spec(&host.sysctls, linux);
    if host.network_mode == "host" {
        if let Some(ns) = linux["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
        super::sysctl::drop_network_sysctls(linux);
    }

    // Resources.
    let resources = &mut linux["resources"];
    super::resources::write_spec_resources(&host.resources, resources);
    if host.privileged {
        resources["devices"] = json!([{ "allow": true, "access": "rwm" }]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("maskedPaths");
            obj.remove("readonlyPaths");
            obj.remove("seccomp");
        }
    }

    // Capabilities.
    let caps = capabilities(host)?;
    for set in ["bounding", "effective", "permitted"] {
        spec["process"]["capabilities"][set] = json!(caps);
    }

    // Security options.
    for opt in &host.security_opt {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match key {
            "no-new-privileges" if value != "false" => {
                spec["process"]["noNewPrivileges"] = json!(true)
            }
            "seccomp" if value == "unconfined" => {
                if let Some(obj) = spec["linux"].as_object_mut() {
                    obj.remove("seccomp");
                }
            }
            "seccomp" => {
                let text = fs::read_to_string(value).map_err(|source| EngineError::Io {
                    action: "read seccomp profile",
                    path: value.to_string(),
                    source,
                })?;
                let profile: Value = serde_json::from_str(&text).map_err(|e| {
                    EngineError::InvalidArgument(format!("decoding seccomp profile failed: {e}"))
                })?;
                spec["linux"]["seccomp"] = docker_seccomp_to_oci(profile);
            }
            _ => {}
        }
    }

    // Rlimits, capped at what the hard limit allows (no CAP_SYS_RESOURCE needed).
    if !host.ulimits.is_empty() {
        let rlimits: Vec<Value> = host
            .ulimits
            .iter()
            .filter_map(|u| {
                let typ = rlimit_type(&u.name)?;
                Some(json!({ "type": typ, "soft": u.soft as u64, "hard": u.hard as u64 }))
            })
            .collect();
        spec["process"]["rlimits"] = Value::Array(rlimits);
    }
    Ok(spec)
}

/// Docker's cap-add/cap-drop on top of the defaults (`ALL` allowed, `CAP_` optional).
fn capabilities(host: &crate::container::HostConfig) -> Result<Vec<String>> {
    let norm = |c: &str| {
        let up = c.to_ascii_uppercase();
        if up == "ALL" || up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let mut caps: Vec<String> = if host.privileged {
        ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    } else {
        spec_defaults::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect()
    };
    for c in &host.cap_drop {
        let c = norm(c);
        if c == "ALL" {
            caps.clear();
        } else {
            caps.retain(|x| *x != c);
        }
    }
    for c in &host.cap_add {
        let c = norm(c);
        if c == "ALL" {
            caps = ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect();
        } else if !ALL_CAPABILITIES.contains(&c.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "unknown capability: {c:?}"
            )));
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// A Docker seccomp profile (`defaultAction`, `syscalls[].names`) in the OCI form.
fn docker_seccomp_to_oci(profile: Value) -> Value {
    let mut out = json!({
        "defaultAction": profile["defaultAction"].clone(),
        "syscalls": [],
    });
    if let Some(errno) = profile.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = errno.clone();
    }
    if let Some(archs) = profile.get("architectures") {
        out["architectures"] = archs.clone();
    }
    let mut syscalls = Vec::new();
    for rule in profile["syscalls"].as_array().into_iter().flatten() {
        let mut names: Vec<Value> = rule["names"].as_array().cloned().unwrap_or_default();
        if let Some(name) = rule.get("name") {
            names.push(name.clone());
        }
        let mut r = json!({ "names": names, "action": rule["action"].clone() });
        if let Some(args) = rule.get("args").filter(|a| !a.is_null()) {
            r["args"] = args.clone();
        }
        if let Some(e) = rule.get("errnoRet") {
            r["errnoRet"] = e.clone();
        }
        syscalls.push(r);
    }
    out["syscalls"] = Value::Array(syscalls);
    out
}

/// `-u user[:group]` → the OCI user, looked up in the container's `/etc/passwd` and
/// `/etc/group` (read from the layers, without mounting).
/// Returns the OCI user and the user's home directory (for `HOME`).
pub(crate) fn resolve_user(
    spec: &str,
    upper: &Path,
    lowers: &[PathBuf],
) -> Result<(Value, String)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = || find_file(upper, lowers, "etc/passwd").unwrap_or_default();
    let groups = || find_file(upper, lowers, "etc/group").unwrap_or_default();
    let mut uid = 0u32;
    let mut gid = 0u32;
    let mut name = String::from("root");
    let mut home = String::from("/");
    let text = String::from_utf8_lossy(&passwd()).into_owned();
    if user.is_empty() {
        if let Some(f) = text
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 6 && f[2] == "0")
        {
            home = f[5].to_string();
        }
    } else {
        let numeric = user.parse::<u32>().ok();
        let entry = text
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| {
                f.len() >= 4 && (f[0] == user || numeric.is_some_and(|n| f[2].parse() == Ok(n)))
            });
        match (entry, numeric) {
            (Some(f), _) => {
                uid = f[2].parse().unwrap_or(0);
                gid = f[3].parse().unwrap_or(0);
                name = f[0].to_string();
                if let Some(h) = f.get(5).filter(|h| !h.is_empty()) {
                    home = h.to_string();
                }
            }
            (None, Some(n)) => {
                uid = n;
                name = String::new();
            }
            (None, None) => {
                return Err(EngineError::InvalidArgument(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                )))
            }
        }
    }
    let group_text = String::from_utf8_lossy(&groups()).into_owned();
    let group_lines: Vec<Vec<&str>> = group_text
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_lines
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    // The primary group is in the supplementary list too, as runc sets it.
    let mut additional: Vec<u32> = vec![gid];
    if !name.is_empty() {
        additional.extend(
            group_lines
                .iter()
                .filter(|f| f.len() >= 4 && f[3].split(',').any(|m| m == name))
                .filter_map(|f| f[2].parse().ok())
                .filter(|g: &u32| *g != gid),
        );
    }
    Ok((
        json!({ "uid": uid, "gid": gid, "additionalGids": additional }),
        home,
    ))
}

/// Writes the spec as the bundle's `config.json`.
/// Reads back the `config.json` that [`write`] wrote into `dir`.
pub fn read(dir: &Path) -> Result<Value> {
    let path = dir.join("config.json");
    let bytes = fs::read(&path).map_err(|source| EngineError::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| EngineError::Io {
        action: "parse",
        path: path.display().to_string(),
        source: source.into(),
    })
}

pub fn write(dir: &Path, spec: &Value) -> Result<()> {
    let path = dir.join("config.json");
    let tmp = dir.join(".config.json.tmp");
    let bytes = serde_json::to_vec(spec).expect("spec serialises");
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|source| EngineError::Io {
            action: "write",
            path: path.display().to_string(),
            source,
        })
}

/// Kept for `rootfs` users that need the lower dirs of a container.
pub fn lowers_of(engine: &crate::Engine, container: &Container) -> Result<Vec<PathBuf>> {
    rootfs::lower_dirs(engine, &container.image_id)
}

/// Every capability, for `exec --privileged`.
pub fn all_capabilities() -> Vec<&'static str> {
    ALL_CAPABILITIES.to_vec()
}
