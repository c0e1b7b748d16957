//! berth's engine: the operations behind every command, on one store.
//!
//! Where to start reading: [`Engine`] opens the store; [`image`] holds the image operations
//! (import, list, inspect, history, tag, remove, prune, save, load).

pub mod build;
pub mod container;
pub mod error;
pub mod events;
pub mod image;
pub mod monitor;
pub mod network;
pub mod registry;
pub mod system;
pub mod volume;

use std::path::{Path, PathBuf};

use berth_image::store::Store;

pub use error::{EngineError, Result};

/// An open engine: the image store plus the run-time state directory.
pub struct Engine {
    store: Store,
    runroot: PathBuf,
}

impl Engine {
    /// Opens the store at `root` (created if missing), with run-time state under `runroot`.
    pub fn open(root: &Path, runroot: &Path) -> Result<Engine> {
        let store = Store::open(root)?;
        container::state::ensure_schema(store.db().conn())?;
        volume::ensure_schema(store.db().conn())?;
        network::ensure_schema(store.db().conn(), root)?;
        events::ensure_schema(store.db().conn())?;
        Ok(Engine {
            store,
            runroot: runroot.to_path_buf(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    pub fn runroot(&self) -> &Path {
        &self.runroot
    }
}
