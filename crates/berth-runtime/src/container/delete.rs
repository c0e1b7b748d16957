//! `delete`: kill whatever is left of the container, remove its cgroup and its state.

use super::kill::signal_process;
use super::Runtime;
use crate::cgroups::CgroupManager;
use crate::error::{DeleteError, RuntimeError};
use crate::state::State;

impl Runtime {
    /// Deletes container `id`: kills its init if still running (the kernel then kills the rest
    /// of its pid namespace), destroys its cgroup (which kills any remaining task) and removes
    /// its state directory. Every step is attempted even when an earlier one fails; all
    /// failures are returned together.
    ///
    /// The caller still reaps the init process it created. A container whose state is gone
    /// already is an error ([`crate::state::StateError::NotFound`] inside).
    pub fn delete(&self, id: &str) -> Result<(), DeleteError> {
        let mut errors = Vec::new();
        let state = match self.state(id) {
            Ok(state) => Some(state),
            Err(err) => {
                errors.push(err);
                None
            }
        };
        if let Some(state) = &state {
            if state.is_running() {
                match signal_process(state, rustix::process::Signal::KILL.as_raw()) {
                    Ok(()) | Err(RuntimeError::NotRunning { .. }) => {}
                    Err(err) => errors.push(err),
                }
            }
            let destroyed = CgroupManager::new(&self.cgroup_root, &state.cgroup_path)
                .and_then(|cgroup| cgroup.destroy());
            if let Err(err) = destroyed {
                errors.push(err.into());
            }
        }
        let dir = State::dir(&self.state_root, id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && state.is_none() => {}
            Err(source) => errors.push(RuntimeError::Io {
                step: "remove the state directory",
                path: dir,
                source,
            }),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DeleteError {
                id: id.to_string(),
                errors,
            })
        }
    }
}
