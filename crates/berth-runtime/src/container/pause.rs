//! `pause` and `resume`: freeze and thaw every process of the container through the cgroup
//! freezer.

use super::Runtime;
use crate::cgroups::CgroupManager;
use crate::error::RuntimeError;

impl Runtime {
    /// Freezes all processes of container `id`.
    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        let state = self.state(id)?;
        if !state.is_running() {
            return Err(RuntimeError::NotRunning { id: id.to_string() });
        }
        CgroupManager::new(&self.cgroup_root, &state.cgroup_path)?.freeze()?;
        Ok(())
    }

    /// Thaws all processes of container `id`.
    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        let state = self.state(id)?;
        CgroupManager::new(&self.cgroup_root, &state.cgroup_path)?.thaw()?;
        Ok(())
    }
}
