//! The last steps of every container process, after the start barrier, up to `execve`.
//!
//! Order, and why:
//! 1. every inherited descriptor above 2 becomes close-on-exec;
//! 2. seccomp *now* if `no_new_privileges` is off: without NNP, installing a filter needs
//!    `CAP_SYS_ADMIN`, which the capability steps below drop (runc does the same);
//! 3. bounding set (needs `CAP_SETPCAP`), then groups/gid/uid with `PR_SET_KEEPCAPS`, then the
//!    effective/permitted/inheritable/ambient sets;
//! 4. the working directory again, if root could not enter it before the barrier;
//! 5. `no_new_privileges`, then seccomp if not done in 2 — as late as possible, so the filter
//!    only has to allow `execve`;
//! 6. `execve` on each candidate path (execvp semantics on the container's `PATH`).
//!
//! On success this never returns; the close-on-exec sync channel tells the parent.

use std::convert::Infallible;
use std::ffi::CStr;

use super::channel::{ChildFailure, FailureKind};
use super::{failure, ProcessPlan};
use crate::{capabilities, sys, user};

/// Becomes the container process; returns only the failure if that is impossible.
pub(crate) fn exec(plan: &ProcessPlan, cwd_entered: bool) -> ChildFailure {
    match run(plan, cwd_entered) {
        Ok(never) => match never {},
        Err(failure) => failure,
    }
}

fn setup_failure(err: &(dyn std::error::Error + 'static)) -> ChildFailure {
    failure(FailureKind::Setup, err)
}

fn run(plan: &ProcessPlan, cwd_entered: bool) -> Result<Infallible, ChildFailure> {
    sys::cloexec_from(3).map_err(|e| {
        setup_failure(&StepError::new(
            "mark inherited descriptors close-on-exec",
            e,
        ))
    })?;

    let early_seccomp = !plan.no_new_privileges;
    if early_seccomp {
        if let Some(program) = &plan.seccomp {
            crate::seccomp::install_with_flags(program, &plan.seccomp_flags)
                .map_err(|e| setup_failure(&e))?;
        }
    }
    if let Some(caps) = &plan.capabilities {
        capabilities::drop_bounding(caps).map_err(|e| setup_failure(&e))?;
    }
    user::switch(&plan.user).map_err(|e| setup_failure(&e))?;
    if let Some(caps) = &plan.capabilities {
        capabilities::apply(caps).map_err(|e| setup_failure(&e))?;
    }
    if !cwd_entered {
        rustix::process::chdir(&plan.cwd).map_err(|e| {
            setup_failure(&StepError::new(
                format!("enter the working directory {}", plan.cwd.display()),
                e.into(),
            ))
        })?;
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(plan.user.umask));
    if plan.no_new_privileges {
        rustix::thread::set_no_new_privs(true)
            .map_err(|e| setup_failure(&StepError::new("set no_new_privileges", e.into())))?;
    }
    if !early_seccomp {
        if let Some(program) = &plan.seccomp {
            crate::seccomp::install_with_flags(program, &plan.seccomp_flags)
                .map_err(|e| setup_failure(&e))?;
        }
    }
    Err(execvp(plan))
}

/// Tries `execve` on each candidate like `execvp(3)`: a missing file moves on to the next
/// `PATH` entry, a permission error is remembered and reported if nothing else runs.
fn execvp(plan: &ProcessPlan) -> ChildFailure {
    let mut denied: Option<(&CStr, nix::errno::Errno)> = None;
    let mut last = nix::errno::Errno::ENOENT;
    for candidate in &plan.candidates {
        let errno = match nix::unistd::execve(candidate, &plan.args, &plan.env) {
            Ok(never) => match never {},
            Err(errno) => errno,
        };
        match errno {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => continue,
            nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => {
                denied.get_or_insert((candidate, errno));
            }
            other => {
                last = other;
                denied = Some((candidate, other));
                break;
            }
        }
    }
    let name = plan.args[0].to_string_lossy();
    match denied {
        Some((path, errno)) => ChildFailure {
            kind: FailureKind::CannotExecute,
            errno: errno as i32,
            message: format!("exec {:?}: {}", path.to_string_lossy(), errno.desc()),
        },
        None if plan.candidates.len() == 1 && name.contains('/') => ChildFailure {
            kind: FailureKind::NotFound,
            errno: last as i32,
            message: format!("exec {name:?}: no such file or directory"),
        },
        None => ChildFailure {
            kind: FailureKind::NotFound,
            errno: last as i32,
            message: format!("exec {name:?}: executable file not found in $PATH"),
        },
    }
}

/// A failed step without a module error type of its own.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step}")]
pub(crate) struct StepError {
    step: String,
    #[source]
    source: std::io::Error,
}

impl StepError {
    pub(crate) fn new(step: impl Into<String>, source: std::io::Error) -> Self {
        StepError {
            step: step.into(),
            source,
        }
    }
}
