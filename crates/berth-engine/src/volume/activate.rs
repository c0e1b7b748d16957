//! What `start` does with a container's mount points, and how a volume is let go again.
//!
//! For each volume the container uses, under an exclusive `flock` of the volume's directory
//! (so two starts and a stop never race on one volume):
//! 1. a volume with driver options (`type`, `device`, `o`) gets the local driver's mount on
//!    `_data` in the host's mount namespace — `mount -t TYPE -o O DEVICE _data` — unless it is
//!    mounted already, so every container using it sees the same file system;
//! 2. a volume that is empty and was never filled gets the image's content at the mount point
//!    ([`super::copy`]), unless the mount said `nocopy`;
//! 3. the spec gets a bind mount of `_data` (binds and `--mount type=tmpfs` are added too).
//!
//! The locks are held until the monitor reported the start, so the container is recorded as
//! running before anyone else looks. A driver mount is taken down ([`unmount_idle`]) as soon as
//! no running container uses the volume: when the monitor ends, when a container is removed,
//! when a start fails, and at the latest when the volume is removed.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::mounts::{load_mounts, MountPoint, BIND, TMPFS, VOLUME};
use super::{data_dir, load, volume_dir, Volume};
use crate::container::state::Container;
use crate::{Engine, EngineError, Result};

/// The volumes a starting container holds; dropping it takes down driver mounts that no
/// running container needs (the start failed, or the container already ended) and unlocks.
pub struct ActiveVolumes {
    root: PathBuf,
    /// Volume names with driver mounts, each with its lock.
    locked: Vec<(String, File)>,
    conn: Option<Connection>,
}

impl Drop for ActiveVolumes {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            for (name, _lock) in &self.locked {
                unmount_if_idle(conn, &self.root, name);
            }
        }
    }
}

/// Takes the volume's lock (blocking): the open directory, flocked.
fn lock(root: &Path, name: &str) -> Result<File> {
    let dir = volume_dir(root, name);
    let file = File::open(&dir).map_err(|source| EngineError::Io {
        action: "open",
        path: dir.display().to_string(),
        source,
    })?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        EngineError::Io {
            action: "lock",
            path: dir.display().to_string(),
            source: e.into(),
        }
    })?;
    Ok(file)
}

/// Whether something is mounted right on `path`.
pub fn is_mount_point(path: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
    .is_ok_and(|st| {
        st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
            && st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
    })
}

/// Detaches whatever is mounted on `path` (stacked mounts included).
pub fn unmount(path: &Path) {
    for _ in 0..8 {
        if !is_mount_point(path) || nix::mount::umount2(path, MntFlags::MNT_DETACH).is_err() {
            return;
        }
    }
}

/// The local driver's mount: `o` split into mount flags and file-system data, as mount(8)
/// does.
fn driver_mount(volume: &Volume, target: &Path) -> Result<()> {
    let opt = |k: &str| volume.options.get(k).map(String::as_str).unwrap_or("");
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in opt("o").split(',').filter(|o| !o.is_empty()) {
        flags |= match o {
            "ro" => MsFlags::MS_RDONLY,
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "sync" => MsFlags::MS_SYNCHRONOUS,
            "bind" => MsFlags::MS_BIND,
            "rbind" => MsFlags::MS_BIND | MsFlags::MS_REC,
            "rw" | "defaults" => MsFlags::empty(),
            other => {
                data.push(other);
                MsFlags::empty()
            }
        };
    }
    let fstype = Some(opt("type")).filter(|t| !t.is_empty() && *t != "none");
    let data = data.join(",");
    nix::mount::mount(
        Some(opt("device")),
        target,
        fstype,
        flags,
        Some(data.as_str()).filter(|d| !d.is_empty()),
    )
    .map_err(|e| {
        EngineError::InvalidArgument(format!(
            "error while mounting volume '{}': failed to mount local volume: mount {}:{}, \
             flags: {:#x}, data: {data}: {}",
            target.display(),
            opt("device"),
            target.display(),
            flags.bits(),
            e.desc()
        ))
    })
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Whether a running (or paused, or restarting) container uses volume `name`.
fn has_running_user(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT 1 FROM container_mounts m JOIN containers c ON c.id = m.container_id
          WHERE m.type = 'volume' AND m.name = ?1
            AND c.state IN ('running', 'paused', 'restarting') LIMIT 1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map_or(true, |found| found.is_some())
}

/// Takes down volume `name`'s driver mount when no running container uses it (the caller
/// holds the volume's lock).
fn unmount_if_idle(conn: &Connection, root: &Path, name: &str) {
    let data = data_dir(root, name);
    if is_mount_point(&data) && !has_running_user(conn, name) {
        unmount(&data);
    }
}

/// Takes down the driver mounts of `names` that no running container uses any more.
pub fn unmount_idle(conn: &Connection, root: &Path, names: &[String]) {
    for name in names {
        if !is_mount_point(&data_dir(root, name)) {
            continue;
        }
        if let Ok(_lock) = lock(root, name) {
            unmount_if_idle(conn, root, name);
        }
    }
}

/// The container ended: its volumes' driver mounts may be let go.
pub fn container_stopped(conn: &Connection, root: &Path, id: &str) {
    let names: Vec<String> = load_mounts(conn, id)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.kind == VOLUME)
        .map(|p| p.name)
        .collect();
    unmount_idle(conn, root, &names);
}

/// The OCI spec entry of one mount point.
pub fn spec_entry(root: &Path, point: &MountPoint) -> Value {
    let access = if point.rw { "rw" } else { "ro" };
    match point.kind {
        TMPFS => {
            let mut options = vec!["nosuid", "nodev", "noexec", access];
            options.extend(point.tmpfs.split(',').filter(|o| !o.is_empty()));
            if !point.tmpfs.contains("mode=") {
                options.push("mode=1777");
            }
            json!({ "destination": point.destination, "type": "tmpfs", "source": "tmpfs", "options": options })
        }
        kind => {
            let source = if kind == BIND {
                PathBuf::from(&point.source)
            } else {
                data_dir(root, &point.name)
            };
            let propagation = if point.propagation.is_empty() {
                "rprivate"
            } else {
                &point.propagation
            };
            json!({
                "destination": point.destination, "type": "bind",
                "source": source.display().to_string(),
                "options": ["rbind", access, propagation],
            })
        }
    }
}

impl Engine {
    /// Readies `container`'s volumes and adds its mount points to `spec` (see the module
    /// docs); `lowers` are the image's layer directories, topmost first. Keep the result
    /// until the monitor reported the start.
    pub fn activate_volumes(
        &self,
        container: &Container,
        lowers: &[PathBuf],
        spec: &mut Value,
    ) -> Result<ActiveVolumes> {
        let (active, points) = self.ready_volumes(container, lowers)?;
        let mounts = spec["mounts"].as_array_mut().expect("spec has mounts");
        for point in &points {
            mounts.retain(|m| m["destination"] != point.destination.as_str());
            mounts.push(spec_entry(self.root(), point));
        }
        Ok(active)
    }

    /// Steps 1 and 2 of the module docs for `container`: its volumes mounted by their driver
    /// and filled, ready to be mounted at the returned mount points (parents first). Keep the
    /// [`ActiveVolumes`] while they are in use.
    pub fn ready_volumes(
        &self,
        container: &Container,
        lowers: &[PathBuf],
    ) -> Result<(ActiveVolumes, Vec<MountPoint>)> {
        let mut active = ActiveVolumes {
            root: self.root().to_path_buf(),
            locked: Vec::new(),
            conn: None,
        };
        let conn = self.store().db().conn();
        let points = load_mounts(conn, &container.id)?;
        if points.is_empty() {
            return Ok((active, points));
        }
        let mut names: Vec<&str> = points
            .iter()
            .filter(|p| p.kind == VOLUME)
            .map(|p| p.name.as_str())
            .collect();
        // One order for every process: no two starts wait on each other's locks.
        names.sort_unstable();
        names.dedup();
        for name in names {
            let volume = load(conn, name)?.ok_or_else(|| super::no_such_volume(name))?;
            let held = lock(self.root(), name)?;
            let data = data_dir(self.root(), name);
            let mut fresh = false;
            if volume.is_mounted_by_driver() {
                if !is_mount_point(&data) {
                    driver_mount(&volume, &data)?;
                    fresh = true;
                }
                active.locked.push((name.to_string(), held));
                if active.conn.is_none() {
                    active.conn = crate::monitor::open_db(self.root()).ok();
                }
            }
            let copy_into = points
                .iter()
                .find(|p| p.name == name && p.kind == VOLUME && p.copy_data);
            if let Some(point) = copy_into {
                if (fresh || !volume.populated) && is_empty_dir(&data) {
                    let scratch = self.container_dir(&container.id).join("rootfs");
                    super::copy::copy_image_path(lowers, &scratch, &point.destination, &data)?;
                }
                if !volume.populated && !volume.is_mounted_by_driver() {
                    conn.execute(
                        "UPDATE volumes SET populated = 1 WHERE name = ?1",
                        params![name],
                    )?;
                }
            }
        }
        Ok((active, points))
    }
}
