//! A container's file system seen from the host: its image's layer directories, files read
//! straight from the layers, and the merged view for `cp`, `export` and `commit`.
//!
//! `cp` of a running container goes through `/proc/<pid>/root`. Otherwise the container's
//! overlay is mounted on demand in a *private mount namespace* of the calling berth process, so
//! it can never be left mounted on the host: it disappears when the process exits. `export`
//! takes the overlay alone (Docker documents that it leaves volumes out); `cp` takes
//! [`ContainerView`], which for a stopped container adds its volumes, binds and tmpfs mounts in
//! that namespace, as Docker's `cp` does.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use berth_image::ChainId;

use super::state::{Container, ContainerState};
use crate::volume::activate::{spec_entry, ActiveVolumes};
use crate::{Engine, EngineError, Result};

/// The image's unpacked layer directories, topmost first (overlay `lowerdir` order).
pub fn lower_dirs(engine: &Engine, image_id: &str) -> Result<Vec<PathBuf>> {
    let id: berth_image::Digest = image_id
        .parse()
        .map_err(|_| EngineError::NotFound(format!("No such image: {image_id}")))?;
    let (_, config) = engine.store().image_config(&id)?;
    let chain = ChainId::chain(&config.rootfs.diff_ids);
    Ok(chain
        .iter()
        .rev()
        .map(|c| engine.store().layer_dir(c))
        .collect())
}

/// Reads `rel` as the container would see it, from the upper dir and then each layer: an
/// overlay whiteout (0:0 character device) hides the layers below.
pub fn find_file(upper: &Path, lowers: &[PathBuf], rel: &str) -> Option<Vec<u8>> {
    for dir in std::iter::once(upper).chain(lowers.iter().map(PathBuf::as_path)) {
        let path = dir.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_char_device() => return None,
            Ok(meta) if meta.is_file() => return fs::read(&path).ok(),
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

static UNSHARED: AtomicBool = AtomicBool::new(false);

/// `/proc/<pid>/root` of a running (or paused) container: its own mount namespace's view,
/// volumes and all.
fn running_root(container: &Container) -> Option<PathBuf> {
    let running = matches!(
        container.state,
        ContainerState::Running | ContainerState::Paused
    );
    (running && container.pid > 0).then(|| PathBuf::from(format!("/proc/{}/root", container.pid)))
}

/// `export`'s root: the container's own files, its upper dir stacked read-only on the image's
/// layers in this process's private mount namespace, running or not. Like Docker's, it leaves
/// out everything mounted in the container: volumes, binds, `/proc`…
pub fn export_root(engine: &Engine, container: &Container) -> Result<PathBuf> {
    let lowers = lower_dirs(engine, &container.image_id)?;
    mount_overlay_root(engine, container, &lowers, Access::ReadOnly)
}

/// How a container's overlay is mounted outside the container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// With its upper and work dirs, as the container has it (only while it is stopped).
    Writable,
    /// The upper dir as one more lower layer: needs no work dir, so it can be mounted beside
    /// the running container's own overlay.
    ReadOnly,
}

/// The file system `cp` works on: the tree the container's processes see (or would see).
pub struct ContainerView {
    pub root: PathBuf,
    /// A stopped container's volumes, held (driver mounts, locks) while the view is used.
    _volumes: Option<ActiveVolumes>,
}

impl ContainerView {
    /// A running container's own view; for a stopped one, its overlay with its volumes, binds
    /// (read-only ones read-only) and empty tmpfs mounts at their destinations, all in this
    /// process's private mount namespace. The volumes are readied as `start` readies them:
    /// driver mounts, and the image's content copied into a new volume.
    pub fn open(engine: &Engine, container: &Container) -> Result<ContainerView> {
        if let Some(root) = running_root(container) {
            return Ok(ContainerView {
                root,
                _volumes: None,
            });
        }
        let lowers = lower_dirs(engine, &container.image_id)?;
        let root = mount_overlay_root(engine, container, &lowers, Access::Writable)?;
        let (volumes, points) = engine.ready_volumes(container, &lowers)?;
        let mounts = points
            .into_iter()
            .map(|mut point| {
                // The container's propagation is for its own namespace; ours stays private.
                point.propagation = "rprivate".into();
                serde_json::from_value(spec_entry(engine.root(), &point))
            })
            .collect::<serde_json::Result<Vec<berth_runtime::oci_spec::runtime::Mount>>>()
            .map_err(|e| EngineError::InvalidArgument(format!("bad mount point: {e}")))?;
        berth_runtime::mount_in_root(&root, &mounts).map_err(|e| EngineError::Io {
            action: "mount the volumes of",
            path: format!("{}: {e}", container.name.trim_start_matches('/')),
            source: std::io::Error::other(e),
        })?;
        Ok(ContainerView {
            root,
            _volumes: Some(volumes),
        })
    }
}

/// Mounts `container`'s overlay (image layers `lowers`, topmost first) on its `rootfs`
/// directory, in this process's private mount namespace.
fn mount_overlay_root(
    engine: &Engine,
    container: &Container,
    lowers: &[PathBuf],
    access: Access,
) -> Result<PathBuf> {
    let dir = engine.container_dir(&container.id);
    let target = dir.join("rootfs");
    if !UNSHARED.swap(true, Ordering::SeqCst) {
        super::sys::private_mount_namespace().map_err(|source| EngineError::Io {
            action: "enter a private mount namespace for",
            path: target.display().to_string(),
            source,
        })?;
    }
    let upper = dir.join("upper");
    let mut layers: Vec<String> = Vec::new();
    if access == Access::ReadOnly {
        layers.push(upper.display().to_string());
    }
    layers.extend(lowers.iter().map(|p| p.display().to_string()));
    // An overlay wants a lower layer, and two when it has no upper dir.
    if layers.len() < 2 {
        let empty = dir.join("lower");
        let _ = fs::create_dir_all(&empty);
        layers.push(empty.display().to_string());
    }
    let mut data = format!("lowerdir={}", layers.join(":"));
    if access == Access::Writable {
        data += &format!(
            ",upperdir={},workdir={}",
            upper.display(),
            dir.join("work").display()
        );
    }
    data += ",index=off,redirect_dir=off,metacopy=off";
    super::sys::mount_overlay(&target, &data).map_err(|source| EngineError::Io {
        action: "mount the overlay of",
        path: target.display().to_string(),
        source,
    })?;
    Ok(target)
}
