//! `export`: the container's merged file system as a tar.

use std::io::Write;

use berth_image::layer::{pack_dir, PackOptions};

use super::rootfs::export_root;
use crate::{Engine, EngineError, Result};

impl Engine {
    pub fn export_container(&self, name_or_id: &str, out: impl Write) -> Result<()> {
        let c = self.container(name_or_id)?;
        let root = export_root(self, &c)?;
        pack_dir(&root, out, &PackOptions::default())
            .map_err(|e| EngineError::from(berth_image::store::StoreError::from(e)))
    }
}
