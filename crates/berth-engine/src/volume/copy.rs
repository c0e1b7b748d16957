//! Filling a new volume with the image's content at its mount point, as Docker does: files,
//! directories, symlinks and device nodes with their mode, owner, extended attributes and
//! times; the volume's own directory takes the mode and owner of the image's directory.
//!
//! The image is untrusted. Its layers are seen merged through a read-only overlay mounted in
//! a private mount namespace of a short-lived thread (so nothing can be left mounted on the
//! host), the mount point is resolved with `openat2(RESOLVE_IN_ROOT)` inside that view, and
//! everything below is reached with `*at` calls on directory descriptors and `O_NOFOLLOW`: a
//! symlink in the image is copied as a symlink and never followed, on either side.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::{EngineError, Result};

fn failed(what: &Path) -> impl Fn(io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        action: "copy the image's content into",
        path: what.display().to_string(),
        source,
    }
}

/// Copies what the image (`lowers`, topmost first) has at `destination` into the volume
/// directory `data`. `scratch` is an empty directory to mount the image's merged view on.
pub fn copy_image_path(
    lowers: &[PathBuf],
    scratch: &Path,
    destination: &str,
    data: &Path,
) -> Result<()> {
    let run = || -> io::Result<()> {
        let view = match lowers {
            [] => return Ok(()),
            [only] => only.clone(),
            _ => {
                crate::container::sys::private_mount_namespace()?;
                let lowerdir: Vec<String> =
                    lowers.iter().map(|p| p.display().to_string()).collect();
                crate::container::sys::mount_overlay(
                    scratch,
                    &format!("lowerdir={}", lowerdir.join(":")),
                )?;
                scratch.to_path_buf()
            }
        };
        copy_tree(&view, destination, data)
    };
    // The private mount namespace belongs to this thread alone and ends with it.
    std::thread::scope(|s| s.spawn(run).join())
        .unwrap_or_else(|_| Err(io::Error::other("the copy thread panicked")))
        .map_err(failed(data))
}

/// Copies `path` (resolved inside `root`) into the existing directory `dest`.
pub fn copy_tree(root: &Path, path: &str, dest: &Path) -> io::Result<()> {
    let root = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = path.trim_start_matches('/');
    let source = match rustix::fs::openat2(
        &root,
        if rel.is_empty() { "." } else { rel },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let target = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    copy_children(&source, &target)?;
    let stat = rustix::fs::fstat(&source)?;
    copy_metadata(&source, &target, &stat)
}

fn copy_children(source: &OwnedFd, target: &OwnedFd) -> io::Result<()> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in rustix::fs::Dir::read_from(source)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        copy_entry(source, target, OsStr::from_bytes(&name))?;
    }
    Ok(())
}

fn copy_entry(source: &OwnedFd, target: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let stat = rustix::fs::statat(source, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let no_follow = OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            rustix::fs::mkdirat(target, name, Mode::from_raw_mode(0o700))?;
            let from = rustix::fs::openat(
                source,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | no_follow,
                Mode::empty(),
            )?;
            let to = rustix::fs::openat(
                target,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | no_follow,
                Mode::empty(),
            )?;
            copy_children(&from, &to)?;
            copy_metadata(&from, &to, &stat)
        }
        FileType::RegularFile => {
            let from = rustix::fs::openat(source, name, OFlags::RDONLY | no_follow, Mode::empty())?;
            let to = rustix::fs::openat(
                target,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | no_follow,
                Mode::from_raw_mode(0o600),
            )?;
            io::copy(
                &mut File::from(from.try_clone()?),
                &mut File::from(to.try_clone()?),
            )?;
            copy_metadata(&from, &to, &stat)
        }
        FileType::Symlink => {
            let link = rustix::fs::readlinkat(source, name, Vec::new())?;
            rustix::fs::symlinkat(link.as_c_str(), target, name)?;
            set_owner_and_times(target, name, &stat)
        }
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
            let kind = FileType::from_raw_mode(stat.st_mode);
            rustix::fs::mknodat(
                target,
                name,
                kind,
                Mode::from_raw_mode(stat.st_mode & 0o777),
                stat.st_rdev,
            )?;
            set_owner_and_times(target, name, &stat)?;
            rustix::fs::chmodat(
                target,
                name,
                Mode::from_raw_mode(stat.st_mode & 0o7777),
                AtFlags::empty(),
            )?;
            Ok(())
        }
        // Sockets and anything else have no content to copy.
        _ => Ok(()),
    }
}

fn timestamps(stat: &rustix::fs::Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: stat.st_atime as _,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: stat.st_mtime as _,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    }
}

/// Owner and times of a directory entry that cannot be opened (symlinks, device nodes).
fn set_owner_and_times(dir: &OwnedFd, name: &OsStr, stat: &rustix::fs::Stat) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(stat.st_uid)),
        Some(rustix::fs::Gid::from_raw(stat.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    rustix::fs::utimensat(dir, name, &timestamps(stat), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Owner, mode (after the owner: chown clears set-id bits), extended attributes and times.
fn copy_metadata(from: &OwnedFd, to: &OwnedFd, stat: &rustix::fs::Stat) -> io::Result<()> {
    rustix::fs::fchown(
        to,
        Some(rustix::fs::Uid::from_raw(stat.st_uid)),
        Some(rustix::fs::Gid::from_raw(stat.st_gid)),
    )?;
    rustix::fs::fchmod(to, Mode::from_raw_mode(stat.st_mode & 0o7777))?;
    copy_xattrs(from.as_fd(), to.as_fd())?;
    rustix::fs::futimens(to, &timestamps(stat))?;
    Ok(())
}

fn copy_xattrs(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let mut names = vec![0u8; 4096];
    let len = match rustix::fs::flistxattr(from, &mut names) {
        Ok(len) => len,
        Err(Errno::NOTSUP) => return Ok(()),
        Err(Errno::RANGE) => {
            let needed = rustix::fs::flistxattr(from, &mut [0u8; 0][..])?;
            names.resize(needed, 0);
            rustix::fs::flistxattr(from, &mut names)?
        }
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        // The layer's own overlay bookkeeping (opaque directories) is not content.
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(name) = CStr::from_bytes_with_nul(&[name, b"\0"].concat()).map(CStr::to_owned)
        else {
            continue;
        };
        let n = rustix::fs::fgetxattr(from, name.as_c_str(), &mut value)?;
        rustix::fs::fsetxattr(
            to,
            name.as_c_str(),
            &value[..n],
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn copies_content_and_keeps_symlinks_inside() {
        let image = tempfile::tempdir().unwrap();
        let volume = tempfile::tempdir().unwrap();
        let root = image.path();
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/sub/file"), "content").unwrap();
        std::fs::set_permissions(
            root.join("data/sub/file"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        symlink("/etc/passwd", root.join("data/abs")).unwrap();
        // The mount point itself escapes: it must resolve inside the image.
        symlink("../../../../../../data", root.join("escape")).unwrap();
        copy_tree(root, "/escape", volume.path()).unwrap();
        let v = volume.path();
        assert_eq!(
            std::fs::read_to_string(v.join("sub/file")).unwrap(),
            "content"
        );
        assert_eq!(
            std::fs::metadata(v.join("sub/file")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_link(v.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        // A missing path copies nothing.
        let empty = tempfile::tempdir().unwrap();
        copy_tree(root, "/nothing/here", empty.path()).unwrap();
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    }
}
