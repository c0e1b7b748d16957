//! Reconciling recorded state with reality: a container recorded as running (or paused, or
//! restarting) whose monitor is gone — killed, or the machine rebooted and the runroot is
//! empty — is marked exited, and whatever is left of it (processes, cgroup, runtime state) is
//! removed. A dead container is never shown as running.
//!
//! "Is the monitor alive?" is answered by the monitor's `flock` on its lock file, which the
//! kernel drops the moment the monitor dies, so pid reuse cannot fool it.

use super::run_dir;
use super::state::{self, Container, ContainerState};
use super::sys::{LockAttempt, MonitorLock};
use crate::{Engine, Result};

/// Exit status recorded when the monitor died and the real one is unknown.
pub const UNKNOWN_EXIT: i32 = 255;

impl Engine {
    /// Reads a container by name, ID or ID prefix, reconciled.
    pub fn container(&self, name_or_id: &str) -> Result<Container> {
        let container = state::resolve(self.store().db().conn(), name_or_id)?;
        self.reconcile(container)
    }

    /// Every container, newest first, reconciled.
    pub fn containers(&self) -> Result<Vec<Container>> {
        state::load_all(self.store().db().conn())?
            .into_iter()
            .map(|c| self.reconcile(c))
            .collect()
    }

    /// Returns `container` as it really is.
    pub fn reconcile(&self, container: Container) -> Result<Container> {
        if !container.state.is_active() {
            return Ok(container);
        }
        let rd = run_dir(self.runroot(), &container.id);
        if MonitorLock::is_held(&rd) {
            return Ok(container);
        }
        // Take the lock so no monitor starts while we clean up.
        let _lock = match MonitorLock::try_take(&rd) {
            Ok(LockAttempt::Taken(lock)) => Some(lock),
            Ok(LockAttempt::Busy) => return Ok(container),
            Err(_) => None,
        };
        tracing::info!(id = %container.id, "container monitor is gone; marking the container exited");
        let runtime = self.runtime();
        if runtime.state(&container.id).is_ok() {
            if let Err(err) = runtime.delete(&container.id) {
                tracing::warn!(%err, "failed to clean up after a dead monitor");
            }
        }
        let _ = berth_runtime::cgroups::CgroupManager::new(
            std::path::Path::new("/sys/fs/cgroup"),
            &super::cgroup_path(&container.id),
        )
        .and_then(|c| c.destroy());
        if let Err(err) = crate::network::endpoint::teardown(
            self.store().db().conn(),
            self.runroot(),
            &container.id,
        ) {
            tracing::warn!(%err, "failed to tear down the network of a dead container");
        }
        let tx = self.store().db().write()?;
        let current = state::load(&tx, &container.id)?;
        let Some(current) = current else {
            return Ok(container);
        };
        if !current.state.is_active() {
            return Ok(current);
        }
        let exit_code = if current.state == ContainerState::Restarting {
            current.exit_code
        } else {
            UNKNOWN_EXIT
        };
        tx.execute(
            "UPDATE containers SET state = 'exited', pid = 0, exit_code = ?2, finished_at = ?3,
                error = CASE WHEN ?4 THEN 'container monitor exited unexpectedly' ELSE error END
             WHERE id = ?1",
            rusqlite::params![
                container.id,
                exit_code,
                super::now_nanos(),
                current.state != ContainerState::Restarting
            ],
        )?;
        tx.commit()?;
        let _ = std::fs::remove_file(rd.join(crate::monitor::SOCKET));
        Ok(state::load(self.store().db().conn(), &container.id)?.unwrap_or(current))
    }
}
