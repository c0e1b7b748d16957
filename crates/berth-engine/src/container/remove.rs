//! `rm`: a stopped container's row and files; `-f` kills a running one first.

use std::time::{Duration, Instant};

use super::state::{self, ContainerState};
use super::sys::{LockAttempt, MonitorLock};
use super::{container_dir, run_dir};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// Removes a container. Running (or paused) ones need `force`, which kills them.
    pub fn remove_container(&self, name_or_id: &str, force: bool) -> Result<()> {
        self.remove_container_with_volumes(name_or_id, force, false)
    }

    /// Removes a container; with `volumes` (`rm -v`) its anonymous volumes too.
    pub fn remove_container_with_volumes(
        &self,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        if c.state.is_active() {
            if !force {
                return Err(EngineError::Conflict(match c.state {
                    ContainerState::Paused => format!(
                        "You cannot remove a paused container {}. Unpause and then stop the container before attempting removal or force remove",
                        c.id
                    ),
                    _ => format!(
                        "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                        c.id
                    ),
                }));
            }
            self.stop_loaded(&c, Some(0), Some("SIGKILL"))?;
        }
        // Wait for the monitor to let go (it may still be recording the exit or doing --rm).
        let rd = run_dir(self.runroot(), &c.id);
        let deadline = Instant::now() + Duration::from_secs(10);
        let _lock = loop {
            match MonitorLock::try_take(&rd) {
                Ok(LockAttempt::Taken(lock)) => break Some(lock),
                Ok(LockAttempt::Busy) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(LockAttempt::Busy) => {
                    return Err(EngineError::Conflict(format!(
                        "container {} is being started or stopped; try again",
                        c.id
                    )))
                }
                Err(_) => break None,
            }
        };
        let Some(current) = state::load(self.store().db().conn(), &c.id)? else {
            // Its monitor removed it (--rm).
            let _ = std::fs::remove_dir_all(&rd);
            return Ok(());
        };
        if current.state.is_active() {
            // The monitor died without recording the exit.
            self.reconcile(current)?;
        }
        state::set_state(self.store().db().conn(), &c.id, ContainerState::Removing)?;
        let runtime = self.runtime();
        if runtime.state(&c.id).is_ok() {
            if let Err(err) = runtime.delete(&c.id) {
                tracing::warn!(%err, "failed to delete the runtime container");
            }
        }
        // Normally done by the monitor already; a no-op then.
        if let Err(err) =
            crate::network::endpoint::teardown(self.store().db().conn(), self.runroot(), &c.id)
        {
            tracing::warn!(%err, "failed to tear down the container's network");
        }
        let dir = container_dir(self.root(), &c.id);
        if let Err(source) = std::fs::remove_dir_all(&dir) {
            if source.kind() != std::io::ErrorKind::NotFound {
                state::set_state(self.store().db().conn(), &c.id, ContainerState::Dead)?;
                return Err(EngineError::Io {
                    action: "remove",
                    path: dir.display().to_string(),
                    source,
                });
            }
        }
        self.container_event(&c.id, "destroy", &[]);
        self.store()
            .db()
            .conn()
            .execute("DELETE FROM containers WHERE id = ?1", [&c.id])?;
        crate::volume::mounts::container_removed(
            self.store().db().conn(),
            self.root(),
            &c.id,
            volumes,
        )?;
        let _ = std::fs::remove_dir_all(&rd);
        Ok(())
    }
}
