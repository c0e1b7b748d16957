//! The container's processes, seen from the child side of the clone.
//!
//! - [`channel`]: the typed parent ⇄ child messages;
//! - [`init`]: the container's init process (namespaces, rootfs, console, limits);
//! - [`tenant`]: a process exec'd into a running container (joins its namespaces);
//! - [`launch`]: what both do after the start barrier (identity, capabilities,
//!   no_new_privs, seccomp) up to `execve`.
//!
//! Everything the child needs is computed by the parent *before* the clone (a `…Plan`), so the
//! child mostly issues system calls; its failures travel back to the parent as a
//! [`channel::ChildFailure`] naming the failed step.

pub(crate) mod channel;
pub(crate) mod init;
pub(crate) mod launch;
pub(crate) mod tenant;

use std::error::Error;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag, Process};
use rustix::fs::{Mode, OFlags};

use crate::capabilities::{self, CapabilityPlan};
use crate::error::RuntimeError;
use crate::rlimits::RlimitPlan;
use crate::user::UserPlan;
use channel::{ChildFailure, FailureKind};

/// The search path Docker uses when the process environment has no `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The file descriptors the container process gets as stdin, stdout and stderr.
///
/// `None` means `/dev/null`. Ignored when `process.terminal` is set: the pty slave is used.
#[derive(Debug, Default)]
pub struct Stdio {
    /// Becomes fd 0.
    pub stdin: Option<OwnedFd>,
    /// Becomes fd 1.
    pub stdout: Option<OwnedFd>,
    /// Becomes fd 2.
    pub stderr: Option<OwnedFd>,
}

/// The process to run, converted from `spec.process` before the clone.
#[derive(Debug, Clone)]
pub(crate) struct ProcessPlan {
    pub(crate) args: Vec<CString>,
    pub(crate) env: Vec<CString>,
    /// What `execve` is tried on, in order: `args[0]` itself if it has a `/`, else each
    /// `PATH` entry joined with it (execvp semantics on the *container's* `PATH`).
    pub(crate) candidates: Vec<CString>,
    pub(crate) cwd: PathBuf,
    pub(crate) user: UserPlan,
    pub(crate) capabilities: Option<CapabilityPlan>,
    pub(crate) rlimits: Vec<RlimitPlan>,
    pub(crate) no_new_privileges: bool,
    pub(crate) seccomp: Option<seccompiler::BpfProgram>,
    /// The profile's `flags` (`SECCOMP_FILTER_FLAG_LOG`…).
    pub(crate) seccomp_flags: Vec<LinuxSeccompFilterFlag>,
    pub(crate) terminal: bool,
    /// `(rows, cols)`.
    pub(crate) console_size: Option<(u16, u16)>,
    pub(crate) oom_score_adj: Option<i32>,
}

impl ProcessPlan {
    /// Converts `process`; `seccomp` is the container's profile (`linux.seccomp`).
    pub(crate) fn new(
        process: &Process,
        seccomp: Option<&LinuxSeccomp>,
    ) -> Result<Self, RuntimeError> {
        let cstring = |what: &str, s: &str| {
            CString::new(s)
                .map_err(|_| RuntimeError::InvalidSpec(format!("{what} {s:?} contains a NUL byte")))
        };
        let args = process
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| cstring("argument", a))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(file) = process.args().as_ref().and_then(|a| a.first()) else {
            return Err(RuntimeError::InvalidSpec("process.args is empty".into()));
        };
        let env_list = process.env().as_deref().unwrap_or_default();
        let env = env_list
            .iter()
            .map(|e| cstring("environment variable", e))
            .collect::<Result<Vec<_>, _>>()?;
        let path = env_list
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let candidates = if file.contains('/') {
            vec![cstring("argument", file)?]
        } else {
            path.split(':')
                .map(|dir| if dir.is_empty() { "." } else { dir })
                .map(|dir| {
                    cstring(
                        "PATH entry",
                        &format!("{}/{file}", dir.trim_end_matches('/')),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        if !process.cwd().is_absolute() {
            return Err(RuntimeError::InvalidSpec(format!(
                "process.cwd {} is not absolute",
                process.cwd().display()
            )));
        }
        let user = process.user();
        let capabilities = process
            .capabilities()
            .as_ref()
            .map(|caps| CapabilityPlan::from_spec(caps, &capabilities::supported()));
        let seccomp_flags = seccomp
            .and_then(|profile| profile.flags().clone())
            .unwrap_or_default();
        let seccomp = seccomp.map(crate::seccomp::compile).transpose()?;
        Ok(ProcessPlan {
            args,
            env,
            candidates,
            cwd: process.cwd().clone(),
            user: UserPlan {
                uid: user.uid(),
                gid: user.gid(),
                additional_gids: user.additional_gids().clone().unwrap_or_default(),
                umask: user.umask().unwrap_or(0o022),
            },
            capabilities,
            rlimits: process
                .rlimits()
                .iter()
                .flatten()
                .map(RlimitPlan::from_spec)
                .collect(),
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            seccomp,
            seccomp_flags,
            terminal: process.terminal().unwrap_or(false),
            console_size: process.console_size().map(|b| {
                (
                    b.height().min(u16::MAX as u64) as u16,
                    b.width().min(u16::MAX as u64) as u16,
                )
            }),
            oom_score_adj: process.oom_score_adj(),
        })
    }
}

/// Turns a child-side error into the failure sent to the parent: the whole `source` chain as
/// the message, and the innermost OS error code.
pub(crate) fn failure(kind: FailureKind, err: &(dyn Error + 'static)) -> ChildFailure {
    let mut message = err.to_string();
    let mut errno = 0;
    let mut current: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(code) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            errno = code;
        } else if let Some(code) = e.downcast_ref::<rustix::io::Errno>() {
            errno = code.raw_os_error();
        }
        if let Some(source) = e.source() {
            message.push_str(": ");
            message.push_str(&source.to_string());
        }
        current = e.source();
    }
    ChildFailure {
        kind,
        errno,
        message,
    }
}

/// Puts the given descriptors on 0, 1 and 2 (`/dev/null` for missing ones).
pub(crate) fn install_stdio(stdio: Stdio) -> io::Result<()> {
    let Stdio {
        stdin,
        stdout,
        stderr,
    } = stdio;
    let null = if stdin.is_none() || stdout.is_none() || stderr.is_none() {
        Some(rustix::fs::open(
            "/dev/null",
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    } else {
        None
    };
    // Move sources off 0–2 first, so one dup2 cannot clobber another's source.
    let relocate = |fd: Option<OwnedFd>| -> io::Result<Option<OwnedFd>> {
        match fd {
            Some(fd) if fd.as_raw_fd() < 3 => Ok(Some(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)),
            other => Ok(other),
        }
    };
    let (stdin, stdout, stderr) = (relocate(stdin)?, relocate(stdout)?, relocate(stderr)?);
    fn pick<'a>(fd: Option<&'a OwnedFd>, null: Option<&'a OwnedFd>) -> Option<BorrowedFd<'a>> {
        fd.or(null).map(|f| f.as_fd())
    }
    let null = null.as_ref();
    if let Some(fd) = pick(stdin.as_ref(), null) {
        rustix::stdio::dup2_stdin(fd)?;
    }
    if let Some(fd) = pick(stdout.as_ref(), null) {
        rustix::stdio::dup2_stdout(fd)?;
    }
    if let Some(fd) = pick(stderr.as_ref(), null) {
        rustix::stdio::dup2_stderr(fd)?;
    }
    Ok(())
}

/// Ends a child (container init or exec'd process) after its set-up. `setup` returns the
/// failure to report, or `None` when the parent went away before starting it (exit 0). A panic
/// during set-up is reported as a set-up failure of `what`; the exit status follows the kind.
pub(crate) fn finish_child(
    channel: &channel::Channel,
    what: &str,
    setup: impl FnOnce() -> Option<ChildFailure>,
) -> ! {
    let failure = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(setup)) {
        Ok(Some(failure)) => failure,
        Ok(None) => crate::sys::exit_immediately(0),
        Err(_) => ChildFailure {
            kind: FailureKind::Setup,
            errno: 0,
            message: format!("{what} panicked during set-up"),
        },
    };
    let code = failure_exit_code(failure.kind);
    let _ = channel.send(&channel::Message::Failed(failure), None);
    crate::sys::exit_immediately(code)
}

/// A set-up step's error as the failure the child reports.
pub(crate) fn setup_err(err: impl Error + 'static) -> ChildFailure {
    failure(FailureKind::Setup, &err)
}

/// The exit status the child uses when it fails before `execve`, by Docker's conventions.
pub(crate) fn failure_exit_code(kind: FailureKind) -> i32 {
    match kind {
        FailureKind::NotFound => 127,
        FailureKind::CannotExecute => 126,
        FailureKind::Setup => 125,
    }
}
