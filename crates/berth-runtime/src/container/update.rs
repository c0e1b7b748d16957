//! `update`: new resource limits for a running (or paused) container, as `runc update`.

use oci_spec::runtime::LinuxResources;

use super::Runtime;
use crate::cgroups::CgroupManager;
use crate::error::RuntimeError;

impl Runtime {
    /// Writes `resources` to container `id`'s cgroup; limits `resources` leaves unset stay
    /// as they are. A container that has exited is [`RuntimeError::NotRunning`].
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), RuntimeError> {
        let state = self.state(id)?;
        if !state.is_running() {
            return Err(RuntimeError::NotRunning { id: id.to_string() });
        }
        CgroupManager::new(&self.cgroup_root, &state.cgroup_path)?.update(resources)?;
        Ok(())
    }
}
