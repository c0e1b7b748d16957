//! `pause` and `unpause`: the cgroup freezer, through the runtime.

use super::state::{self, Container, ContainerState};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// Freezes every process of the container.
    pub fn pause_container(&self, name_or_id: &str) -> Result<Container> {
        let c = self.container(name_or_id)?;
        match c.state {
            ContainerState::Running => {}
            ContainerState::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is already paused",
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
        self.runtime()
            .pause(&c.id)
            .map_err(|e| EngineError::Conflict(format!("Cannot pause container {}: {e}", c.id)))?;
        state::set_state(self.store().db().conn(), &c.id, ContainerState::Paused)?;
        self.container_event(&c.id, "pause", &[]);
        Ok(c)
    }

    /// Thaws a paused container.
    pub fn unpause_container(&self, name_or_id: &str) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state != ContainerState::Paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.runtime().resume(&c.id).map_err(|e| {
            EngineError::Conflict(format!("Cannot unpause container {}: {e}", c.id))
        })?;
        state::set_state(self.store().db().conn(), &c.id, ContainerState::Running)?;
        self.container_event(&c.id, "unpause", &[]);
        Ok(c)
    }

    /// Thaws a paused container that is being stopped or killed, so the signal lands.
    pub(crate) fn thaw_for_stop(&self, c: &Container) {
        if self.runtime().resume(&c.id).is_ok() {
            let _ = self.store().db().conn().execute(
                "UPDATE containers SET state = 'running' WHERE id = ?1 AND state = 'paused'",
                [&c.id],
            );
        }
    }
}
