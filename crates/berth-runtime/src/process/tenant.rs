//! A process exec'd into a running container (`berth exec`): it joins the container's cgroup
//! (itself on v1, see [`crate::cgroup_join`]; moved by the parent on v2) and namespaces (the
//! parent has already put it in the pid namespace, by forking from inside it), gets its stdio
//! or a pty from the container's devpts, then goes through the same barrier and
//! [`super::launch`] steps as the init process.

use std::os::fd::AsFd;

use super::channel::{Channel, ChildFailure, Message};
use super::init::wait_for;
use super::launch::StepError;
use super::{finish_child, install_stdio, launch, setup_err, ProcessPlan, Stdio};
use crate::cgroup_join::TaskFiles;
use crate::namespaces::NamespacePlan;
use crate::{rlimits, sys, tty};

/// What the exec'd process does, decided before the fork.
#[derive(Debug)]
pub(crate) struct TenantPlan {
    pub(crate) namespaces: NamespacePlan,
    pub(crate) process: ProcessPlan,
    /// cgroup v1: the container's `tasks` files (see [`crate::cgroup_join`]).
    pub(crate) cgroup_tasks: TaskFiles,
}

/// The exec'd process's life after the fork. Never returns.
pub(crate) fn run(channel: &Channel, plan: &TenantPlan, stdio: Stdio) -> ! {
    finish_child(channel, "the exec'd process", || {
        match setup(channel, plan, stdio) {
            Ok(Some(cwd_entered)) => Some(launch::exec(&plan.process, cwd_entered)),
            Ok(None) => None,
            Err(failure) => Some(failure),
        }
    })
}

/// `Ok(Some(cwd_entered))` once started, `Ok(None)` if the parent went away.
fn setup(channel: &Channel, plan: &TenantPlan, stdio: Stdio) -> Result<Option<bool>, ChildFailure> {
    sys::reset_signals().map_err(|e| setup_err(StepError::new("reset signal dispositions", e)))?;
    // Before entering the container's cgroup namespace, from where our current cgroup is out
    // of reach.
    plan.cgroup_tasks.join_self().map_err(setup_err)?;
    let process = &plan.process;
    if !process.terminal {
        // Before joining the mount namespace: `/dev/null` for missing fds is the host's.
        install_stdio(stdio).map_err(|e| setup_err(StepError::new("set up stdio", e)))?;
    }
    plan.namespaces.join().map_err(setup_err)?;
    let mut pty_master = None;
    if process.terminal {
        rustix::process::setsid()
            .map_err(|e| setup_err(StepError::new("start a new session", e.into())))?;
        let pty = tty::open_pty(process.console_size).map_err(setup_err)?;
        tty::attach(&pty.slave).map_err(setup_err)?;
        pty_master = Some(pty.master);
    }
    rlimits::apply(&process.rlimits).map_err(setup_err)?;
    let cwd_entered = rustix::process::chdir(&process.cwd).is_ok();
    // In the container's cgroup before anything of the command runs.
    if !wait_for(channel, &Message::Continue)? {
        return Ok(None);
    }
    channel
        .send(&Message::Ready, pty_master.as_ref().map(|fd| fd.as_fd()))
        .map_err(setup_err)?;
    drop(pty_master);
    if !wait_for(channel, &Message::Start)? {
        return Ok(None);
    }
    Ok(Some(cwd_entered))
}
