//! The few filesystem calls the layer code needs beyond rustix's one-to-one wrappers: extended
//! attributes on things that cannot be opened (symlinks, device nodes, FIFOs), recursive removal
//! relative to a directory fd, and stat/timestamp conversions.
//!
//! Everything works relative to directory fds so that no path is ever re-resolved from `/`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timespec, Timestamps};
use rustix::io::Errno;

/// Something whose extended attributes are read or written.
#[derive(Clone, Copy)]
pub(crate) enum XattrTarget<'a> {
    /// An fd opened for reading or writing (not `O_PATH`): regular files and directories.
    Fd(BorrowedFd<'a>),
    /// `name` inside the directory `dir`, never following a symlink at `name`. Used for
    /// symlinks, devices and FIFOs, which cannot be opened safely.
    At(BorrowedFd<'a>, &'a [u8]),
}

impl XattrTarget<'_> {
    /// `/proc/self/fd/N/name`: the magic link pins the directory we already hold, and the `l*`
    /// xattr calls do not follow `name` itself.
    fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<CString> {
        let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    }
}

/// Reads all extended attributes of `target`; a filesystem without xattr support has none.
pub(crate) fn list_xattrs(target: XattrTarget<'_>) -> io::Result<Xattrs> {
    let path = match target {
        XattrTarget::Fd(_) => None,
        XattrTarget::At(dir, name) => Some(XattrTarget::proc_path(dir, name)?),
    };
    let mut names = vec![0u8; 1024];
    let len = loop {
        let res = match (target, &path) {
            (XattrTarget::Fd(fd), _) => rustix::fs::flistxattr(fd, &mut names[..]),
            (_, Some(p)) => rustix::fs::llistxattr(p.as_c_str(), &mut names[..]),
            _ => unreachable!("At targets always have a path"),
        };
        match res {
            Ok(len) => break len,
            Err(Errno::RANGE) => {
                let needed = match (target, &path) {
                    (XattrTarget::Fd(fd), _) => rustix::fs::flistxattr_query(fd)?,
                    (_, Some(p)) => rustix::fs::llistxattr_query(p.as_c_str())?,
                    _ => unreachable!("At targets always have a path"),
                };
                names.resize(needed.max(names.len() * 2), 0);
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let value = match (target, &path) {
            (XattrTarget::Fd(fd), _) => get_xattr_fd(fd, name)?,
            (_, Some(p)) => get_xattr_path(p, name)?,
            _ => unreachable!("At targets always have a path"),
        };
        // A value can vanish between list and get; that just means it is gone.
        if let Some(value) = value {
            out.push((name.to_vec(), value));
        }
    }
    Ok(out)
}

/// One xattr of an open file or directory, None if it is not set.
pub(crate) fn get_xattr_fd(fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    get_xattr_with(|buf| match buf {
        Some(buf) => rustix::fs::fgetxattr(fd, name, buf),
        None => rustix::fs::fgetxattr_query(fd, name),
    })
}

fn get_xattr_path(path: &CString, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    get_xattr_with(|buf| match buf {
        Some(buf) => rustix::fs::lgetxattr(path.as_c_str(), name, buf),
        None => rustix::fs::lgetxattr_query(path.as_c_str(), name),
    })
}

fn get_xattr_with(
    mut get: impl FnMut(Option<&mut [u8]>) -> rustix::io::Result<usize>,
) -> io::Result<Option<Vec<u8>>> {
    let mut value = vec![0u8; 256];
    loop {
        match get(Some(&mut value[..])) {
            Ok(len) => {
                value.truncate(len);
                return Ok(Some(value));
            }
            Err(Errno::RANGE) => {
                let needed = get(None)?;
                value.resize(needed.max(value.len() * 2), 0);
            }
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets one xattr on `target`.
pub(crate) fn set_xattr(target: XattrTarget<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let flags = rustix::fs::XattrFlags::empty();
    match target {
        XattrTarget::Fd(fd) => rustix::fs::fsetxattr(fd, name, value, flags)?,
        XattrTarget::At(dir, entry) => {
            let path = XattrTarget::proc_path(dir, entry)?;
            rustix::fs::lsetxattr(path.as_c_str(), name, value, flags)?
        }
    }
    Ok(())
}

/// `lstat` of `name` in `dir`, None if it does not exist.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Removes `name` from `dir` whatever it is, descending into directories without following
/// symlinks. Returns the type of what was removed.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(None);
    };
    let kind = file_type(&st);
    if kind == FileType::Directory {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut children = Vec::new();
        let mut entries = rustix::fs::Dir::read_from(&fd)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let child = entry.file_name().to_bytes();
            if child != b"." && child != b".." {
                children.push(child.to_vec());
            }
        }
        for child in children {
            remove_all_at(fd.as_fd(), &child)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(Some(kind))
}

/// Extended attributes as (name, value) pairs.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

// `Stat` field types differ between architectures (`c_ulong`, `u64`, `u32`), so the casts
// below are no-ops on some targets and conversions on others.

/// Identifies an inode: (device, inode number).
#[allow(clippy::unnecessary_cast)]
pub(crate) fn inode_key(st: &Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

#[allow(clippy::unnecessary_cast)]
pub(crate) fn nlink(st: &Stat) -> u64 {
    st.st_nlink as u64
}

#[allow(clippy::unnecessary_cast)]
pub(crate) fn rdev(st: &Stat) -> u64 {
    st.st_rdev as u64
}

/// The modification time of `st`.
pub(crate) fn mtime(st: &Stat) -> Timespec {
    Timespec {
        tv_sec: st.st_mtime as _,
        tv_nsec: st.st_mtime_nsec as _,
    }
}

/// Timestamps with both access and modification set to `mtime`, as Docker restores them.
pub(crate) fn times(mtime: Timespec, atime: Option<Timespec>) -> Timestamps {
    Timestamps {
        last_access: atime.unwrap_or(mtime),
        last_modification: mtime,
    }
}

/// Starts writing `len` bytes of `file` from `offset` (0 and 0: all of it) to disk without
/// waiting (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`; rustix has no wrapper).
///
/// Layers and blobs are made durable by one `syncfs`/`fdatasync` once complete; starting the
/// write-back of each piece as soon as it is written lets that I/O overlap the rest of the work
/// instead of all of it waiting at the end (measured: the `syncfs` after unpacking the 206 MB
/// Debian layer went from 0.13-0.34 s to 0.01 s).
pub fn start_writeback(file: BorrowedFd<'_>, offset: u64, len: u64) {
    // SAFETY: sync_file_range only reads the descriptor number; an error (a filesystem that
    // does not support it) leaves the data to the final sync.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}
