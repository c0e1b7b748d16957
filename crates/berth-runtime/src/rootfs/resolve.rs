//! Path resolution that cannot escape the container's root.
//!
//! Mount destinations and device paths come from the spec but are looked up in an untrusted
//! image: a symlink such as `etc -> /` in a layer must not make us create directories or mount
//! on the host. Every lookup uses `openat2(2)` with `RESOLVE_IN_ROOT` (Linux ≥ 5.6), so `..` and
//! absolute symlinks are resolved as if the rootfs were `/`, and mounts target the opened
//! `O_PATH` descriptor through `/proc/self/fd/N` rather than a path that could be swapped
//! afterwards (the approach runc took after CVE-2021-30465).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// What to create when a path does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Nothing: a missing path is an error.
    Nothing,
    /// A directory (and any missing parents).
    Directory,
    /// An empty regular file (and any missing parent directories): a mount point for a
    /// bind-mounted file.
    File,
}

/// Opens `path` (absolute or relative, always taken as inside `root`) as an `O_PATH`
/// descriptor, creating it first when asked.
pub(crate) fn open_in_root(root: &OwnedFd, path: &Path, create: Create) -> io::Result<OwnedFd> {
    open_with(root, path, create, OFlags::PATH)
}

/// Opens the directory `path` inside `root` for use as a `*at` directory descriptor, creating
/// it (and its parents) when missing.
pub(crate) fn open_dir_in_root(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    open_with(
        root,
        path,
        Create::Directory,
        OFlags::DIRECTORY | OFlags::RDONLY,
    )
}

/// The `/proc/self/fd/N` path through which a syscall taking a path reaches `fd`'s file.
pub(crate) fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `path` made relative (`/dev/pts` → `dev/pts`), with `.` components dropped; `..` stays and
/// is clamped at the root by `RESOLVE_IN_ROOT`.
pub(crate) fn in_root(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// Symlinks followed while creating one path, like the kernel's own limit (`ELOOP`).
const MAX_SYMLINKS: u32 = 40;

fn open_with(root: &OwnedFd, path: &Path, create: Create, flags: OFlags) -> io::Result<OwnedFd> {
    let relative = in_root(path);
    match open_path(root, &relative, flags) {
        Err(Errno::NOENT) if create != Create::Nothing => {
            create_in_root(root, &relative, create, MAX_SYMLINKS)?;
            open_path(root, &relative, flags).map_err(io::Error::from)
        }
        result => result.map_err(io::Error::from),
    }
}

fn open_path(root: &OwnedFd, relative: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let path = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    loop {
        match rustix::fs::openat2(
            root,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // openat2 asks callers to retry when a concurrent rename raced the lookup.
            Err(Errno::AGAIN) => continue,
            result => return result,
        }
    }
}

/// Creates `relative` (which does not resolve yet) and its missing parents. When the last
/// component is a dangling symlink, its target is created instead, still inside the root.
fn create_in_root(root: &OwnedFd, relative: &Path, create: Create, links: u32) -> io::Result<()> {
    let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = open_with(
        root,
        parent,
        Create::Directory,
        OFlags::DIRECTORY | OFlags::RDONLY,
    )?;
    let result = match create {
        Create::Directory => rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)),
        Create::File => rustix::fs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
        Create::Nothing => return Ok(()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => match rustix::fs::readlinkat(&dir, name, Vec::new()) {
            // Something exists but does not resolve: a dangling symlink. Create its target.
            Ok(target) if links > 0 => {
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                let next = if target.is_absolute() {
                    in_root(&target)
                } else {
                    parent.join(target)
                };
                create_in_root(root, &next, create, links - 1)
            }
            Ok(_) => Err(Errno::LOOP.into()),
            // Not a symlink: it exists now (created concurrently); the caller's open decides.
            Err(_) => Ok(()),
        },
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(path: &Path) -> OwnedFd {
        rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn relative_forms() {
        assert_eq!(in_root(Path::new("/dev/pts")), PathBuf::from("dev/pts"));
        assert_eq!(in_root(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(in_root(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("escape")).unwrap();
        symlink("/", root.path().join("slash")).unwrap();
        let fd = root_fd(root.path());

        open_in_root(&fd, Path::new("/escape/made"), Create::Directory).unwrap();
        open_dir_in_root(&fd, Path::new("/slash/dir")).unwrap();
        open_in_root(&fd, Path::new("/slash/../../also"), Create::File).unwrap();

        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // The absolute symlink target was taken as inside the root.
        assert!(root
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("made")
            .is_dir());
        assert!(root.path().join("also").is_file());
        assert!(root.path().join("dir").is_dir());
    }

    #[test]
    fn missing_without_create_is_not_found() {
        let root = tempfile::tempdir().unwrap();
        let fd = root_fd(root.path());
        let err = open_in_root(&fd, Path::new("/nope"), Create::Nothing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
