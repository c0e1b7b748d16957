//! `kill`: signal the container's init process, never a recycled pid.

use std::os::fd::AsFd;

use super::Runtime;
use crate::error::RuntimeError;
use crate::state::State;
use crate::sys;

impl Runtime {
    /// Sends `signal` (a signal number, real-time ones included) to container `id`'s init.
    ///
    /// The process is pinned with a pidfd, then its start time is checked against the state,
    /// so a pid reused by another process is never signalled: that case, like an exited
    /// container, is [`RuntimeError::NotRunning`].
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let state = self.state(id)?;
        signal_process(&state, signal)
    }
}

/// Signals `state`'s init process if it is still the same process.
pub(crate) fn signal_process(state: &State, signal: i32) -> Result<(), RuntimeError> {
    let not_running = || RuntimeError::NotRunning {
        id: state.id.clone(),
    };
    let pid = rustix::process::Pid::from_raw(state.pid).ok_or_else(not_running)?;
    let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Err(not_running()),
        Err(e) => {
            return Err(RuntimeError::Process {
                step: "open a pidfd for",
                pid: state.pid,
                source: e.into(),
            })
        }
    };
    if !state.is_running() {
        return Err(not_running());
    }
    match sys::pidfd_send_signal(pidfd.as_fd(), signal) {
        Ok(()) => Ok(()),
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::SRCH) => {
            Err(not_running())
        }
        Err(source) => Err(RuntimeError::Process {
            step: "signal",
            pid: state.pid,
            source,
        }),
    }
}
