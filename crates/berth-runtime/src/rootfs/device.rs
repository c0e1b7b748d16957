//! The container's `/dev`: Docker's default device nodes (`null`, `zero`, `full`, `random`,
//! `urandom`, `tty`), the spec's `linux.devices`, and the standard symlinks (`/dev/fd`,
//! `/dev/stdin`…, `/dev/ptmx -> pts/ptmx`, `/dev/core`).
//!
//! Nodes are made with `mknod(2)`; where that is not allowed (inside a user namespace) the
//! host's node is bind-mounted instead, as runc does.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{FileType, Mode};
use rustix::io::Errno;

use super::mount::mount;
use super::resolve::{fd_path, open_dir_in_root, open_in_root, Create};
use super::RootfsError;

/// One device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DevicePlan {
    /// Absolute path in the container (`/dev/null`).
    pub(crate) path: PathBuf,
    pub(crate) file_type: FileType,
    pub(crate) major: u32,
    pub(crate) minor: u32,
    /// Permission bits.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The nodes every container gets (OCI runtime spec, "Default Devices"; Docker's list).
pub(crate) fn default_devices() -> Vec<DevicePlan> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
    ]
    .into_iter()
    .chain([("tty", 5, 0)])
    .map(|(name, major, minor)| DevicePlan {
        path: Path::new("/dev").join(name),
        file_type: FileType::CharacterDevice,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

impl DevicePlan {
    /// A device from the spec's `linux.devices`.
    pub(crate) fn from_spec(device: &LinuxDevice) -> Result<Self, RootfsError> {
        let file_type = match device.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
            LinuxDeviceType::A => {
                return Err(RootfsError::InvalidDevice {
                    path: device.path().clone(),
                    reason: "type \"a\" is only valid in the cgroup allow-list".into(),
                })
            }
        };
        if !device.path().starts_with("/dev") {
            return Err(RootfsError::InvalidDevice {
                path: device.path().clone(),
                reason: "device paths must be under /dev".into(),
            });
        }
        Ok(DevicePlan {
            path: device.path().clone(),
            file_type,
            major: device.major() as u32,
            minor: device.minor() as u32,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid().unwrap_or(0),
            gid: device.gid().unwrap_or(0),
        })
    }
}

/// The symlinks of a standard `/dev`: `(name in /dev, target)`.
const SYMLINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// Creates the device nodes, the `/dev` symlinks and, for a terminal, the `/dev/console`
/// mount point, inside `root` (before `pivot_root`).
pub(crate) fn create_devices(
    root: &OwnedFd,
    devices: &[DevicePlan],
    console: bool,
) -> Result<(), RootfsError> {
    let dev = open_dir_in_root(root, Path::new("/dev")).map_err(|source| RootfsError::Device {
        step: "open /dev",
        path: PathBuf::from("/dev"),
        source,
    })?;
    for device in devices {
        create_node(root, &dev, device).map_err(|source| RootfsError::Device {
            step: "create the device node",
            path: device.path.clone(),
            source,
        })?;
    }
    for (name, target) in SYMLINKS {
        match rustix::fs::symlinkat(*target, &dev, *name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(RootfsError::Device {
                    step: "create the symlink",
                    path: Path::new("/dev").join(name),
                    source: e.into(),
                })
            }
        }
    }
    if console {
        open_in_root(root, Path::new("/dev/console"), Create::File).map_err(|source| {
            RootfsError::Device {
                step: "create the console mount point",
                path: PathBuf::from("/dev/console"),
                source,
            }
        })?;
    }
    Ok(())
}

fn create_node(root: &OwnedFd, dev: &OwnedFd, device: &DevicePlan) -> io::Result<()> {
    let relative = device.path.strip_prefix("/dev").unwrap_or(&device.path);
    let (dir, name) = match (relative.parent(), relative.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => (
            Some(open_dir_in_root(root, &device.path.with_file_name(""))?),
            name,
        ),
        (_, Some(name)) => (None, name),
        _ => return Err(io::ErrorKind::InvalidInput.into()),
    };
    let dir = dir.as_ref().unwrap_or(dev);
    let dev_t = rustix::fs::makedev(device.major, device.minor);
    match rustix::fs::mknodat(
        dir,
        name,
        device.file_type,
        Mode::from_raw_mode(device.mode),
        dev_t,
    ) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Ok(()),
        // No CAP_MKNOD over this file system (user namespace): bind the host's node.
        Err(Errno::PERM) => return bind_host_node(root, device),
        Err(e) => return Err(e.into()),
    }
    if device.uid != 0 || device.gid != 0 {
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(device.uid)),
            Some(rustix::fs::Gid::from_raw(device.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

fn bind_host_node(root: &OwnedFd, device: &DevicePlan) -> io::Result<()> {
    let target = open_in_root(root, &device.path, Create::File)?;
    mount(
        Some(&device.path),
        &fd_path(&target),
        None,
        MsFlags::MS_BIND,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_nodes() {
        let names: Vec<_> = default_devices()
            .iter()
            .map(|d| (d.path.display().to_string(), d.major, d.minor, d.mode))
            .collect();
        assert!(names.contains(&("/dev/null".into(), 1, 3, 0o666)));
        assert!(names.contains(&("/dev/tty".into(), 5, 0, 0o666)));
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn spec_devices() {
        let device: LinuxDevice = serde_json::from_str(
            r#"{"path":"/dev/net/tun","type":"c","major":10,"minor":200,"fileMode":8630}"#,
        )
        .unwrap();
        let plan = DevicePlan::from_spec(&device).unwrap();
        assert_eq!(plan.mode, 0o666);
        assert_eq!(plan.file_type, FileType::CharacterDevice);
        let outside: LinuxDevice =
            serde_json::from_str(r#"{"path":"/etc/x","type":"c","major":1,"minor":3}"#).unwrap();
        assert!(DevicePlan::from_spec(&outside).is_err());
    }
}
