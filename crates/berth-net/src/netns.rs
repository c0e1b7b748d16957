//! Network namespaces pinned by a bind mount (`<runroot>/netns/<container-id>`), podman's
//! model: the namespace exists before the container and is configured fully before it
//! starts; the OCI spec joins it by path; unmounting the pin (and deleting the veth) ends it.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::mount::{self, UnmountFlags};
use rustix::thread::{self, LinkNameSpaceType, UnshareFlags};

use crate::netlink::Netlink;

/// A freshly made namespace: its file and a netlink socket inside it.
pub struct NetNs {
    pub file: OwnedFd,
    pub netlink: Netlink,
}

/// Creates a network namespace pinned at `pin` and returns it with a netlink socket opened
/// inside. The calling thread is back in its own namespace when this returns.
pub fn create(pin: &Path) -> io::Result<NetNs> {
    // The pin directory is a plain directory, not a mount of its own: an umount of a pin
    // propagates like its mount did, and a container's mount namespace drops its copies
    // when it pivots away from the host's root.
    fs::create_dir_all(pin.parent().expect("pin has a parent"))?;
    let own = File::open("/proc/thread-self/ns/net")?;
    File::create(pin)?;
    // SAFETY: NEWNET only changes this thread's network namespace; no descriptor table is
    // unshared.
    if let Err(err) = unsafe { thread::unshare_unsafe(UnshareFlags::NEWNET) } {
        let _ = fs::remove_file(pin);
        return Err(err.into());
    }
    let inside = (|| -> io::Result<NetNs> {
        let file: OwnedFd = File::open("/proc/thread-self/ns/net")?.into();
        mount::mount_bind("/proc/thread-self/ns/net", pin)?;
        let netlink = Netlink::open()?;
        Ok(NetNs { file, netlink })
    })();
    // Back home before anything else: the rest of the process must not run in the new one.
    thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
        |e| {
            io::Error::other(format!(
                "failed to return to the host network namespace: {e}"
            ))
        },
    )?;
    if inside.is_err() {
        let _ = remove(pin);
    }
    inside
}

/// Unmounts and removes the pin; a pin that is gone already is fine.
pub fn remove(pin: &Path) -> io::Result<()> {
    match mount::unmount(pin, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match fs::remove_file(pin) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `pin` is a mounted namespace (an nsfs file, not one of the directory's).
pub fn exists(pin: &Path) -> bool {
    match (
        fs::metadata(pin),
        pin.parent().and_then(|p| fs::metadata(p).ok()),
    ) {
        (Ok(file), Some(dir)) => file.dev() != dir.dev(),
        _ => false,
    }
}

/// A netlink socket inside the namespace pinned at `pin` (to change a running container's
/// network, e.g. `network connect`).
pub fn netlink_in(pin: &Path) -> io::Result<Netlink> {
    let own = File::open("/proc/thread-self/ns/net")?;
    let target = File::open(pin)?;
    thread::move_into_link_name_space(target.as_fd(), Some(LinkNameSpaceType::Network))?;
    let netlink = Netlink::open();
    thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
        |e| {
            io::Error::other(format!(
                "failed to return to the host network namespace: {e}"
            ))
        },
    )?;
    netlink
}

/// Opens the namespace file at `pin`.
pub fn open(pin: &Path) -> io::Result<OwnedFd> {
    Ok(File::open(pin)?.into())
}

/// Removes the directory of pins, each left pin unmounted first.
pub fn remove_dir(dir: &Path) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            remove(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        // A directory that an older berth made a mount point of its own.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            mount::unmount(dir, UnmountFlags::DETACH)?;
            fs::remove_dir(dir)
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
