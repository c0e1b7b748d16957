//! The runtime's verbs, one file each: [`Runtime::create`], [`Created::start`],
//! [`Runtime::exec`], [`Runtime::kill`], [`Runtime::pause`]/[`Runtime::resume`],
//! [`Runtime::update`], [`Runtime::delete`], and [`wait`] for the caller to reap what it created.
//!
//! # Process model
//!
//! The caller — the engine's per-container monitor, or the CLI for exec — calls these
//! in-process and becomes the **parent** of every process it creates: it reaps them with
//! [`wait`] (or its own `waitpid`/`SIGCHLD` loop) and gets their exit status directly.
//!
//! The caller **must be single-threaded** when calling `create` or `exec`: they fork, and a
//! fork of a multi-threaded process can deadlock on locks held by the other threads (malloc,
//! stdio). Both verbs check it and fail with [`RuntimeError::MultiThreaded`]. Never call them
//! from inside an async runtime's worker threads. The caller must not set `SIGCHLD` to
//! `SIG_IGN` (the kernel would reap its children itself); its signal mask and dispositions are
//! not inherited by the container, which starts with all signals default and unblocked.
//!
//! # Exit status and exec errors
//!
//! [`Created::start`] returns `Ok` once `execve` has succeeded; the process's exit status then
//! comes from [`wait`] ([`ExitStatus::code`] is Docker's number: the status, or 128 + signal).
//! If `execve` fails, `start` returns [`RuntimeError::NotFound`] (127) or
//! [`RuntimeError::CannotExecute`] (126) and has reaped the process already.

mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod start;
mod update;

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::RuntimeError;
use crate::namespaces::PidNamespaceEntry;
use crate::process::channel::Channel;
use crate::process::Stdio;
use crate::state::State;
use crate::sys::{self, CloneResult};

/// Where the runtime keeps its state and finds the cgroup file system.
#[derive(Debug, Clone)]
pub struct Runtime {
    state_root: PathBuf,
    cgroup_root: PathBuf,
}

impl Runtime {
    /// A runtime keeping per-container state under `state_root` (e.g. `/run/berth/runtime`),
    /// with cgroups under `/sys/fs/cgroup`.
    pub fn new(state_root: impl Into<PathBuf>) -> Self {
        Runtime {
            state_root: state_root.into(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    /// Uses another cgroup mount root (tests, unusual hosts).
    pub fn with_cgroup_root(mut self, cgroup_root: impl Into<PathBuf>) -> Self {
        self.cgroup_root = cgroup_root.into();
        self
    }

    /// The directory holding one sub-directory of state per container.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The recorded state of container `id`.
    pub fn state(&self, id: &str) -> Result<State, RuntimeError> {
        Ok(State::load(&self.state_root, id)?)
    }
}

/// A process stopped at the start barrier: the container's init after [`Runtime::create`], or
/// an exec'd process after [`Runtime::exec`]. It is a child of the caller.
///
/// Dropping it without [`Created::start`] makes the process exit with status 0; the caller
/// still reaps it.
#[derive(Debug)]
pub struct Created {
    /// The process id, in the caller's pid namespace.
    pub pid: i32,
    /// The pty master when `process.terminal` is set; the caller owns it.
    pub pty_master: Option<OwnedFd>,
    channel: Channel,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The status as a shell (and Docker) reports it: the exit status, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => 128 + signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Signaled(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// Reaps the caller's child `pid`, blocking until it ends.
pub fn wait(pid: i32) -> Result<ExitStatus, RuntimeError> {
    let failed = |source: std::io::Error| RuntimeError::Process {
        step: "wait for",
        pid,
        source,
    };
    let target = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| failed(std::io::ErrorKind::InvalidInput.into()))?;
    loop {
        match rustix::process::waitpid(Some(target), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(signal) = status.terminating_signal() {
                    return Ok(ExitStatus::Signaled(signal));
                }
                if let Some(code) = status.exit_status() {
                    return Ok(ExitStatus::Exited(code));
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(failed(e.into())),
        }
    }
}

/// Fails unless the calling process has exactly one thread (see the module docs).
fn ensure_single_threaded() -> Result<(), RuntimeError> {
    let threads = sys::thread_count().map_err(|source| RuntimeError::Io {
        step: "count the threads in",
        path: PathBuf::from("/proc/self/task"),
        source,
    })?;
    if threads > 1 {
        return Err(RuntimeError::MultiThreaded { threads });
    }
    Ok(())
}

/// Clones the process that becomes a container's init or an exec'd process: inside the pid
/// namespace `join_pid` when given, in the new namespaces `clone_flags` asks for. The child
/// runs `child_main` with its end of the channel, `plan` and `stdio`; the parent gets the
/// child's pid and its own end, and closes its copy of `stdio`.
///
/// # Safety
///
/// As for [`sys::clone_process`]: the calling process must be single-threaded (checked with
/// [`ensure_single_threaded`]).
unsafe fn clone_child<Plan>(
    join_pid: Option<&OwnedFd>,
    clone_flags: u64,
    stdio: Stdio,
    child_main: fn(&Channel, &Plan, Stdio) -> !,
    plan: &Plan,
) -> Result<(i32, Channel), RuntimeError> {
    let (parent, child) = Channel::pair()?;
    let pid = {
        let _pid_namespace = join_pid.map(PidNamespaceEntry::enter).transpose()?;
        // SAFETY: the caller guarantees a single-threaded process (this function's contract).
        match unsafe { sys::clone_process(clone_flags) } {
            Err(e) => return Err(RuntimeError::Clone(e)),
            Ok(CloneResult::Child) => {
                drop(parent);
                child_main(&child, plan, stdio)
            }
            Ok(CloneResult::Parent(pid)) => pid,
        }
    };
    drop(child);
    drop(stdio);
    Ok((pid, parent))
}

/// Container ids become directory and cgroup names.
fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let valid = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

/// Kills and reaps a child that failed during set-up; used by create's and exec's cleanup.
fn kill_and_reap(pid: i32) -> Option<ExitStatus> {
    if let Some(target) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(target, rustix::process::Signal::KILL);
    }
    wait(pid).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["abc", "a.b-c_d", "0123456789abcdef"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ExitStatus::Exited(3).code(), 3);
        assert_eq!(ExitStatus::Signaled(9).code(), 137);
    }
}
