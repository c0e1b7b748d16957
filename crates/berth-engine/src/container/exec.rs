//! `exec`: another process in a running container, run by the runtime as a child of this
//! berth process (which is single-threaded, as the runtime requires).

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use berth_runtime::oci_spec::runtime::Process;
use berth_runtime::Stdio;
use nix::sys::signal::{SigSet, Signal};
use serde_json::{json, Value};

use super::rootfs::lower_dirs;
use super::spec::resolve_user;
use super::state::ContainerState;
use crate::{Engine, EngineError, Result};

/// `exec` flags.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    pub detach: bool,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
}

/// How an exec ended.
#[derive(Debug)]
pub enum ExecOutcome {
    Exited(i32),
    Detached,
    /// Could not run: 126 (cannot execute), 127 (not found), 125/1 (other).
    Failed {
        code: i32,
        message: String,
    },
}

impl Engine {
    pub fn exec_in_container(&self, name_or_id: &str, opts: &ExecOptions) -> Result<ExecOutcome> {
        let c = self.container(name_or_id)?;
        match c.state {
            ContainerState::Running => {}
            ContainerState::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    c.id
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        if opts.cmd.is_empty() {
            return Err(EngineError::InvalidArgument(
                "exec requires at least 1 argument".into(),
            ));
        }
        let dir = self.container_dir(&c.id);
        let path = dir.join("config.json");
        let spec: Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| EngineError::Conflict(format!("Container {} is not running", c.id)))?;
        let mut process = spec["process"].clone();
        process["args"] = json!(opts.cmd);
        let mut env: Vec<String> = process["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for var in &opts.env {
            let key = var.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(var.clone());
        }
        if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        process["env"] = json!(env);
        if let Some(w) = &opts.workdir {
            process["cwd"] = json!(w);
        }
        if let Some(user) = &opts.user {
            let lowers = lower_dirs(self, &c.image_id)?;
            process["user"] = resolve_user(user, &dir.join("upper"), &lowers)?.0;
        }
        process["terminal"] = json!(opts.tty);
        if opts.tty {
            let (rows, cols) = rustix::termios::tcgetwinsize(io::stdout())
                .map(|s| (s.ws_row, s.ws_col))
                .unwrap_or((24, 80));
            process["consoleSize"] = json!({ "height": rows.max(1), "width": cols.max(1) });
        }
        if opts.privileged {
            let all = json!(super::spec::all_capabilities());
            for set in ["bounding", "effective", "permitted"] {
                process["capabilities"][set] = all.clone();
            }
        }
        let process: Process = serde_json::from_value(process)
            .map_err(|e| EngineError::InvalidArgument(format!("exec: {e}")))?;

        let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().ok();
        let stdio = if opts.tty || opts.detach {
            Stdio::default()
        } else {
            Stdio {
                stdin: if opts.interactive {
                    dup(io::stdin().as_fd())
                } else {
                    None
                },
                stdout: dup(io::stdout().as_fd()),
                stderr: dup(io::stderr().as_fd()),
            }
        };
        let created = match self.runtime().exec(&c.id, &process, stdio) {
            Ok(created) => created,
            Err(err) => {
                return Ok(ExecOutcome::Failed {
                    code: err.exit_code(),
                    message: err.to_string(),
                })
            }
        };
        if let Err(err) = created.start() {
            return Ok(ExecOutcome::Failed {
                code: err.exit_code(),
                message: err.to_string(),
            });
        }
        let exec_id = self.exec_started(&c.id, &opts.cmd);
        if opts.detach {
            return Ok(ExecOutcome::Detached);
        }
        let pid = created.pid;
        let code = proxy(pid, created.pty_master.as_ref(), opts.interactive).map_err(|source| {
            EngineError::Io {
                action: "exec in",
                path: c.id.clone(),
                source,
            }
        })?;
        self.exec_died(&c.id, &exec_id, code);
        Ok(ExecOutcome::Exited(code))
    }
}

/// Waits for the exec'd process, forwarding signals (and, with a pty, the terminal).
fn proxy(pid: i32, master: Option<&OwnedFd>, interactive: bool) -> io::Result<i32> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).expect("positive pid"),
        rustix::process::PidfdFlags::empty(),
    )?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
    ] {
        mask.add(s);
    }
    let sigfd = super::sys::signal_fd(&mask)?;
    let stdin = io::stdin();
    let stdout = io::stdout();
    let _raw = match master {
        Some(_) if interactive && rustix::termios::isatty(&stdin) => raw_mode(stdin.as_fd()),
        _ => None,
    };
    let mut stdin_open = master.is_some() && interactive;
    let mut master_open = master.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    let mut exited = false;
    loop {
        let mut fds = vec![super::sys::readable(&pidfd), super::sys::readable(&sigfd)];
        if let (Some(m), true) = (master, master_open) {
            fds.push(super::sys::readable(m));
        }
        if stdin_open {
            fds.push(super::sys::readable(stdin.as_fd()));
        }
        let timeout = if exited { 200 } else { -1 };
        let n = super::sys::poll(&mut fds, timeout)?;
        if exited && n == 0 {
            break;
        }
        if fds[0].revents != 0 && !exited {
            exited = true;
            stdin_open = false;
            if !master_open {
                break;
            }
        }
        if fds[1].revents != 0 {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH {
                    if let (Some(m), Ok(size)) = (master, rustix::termios::tcgetwinsize(&stdout)) {
                        let _ = rustix::termios::tcsetwinsize(m, size);
                    }
                } else if !exited {
                    super::sys::signal(pid, signo);
                }
            }
        }
        let mut k = 2;
        if let (Some(m), true) = (master, master_open) {
            if fds[k].revents != 0 {
                match rustix::io::read(m, &mut buf) {
                    Ok(0) | Err(_) => {
                        master_open = false;
                        if exited {
                            break;
                        }
                    }
                    Ok(n) => write_all(stdout.as_fd(), &buf[..n]),
                }
            }
            k += 1;
        }
        if stdin_open && fds.get(k).is_some_and(|p| p.revents != 0) {
            match rustix::io::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = master {
                        write_all(m.as_fd(), &buf[..n]);
                    }
                }
            }
        }
    }
    Ok(berth_runtime::wait(pid)
        .map_err(|e| io::Error::other(e.to_string()))?
        .code())
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

struct Raw<'a>(std::os::fd::BorrowedFd<'a>, rustix::termios::Termios);

impl Drop for Raw<'_> {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(self.0, rustix::termios::OptionalActions::Now, &self.1);
    }
}

fn raw_mode(fd: std::os::fd::BorrowedFd<'_>) -> Option<Raw<'_>> {
    let saved = rustix::termios::tcgetattr(fd).ok()?;
    let mut raw = saved.clone();
    raw.make_raw();
    rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
    Some(Raw(fd, saved))
}
