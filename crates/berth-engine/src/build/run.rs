//! RUN: the command runs with berth-runtime directly from the build process, on an overlay of
//! the stage's layers (mounted by the runtime inside the container's own mount namespace, so
//! nothing can leak onto the host) with a fresh upper dir under the store's `tmp/`. When the
//! command succeeds, that upper dir is the step's layer.
//!
//! Docker's default capabilities and seccomp profile apply (the runtime's default spec). The
//! network is the host's for `default` and `host` (no namespace of its own, as BuildKit's
//! default gives the step the network) and a new, empty namespace for `none`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_build::ignore::clean;
use berth_build::instructions::{Heredoc, MountType, NetworkMode, Run};
use berth_runtime::{spec_defaults, wait, Runtime, Stdio, DEFAULT_PATH};
use serde_json::{json, Value};

use super::context::TempDir;
use super::progress::Progress;
use super::{io_err, BuildError, Result};
use crate::Engine;

pub(super) struct RunRequest<'a> {
    pub run: &'a Run,
    pub argv: Vec<String>,
    pub heredocs: &'a [Heredoc],
    pub env: Vec<String>,
    pub user: String,
    pub cwd: String,
    /// The stage's layer directories, topmost first.
    pub lowers: Vec<PathBuf>,
    /// `--network` of the build.
    pub network: String,
    pub context_dir: PathBuf,
    pub secrets: &'a BTreeMap<String, PathBuf>,
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The runtime forks: wait until threads started earlier (source hashing, HTTP) are gone.
fn wait_single_threaded() {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = fs::read_dir("/proc/self/task").map_or(1, |d| d.count());
        if n <= 1 || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn mounts_for(req: &RunRequest<'_>, engine: &Engine) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for m in &req.run.mounts {
        let target = m.target.clone();
        match m.kind {
            MountType::Cache => {
                let target = target.ok_or_else(|| {
                    BuildError::Invalid("RUN --mount=type=cache needs a target".into())
                })?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()));
                let dir = engine.root().join("build-cache-mounts").join(hex);
                fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
                out.push(json!({"destination": target, "type": "bind",
                    "source": dir.display().to_string(), "options": ["rbind", "rw"]}));
            }
            MountType::Tmpfs => {
                let target = target.ok_or_else(|| {
                    BuildError::Invalid("RUN --mount=type=tmpfs needs a target".into())
                })?;
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = &m.size {
                    opts.push(format!("size={s}"));
                }
                out.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            target
                                .as_ref()
                                .and_then(|t| t.rsplit('/').next().map(String::from))
                        })
                        .unwrap_or_default();
                match req.secrets.get(&id) {
                    Some(src) => {
                        let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                        out.push(json!({"destination": target, "type": "bind",
                            "source": src.display().to_string(), "options": ["rbind", "ro"]}));
                    }
                    None if m.required => {
                        return Err(BuildError::Invalid(format!("secret {id} not found")))
                    }
                    None => {}
                }
            }
            MountType::Bind => {
                if m.from.is_some() {
                    return Err(BuildError::Invalid(
                        "RUN --mount=type=bind,from=… is not supported yet".into(),
                    ));
                }
                let target = target.ok_or_else(|| {
                    BuildError::Invalid("RUN --mount=type=bind needs a target".into())
                })?;
                let rel = clean(m.source.as_deref().unwrap_or(".").trim_start_matches('/'));
                if rel.starts_with("..") {
                    return Err(BuildError::Invalid(format!(
                        "bind source {rel:?} is outside the build context"
                    )));
                }
                let src = req.context_dir.join(&rel);
                // Writes never reach the context: the bind is read-only even with `rw`.
                out.push(json!({"destination": target, "type": "bind",
                    "source": src.display().to_string(), "options": ["rbind", "ro"]}));
            }
            MountType::Ssh => {
                return Err(BuildError::Invalid(
                    "RUN --mount=type=ssh is not supported".into(),
                ))
            }
        }
    }
    Ok(out)
}

fn build_spec(
    req: &RunRequest<'_>,
    engine: &Engine,
    work: &Path,
    argv: &[String],
) -> Result<berth_runtime::oci_spec::runtime::Spec> {
    let upper = work.join("upper");
    let mut lowers: Vec<String> = req.lowers.iter().map(|p| p.display().to_string()).collect();
    if lowers.is_empty() {
        let empty = work.join("lower");
        fs::create_dir(&empty).map_err(io_err("create", &empty))?;
        lowers.push(empty.display().to_string());
    }
    let (user, home) = crate::container::spec::resolve_user(&req.user, &upper, &req.lowers)
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let mut env = req.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    let mut spec = serde_json::to_value(spec_defaults::default_spec())
        .map_err(|e| BuildError::Invalid(format!("runtime spec: {e}")))?;
    spec["root"] = json!({"path": work.join("rootfs").display().to_string(), "readonly": false});
    spec["hostname"] = json!("buildkitsandbox");
    spec["process"]["args"] = json!(argv);
    spec["process"]["env"] = json!(env);
    spec["process"]["cwd"] = json!(req.cwd);
    spec["process"]["user"] = user;
    let overlay = json!({
        "destination": "/", "type": "overlay", "source": "overlay",
        "options": [
            format!("lowerdir={}", lowers.join(":")),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.join("work").display()),
            "index=off", "redirect_dir=off", "metacopy=off",
        ]
    });
    let mut mounts = vec![overlay];
    mounts.extend(spec["mounts"].as_array().cloned().unwrap_or_default());
    mounts.extend(mounts_for(req, engine)?);
    spec["mounts"] = Value::Array(mounts);
    let network = match req.run.network {
        NetworkMode::None => "none",
        NetworkMode::Host => "host",
        NetworkMode::Default => req.network.as_str(),
    };
    if network != "none" {
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
    }
    serde_json::from_value(spec).map_err(|e| BuildError::Invalid(format!("runtime spec: {e}")))
}

/// Runs one RUN step; returns its upper dir (under the store's `tmp/`) on success.
pub(super) fn run(
    engine: &Engine,
    req: &RunRequest<'_>,
    progress: &mut Progress,
) -> Result<PathBuf> {
    let store = engine.store();
    let work = store.temp_path("run");
    for d in ["", "upper", "work", "rootfs"] {
        let p = work.join(d);
        fs::create_dir(&p).map_err(io_err("create", &p))?;
    }
    let guard = TempDir(work.clone());

    // `RUN <<EOF` runs the here-document as the script; other here-documents go to stdin.
    let mut argv = req.argv.clone();
    let mut stdin_doc: Option<&Heredoc> = None;
    if let Some(first) = req.heredocs.first() {
        let only_heredoc = matches!(&req.run.command, berth_build::instructions::CommandLine::Shell(s)
            if s.trim().trim_start_matches('<').trim_start_matches('-').trim_matches(['\'', '"']) == first.name);
        if only_heredoc {
            let n = argv.len();
            argv[n - 1] = first.content.clone();
        } else {
            stdin_doc = Some(first);
        }
    }
    super::copy::ensure_dir(&work.join("upper"), &req.lowers, &req.cwd)?;
    let spec = build_spec(req, engine, &work, &argv)?;

    let (reader, writer) =
        rustix::pipe::pipe().map_err(|e| io_err("create a pipe for", &work)(e.into()))?;
    let stderr: OwnedFd = writer
        .try_clone()
        .map_err(io_err("duplicate the pipe of", &work))?;
    let stdin: Option<OwnedFd> = match stdin_doc {
        Some(doc) => {
            let p = work.join("stdin");
            fs::write(&p, &doc.content).map_err(io_err("write", &p))?;
            Some(fs::File::open(&p).map_err(io_err("open", &p))?.into())
        }
        None => None,
    };
    let runtime = Runtime::new(engine.runroot().join("build"));
    let id = format!(
        "build-{}-{}",
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    wait_single_threaded();
    let stdio = Stdio {
        stdin,
        stdout: Some(writer),
        stderr: Some(stderr),
    };
    let created = runtime.create(&id, &work, &spec, stdio);
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let _ = runtime.delete(&id);
            return Err(e.into());
        }
    };
    let pid = created.pid;
    let started = created.start();
    let mut file = fs::File::from(reader);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=pos).collect();
                    progress.output(&line);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        progress.output(&pending);
    }
    let code = match started {
        Ok(()) => wait(pid).map(|s| s.code()).unwrap_or(125),
        Err(e) => {
            let code = e.exit_code();
            if code == 125 {
                let _ = wait(pid);
                let _ = runtime.delete(&id);
                return Err(e.into());
            }
            progress.output(e.to_string().as_bytes());
            code
        }
    };
    if let Err(err) = runtime.delete(&id) {
        tracing::warn!(%err, id, "failed to delete the build container");
    }
    if code != 0 {
        return Err(BuildError::RunFailed {
            command: argv.join(" "),
            code,
        });
    }
    let upper = work.join("upper");
    let layer = store.temp_path("layer");
    fs::rename(&upper, &layer).map_err(io_err("move the upper dir of", &work))?;
    drop(guard);
    Ok(layer)
}
