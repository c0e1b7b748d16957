//! The container's root file system, set up by the init process in its new mount namespace.
//!
//! Order (each step relies on the previous one):
//! 1. make every mount private (`MS_REC|MS_PRIVATE` on `/`) so nothing propagates to the host;
//! 2. mount the overlay root on `root.path` ([`overlay`]), or bind `root.path` onto itself so
//!    it is a mount point;
//! 3. the spec's mounts ([`mount`]), inside the root and symlink-safe ([`resolve`]);
//! 4. device nodes and `/dev` symlinks ([`device`]);
//! 5. `pivot_root(".", ".")` and a lazy unmount of the old root;
//!
//! and after the console and sysctls, [`finalize`]: read-only paths, masked paths, and a
//! read-only root.

pub(crate) mod device;
pub(crate) mod mount;
pub(crate) mod overlay;
pub(crate) mod resolve;

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use rustix::fs::{Mode, OFlags};

use device::DevicePlan;
use mount::{mount, CgroupMounts, MountPlan};

/// Errors while building the container's root file system.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A spec mount entry is invalid.
    #[error("invalid mount {}: {reason}", destination.display())]
    InvalidMount {
        /// The entry's destination.
        destination: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A spec device entry is invalid.
    #[error("invalid device {}: {reason}", path.display())]
    InvalidDevice {
        /// The device path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A mount step failed.
    #[error("failed to {step} on {}", destination.display())]
    Mount {
        /// The failed step.
        step: &'static str,
        /// The mount's destination in the container.
        destination: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Creating a device node or `/dev` entry failed.
    #[error("failed to {step} {}", path.display())]
    Device {
        /// The failed step.
        step: &'static str,
        /// The path in the container.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A step on the root itself failed (propagation, pivot_root, read-only remount…).
    #[error("failed to {step} {}", path.display())]
    Root {
        /// The failed step.
        step: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Everything the init process needs for the root file system, computed before the clone.
#[derive(Debug, Clone)]
pub(crate) struct RootfsPlan {
    /// Absolute host path of the root (`bundle/root.path`).
    pub(crate) root: PathBuf,
    /// The overlay mount for `/`, if the spec describes one.
    pub(crate) overlay: Option<MountPlan>,
    /// Propagation requested for `/` in the container (`linux.rootfsPropagation`).
    pub(crate) propagation: Option<MsFlags>,
    /// The other mounts, in spec order.
    pub(crate) mounts: Vec<MountPlan>,
    /// Device nodes: the defaults and `linux.devices`.
    pub(crate) devices: Vec<DevicePlan>,
    /// Create `/dev/console` as a mount point for the pty.
    pub(crate) console: bool,
    /// Remount `/` read-only at the end.
    pub(crate) readonly: bool,
    pub(crate) masked_paths: Vec<PathBuf>,
    pub(crate) readonly_paths: Vec<PathBuf>,
    /// How `type: cgroup` mounts are made.
    pub(crate) cgroups: CgroupMounts,
}

/// Steps 1–5 of the module docs: from the host's mount tree to the container's, ending with the
/// container's root as `/` and the working directory at `/`.
pub(crate) fn prepare(plan: &RootfsPlan) -> Result<(), RootfsError> {
    let root_failed = |step: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| RootfsError::Root { step, path, source }
    };
    // Private (or slave, when asked) before anything is mounted: neither the overlay nor any
    // other mount of the container may propagate to the host. A requested shared propagation
    // is applied only after pivot_root, which refuses shared mounts.
    let initial = match plan.propagation {
        Some(p) if !p.contains(MsFlags::MS_SHARED) => p,
        _ => MsFlags::MS_REC | MsFlags::MS_PRIVATE,
    };
    mount(None, "/", None, initial, None)
        .map_err(root_failed("make all mounts private from", Path::new("/")))?;

    let root_str = plan.root.to_str().ok_or_else(|| {
        root_failed("use as root", &plan.root)(io::ErrorKind::InvalidInput.into())
    })?;
    match &plan.overlay {
        Some(overlay) => overlay::mount_root(overlay, &plan.root)
            .map_err(root_failed("mount the overlay root on", &plan.root))?,
        None => mount(
            Some(&plan.root),
            root_str,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(root_failed(
            "bind mount the root onto itself at",
            &plan.root,
        ))?,
    }

    let root = open_root(&plan.root)?;
    for entry in &plan.mounts {
        mount::mount_entry(&root, entry, &plan.cgroups)?;
    }
    device::create_devices(&root, &plan.devices, plan.console)?;
    drop(root);

    pivot(&plan.root)?;
    if let Some(propagation) = plan.propagation.filter(|p| p.contains(MsFlags::MS_SHARED)) {
        mount(None, "/", None, propagation, None)
            .map_err(root_failed("set the root propagation of", Path::new("/")))?;
    }
    Ok(())
}

/// Mounts spec `mounts` (binds, tmpfs…; not cgroups) inside the directory `root`, exactly as
/// a starting container gets them: each destination resolved inside `root` and created there
/// if missing, never outside it ([`resolve`]). For a caller that sees a container's file
/// system without running it (the engine's `cp` of a stopped container); it must be in a
/// private mount namespace of its own, as this changes the mount table.
pub fn mount_in_root(root: &Path, mounts: &[oci_spec::runtime::Mount]) -> Result<(), RootfsError> {
    let root_fd = open_root(root)?;
    for entry in mounts {
        let plan = MountPlan::from_spec(entry, Path::new("/"))?;
        if plan.kind == mount::MountKind::Cgroup {
            return Err(RootfsError::InvalidMount {
                destination: plan.destination,
                reason: "a cgroup mount needs the container's own cgroup".into(),
            });
        }
        mount::mount_entry(&root_fd, &plan, &CgroupMounts::default())?;
    }
    Ok(())
}

/// The root directory as an `O_PATH` descriptor, for [`resolve`].
fn open_root(root: &Path) -> Result<std::os::fd::OwnedFd, RootfsError> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::Root {
        step: "open the root",
        path: root.to_path_buf(),
        source: e.into(),
    })
}

/// Makes `root` the new `/`: `pivot_root(".", ".")` stacks the old root on top of the new one,
/// so a lazy unmount of `.` removes it without needing a temporary directory in the image
/// (the trick runc and LXC use).
fn pivot(root: &Path) -> Result<(), RootfsError> {
    let failed = |step: &'static str| {
        let path = root.to_path_buf();
        move |source: io::Error| RootfsError::Root { step, path, source }
    };
    rustix::process::chdir(root).map_err(|e| failed("enter the root")(e.into()))?;
    rustix::process::pivot_root(".", ".").map_err(|e| failed("pivot_root into")(e.into()))?;
    // Our unmount must not propagate anywhere, whatever propagation the old root had.
    mount(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
        .map_err(failed("make the old root a slave, below"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| failed("detach the old root, above")(e.into()))?;
    rustix::process::chdir("/").map_err(|e| failed("enter the new root")(e.into()))?;
    Ok(())
}

/// After `pivot_root`: read-only paths, masked paths, then the read-only root.
pub(crate) fn finalize(plan: &RootfsPlan) -> Result<(), RootfsError> {
    for path in &plan.readonly_paths {
        readonly_path(path)?;
    }
    for path in &plan.masked_paths {
        mask_path(path)?;
    }
    if plan.readonly {
        mount::remount_bind("/", MsFlags::MS_RDONLY).map_err(|source| RootfsError::Root {
            step: "remount read-only",
            path: PathBuf::from("/"),
            source,
        })?;
    }
    Ok(())
}

/// Bind-mounts `path` onto itself read-only; a missing path is skipped.
fn readonly_path(path: &Path) -> Result<(), RootfsError> {
    let failed = |step: &'static str| {
        let path = path.to_path_buf();
        move |source: io::Error| RootfsError::Root { step, path, source }
    };
    let path_str = path
        .to_str()
        .ok_or_else(|| failed("use")(io::ErrorKind::InvalidInput.into()))?;
    match mount(
        Some(path),
        path_str,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    ) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        result => result.map_err(failed("bind mount the read-only path"))?,
    }
    mount::remount_bind(path_str, MsFlags::MS_RDONLY | MsFlags::MS_REC)
        .map_err(failed("remount read-only"))
}

/// Hides `path`: `/dev/null` over a file, an empty read-only tmpfs over a directory; a missing
/// path is skipped.
///
/// The type is looked up first rather than learnt from a failed bind of `/dev/null` onto a
/// directory: that failure frees the half-made mount and costs an RCU grace period.
fn mask_path(path: &Path) -> Result<(), RootfsError> {
    let failed = |step: &'static str| {
        let path = path.to_path_buf();
        move |source: io::Error| RootfsError::Root { step, path, source }
    };
    let path_str = path
        .to_str()
        .ok_or_else(|| failed("use")(io::ErrorKind::InvalidInput.into()))?;
    let is_dir = match rustix::fs::stat(path) {
        Ok(stat) => rustix::fs::FileType::from_raw_mode(stat.st_mode).is_dir(),
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(failed("look up the masked path")(e.into())),
    };
    if is_dir {
        mount(
            Some(Path::new("tmpfs")),
            path_str,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )
        .map_err(failed("mask the directory"))
    } else {
        mount(
            Some(Path::new("/dev/null")),
            path_str,
            None,
            MsFlags::MS_BIND,
            None,
        )
        .map_err(failed("mask the file"))
    }
}
