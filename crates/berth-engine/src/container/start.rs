//! `start`: write the OCI bundle and hand the container to a new monitor.
//!
//! The CLI takes the container's lock, writes `config.json`, spawns the monitor (detached,
//! inheriting the lock and one end of a socket pair) and waits for the monitor's first frame:
//! `Started` or `Error`. With `-a` (and for `run`) the same socket carries the output from the
//! very first byte, so nothing is missed.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use super::state::{Container, ContainerState};
use super::sys::{self, LockAttempt, MonitorLock};
use super::{container_dir, rootfs, run_dir, spec};
use crate::monitor::protocol::Frame;
use crate::monitor::MonitorArgs;
use crate::{Engine, EngineError, Result};

/// How a start went.
pub enum StartOutcome {
    /// The container runs; `stream` is the monitor connection (attached to its output).
    Started {
        container: Container,
        stream: UnixStream,
    },
    /// It was running already (Docker's `start` is then a no-op).
    AlreadyRunning(Container),
    /// The process could not be started: 125 (berth), 126 (cannot execute), 127 (not found).
    Failed { code: i32, message: String },
}

impl Engine {
    /// Starts container `name_or_id`.
    pub fn start_container(&self, name_or_id: &str) -> Result<StartOutcome> {
        let container = self.container(name_or_id)?;
        self.start_loaded(container)
    }

    /// Starts a container already read from the database.
    pub fn start_loaded(&self, container: Container) -> Result<StartOutcome> {
        match container.state {
            ContainerState::Running | ContainerState::Restarting => {
                return Ok(StartOutcome::AlreadyRunning(container))
            }
            ContainerState::Paused => {
                return Err(EngineError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            ContainerState::Removing | ContainerState::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    container.id
                )))
            }
            ContainerState::Created | ContainerState::Exited => {}
        }
        let rd = run_dir(self.runroot(), &container.id);
        let lock = match MonitorLock::try_take(&rd).map_err(|source| EngineError::Io {
            action: "lock",
            path: rd.display().to_string(),
            source,
        })? {
            LockAttempt::Taken(lock) => lock,
            LockAttempt::Busy => return Ok(StartOutcome::AlreadyRunning(container)),
        };
        // Re-read under the lock: another start may have finished in between.
        let container = self.container(&container.id)?;
        if container.state.is_active() {
            return Ok(StartOutcome::AlreadyRunning(container));
        }
        let dir = container_dir(self.root(), &container.id);
        let lowers = rootfs::lower_dirs(self, &container.image_id)?;
        let mut spec = spec::build(&container, &dir, &lowers)?;
        // Held until the monitor reported the start (dropped when this function returns).
        let _volumes = self.activate_volumes(&container, &lowers, &mut spec)?;
        crate::network::endpoint::join_in_spec(self, &container, &mut spec)?;
        spec::write(&dir, &spec)?;

        let (mine, theirs) = sys::socket_pair().map_err(|source| EngineError::Io {
            action: "create",
            path: "socket pair".into(),
            source,
        })?;
        let monitor_args = MonitorArgs {
            root: std::path::absolute(self.root()).unwrap_or_else(|_| self.root().to_path_buf()),
            runroot: std::path::absolute(self.runroot())
                .unwrap_or_else(|_| self.runroot().to_path_buf()),
            id: container.id.clone(),
            sync_fd: Some(theirs.as_raw_fd()),
            lock_fd: lock.raw_fd(),
        };
        let args = monitor_args.to_command_line();
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        sys::spawn_detached(
            std::path::Path::new("/proc/self/exe"),
            &args,
            &[theirs.as_raw_fd(), lock.raw_fd()],
        )
        .map_err(|source| EngineError::Io {
            action: "start the monitor for",
            path: container.id.clone(),
            source,
        })?;
        drop(theirs);
        // The monitor holds the lock through its own copy of the descriptor now.
        drop(lock);

        let mut stream = mine;
        match Frame::recv(&mut stream) {
            Ok(Some(Frame::Started(pid))) => {
                let mut container = container;
                container.state = ContainerState::Running;
                container.pid = pid;
                Ok(StartOutcome::Started { container, stream })
            }
            Ok(Some(Frame::Error(code, message))) => Ok(StartOutcome::Failed { code, message }),
            Ok(_) | Err(_) => Ok(StartOutcome::Failed {
                code: 125,
                message: format!(
                    "the monitor of container {} exited before starting it",
                    container.id
                ),
            }),
        }
    }
}
