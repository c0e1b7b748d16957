//! `diff`: what the container's writable layer added (A), changed (C) and deleted (D).

use berth_image::layer::{changes, Change};

use super::rootfs::lower_dirs;
use crate::{Engine, EngineError, Result};

impl Engine {
    pub fn container_changes(&self, name_or_id: &str) -> Result<Vec<Change>> {
        let c = self.container(name_or_id)?;
        let lowers = lower_dirs(self, &c.image_id)?;
        let upper = self.container_dir(&c.id).join("upper");
        changes(&upper, &lowers)
            .map_err(|e| EngineError::from(berth_image::store::StoreError::from(e)))
    }
}
