//! Unpacking a layer tar into a directory that overlayfs can use as a lower dir.
//!
//! The tar is untrusted: names are cleaned (`path.rs`), parents are resolved from an fd of the
//! destination without following symlinks out of it (`root.rs`), the final component is always
//! created with `O_EXCL`/`mknodat`/`symlinkat` so an existing symlink there is replaced, never
//! written through, and hardlink targets are resolved the same way. Metadata follows Docker:
//! ownership, mode (setuid/setgid/sticky included), xattrs from PAX `SCHILY.xattr.*`, mtime;
//! directory mtimes are set last, after their contents stopped changing them.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;
use tar::EntryType;

use crate::digest::DiffId;

use super::hashing::TeeHasher;
use super::path::EntryPath;
use super::root::Root;
use super::root::SymlinkScope;
use super::sys::{self, XattrTarget, Xattrs};
use super::whiteout::{
    is_overlay_xattr, OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX,
};
use super::{LayerError, Result};

/// Read-ahead on the tar stream: big enough that headers and small files come from memory and
/// large files are read in few system calls.
const STREAM_BUFFER: usize = 1 << 20;
/// Chunk size for copying file contents.
const COPY_BUFFER: usize = 1 << 20;

/// How [`unpack`] treats what it finds.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Apply the uid/gid recorded in the tar (needs `CAP_CHOWN`); otherwise files belong to the
    /// caller.
    pub preserve_ownership: bool,
    /// Turn OCI whiteouts into overlayfs whiteouts. Off when the tar is plain content (`cp` into a
    /// container), where a `.wh.` file is just a file.
    pub convert_whiteouts: bool,
    /// How symlinks in parent paths are treated.
    pub symlinks: SymlinkScope,
    /// Give `dest` the owner, mode and times of the tar's `./` entry. Off for `cp` into an
    /// existing directory, which, as with Docker, keeps its own.
    pub apply_root_entry: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            preserve_ownership: true,
            convert_whiteouts: true,
            symlinks: SymlinkScope::Beneath,
            apply_root_entry: true,
        }
    }
}

/// What [`unpack`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries applied or skipped (not counting PAX/GNU extension headers).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// Unpacks an uncompressed layer tar from `reader` into `dest`, an existing (normally empty)
/// directory, converting OCI whiteouts into overlayfs whiteouts when
/// [`UnpackOptions::convert_whiteouts`] is set. The stream is read to its very end, trailing
/// padding included, so a hashing reader around it sees the whole tar.
pub fn unpack(reader: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats> {
    let mut unpacker = Unpacker {
        root: Root::open(dest, opts.symlinks)?,
        opts,
        buf: vec![0; COPY_BUFFER],
        dir_times: Vec::new(),
        stats: UnpackStats::default(),
        forget_dirs: false,
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(STREAM_BUFFER, reader));
    for entry in archive.entries().map_err(LayerError::ReadStream)? {
        let mut entry = entry.map_err(LayerError::ReadStream)?;
        unpacker.entry(&mut entry)?;
    }
    // The archive ends at the first zero block; whatever follows (the second zero block, record
    // padding) is still part of the blob whose digest the caller is computing.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(LayerError::ReadStream)?;
    unpacker.finish()
}

/// [`unpack`], also returning the layer's DiffId: the sha256 of the whole uncompressed stream,
/// computed on a second thread so that hashing overlaps with writing the files (see
/// `hashing.rs`). This is what `import`, `load` and `pull` want.
pub fn unpack_with_diff_id(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<(UnpackStats, DiffId)> {
    let mut tee = TeeHasher::new(reader);
    let stats = unpack(&mut tee, dest, opts)?;
    Ok((stats, DiffId(tee.finish())))
}

/// Ownership, permissions, times and xattrs of one entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    times: Timestamps,
    xattrs: Xattrs,
}

struct Unpacker<'o> {
    root: Root,
    opts: &'o UnpackOptions,
    buf: Vec<u8>,
    /// Directories whose times are restored at the end, in creation order.
    dir_times: Vec<(Vec<u8>, Timestamps)>,
    stats: UnpackStats,
    /// Set when a directory or symlink was removed, which may make cached directory fds stale.
    forget_dirs: bool,
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        if std::mem::take(&mut self.forget_dirs) {
            self.root.forget_dirs();
        }
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // Docker ignores PAX global headers too; they carry nothing a layer needs.
            return Ok(());
        }
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let path =
            EntryPath::clean(&raw).ok_or_else(|| LayerError::PathEscape { entry: lossy(&raw) })?;
        if self.opts.convert_whiteouts {
            if let Some((parent, name)) = path.split() {
                if name == OPAQUE_WHITEOUT.as_bytes() {
                    return self.opaque(&raw, parent);
                }
                if name.starts_with(WHITEOUT_META_PREFIX) {
                    tracing::debug!(entry = %lossy(&raw), "skipping AUFS metadata entry");
                    return Ok(());
                }
                if path.as_bytes().starts_with(WHITEOUT_META_PREFIX) {
                    // Inside a top-level AUFS metadata directory such as `.wh..wh.plnk/`.
                    return Ok(());
                }
                if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                    let meta = self.meta(entry, &raw)?;
                    return self.whiteout(&raw, parent, target, &meta);
                }
            }
        }
        let meta = self.meta(entry, &raw)?;
        let is_dir = kind == EntryType::Directory
            || (kind == EntryType::Regular && raw.last() == Some(&b'/'));
        if path.is_root() && !is_dir {
            return Err(LayerError::InvalidEntry {
                entry: lossy(&raw),
                problem: "only a directory can stand for the layer root".to_owned(),
            });
        }
        match kind {
            _ if is_dir => self.directory(&path, &raw, &meta),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(&path, &raw, &meta, entry)
            }
            EntryType::Symlink => {
                let target = link_name(entry, &raw, "symlink")?;
                self.symlink(&path, &raw, &meta, &target)
            }
            EntryType::Link => {
                let target = link_name(entry, &raw, "hardlink")?;
                self.hardlink(&path, &raw, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.node(&path, &raw, &meta, kind, entry.header())
            }
            other => Err(LayerError::InvalidEntry {
                entry: lossy(&raw),
                problem: format!("unsupported tar entry type {:?}", other.as_byte() as char),
            }),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta> {
        let bad = |field: &str| LayerError::InvalidEntry {
            entry: lossy(raw),
            problem: format!("unreadable {field} in tar header"),
        };
        let header = entry.header();
        let mode = header.mode().map_err(|_| bad("mode"))? & 0o7777;
        let uid = header.uid().ok().and_then(|v| u32::try_from(v).ok());
        let gid = header.gid().ok().and_then(|v| u32::try_from(v).ok());
        let (uid, gid) = (
            uid.ok_or_else(|| bad("uid"))?,
            gid.ok_or_else(|| bad("gid"))?,
        );
        let secs = header.mtime().map_err(|_| bad("mtime"))?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(secs).map_err(|_| bad("mtime"))?,
            tv_nsec: 0,
        };
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(LayerError::ReadStream)? {
            for ext in pax {
                let ext = ext.map_err(LayerError::ReadStream)?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    mtime = parse_pax_time(ext.value_bytes()).ok_or_else(|| bad("PAX mtime"))?;
                } else if key == b"atime" {
                    atime = parse_pax_time(ext.value_bytes());
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    // Overlay's own xattrs would let a layer forge redirects or opaque dirs
                    // that its whiteout entries do not describe.
                    if !is_overlay_xattr(name) {
                        xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            times: sys::times(mtime, atime),
            xattrs,
        })
    }

    fn io_error(&self, op: &'static str, rel: &[u8], source: impl Into<io::Error>) -> LayerError {
        LayerError::Io {
            op,
            path: self.root.display(rel),
            source: source.into(),
        }
    }

    /// Runs `create` for `name` in `dir`; if something is already there (from an earlier entry
    /// of this tar), removes it and tries once more, as a later entry replaces an earlier one.
    fn create_replacing<T>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        rel: &[u8],
        op: &'static str,
        create: impl Fn(BorrowedFd<'_>, &[u8]) -> rustix::io::Result<T>,
    ) -> Result<T> {
        match create(dir, name) {
            Err(Errno::EXIST) => {
                let removed = sys::remove_all_at(dir, name)
                    .map_err(|e| self.io_error("remove existing", rel, e))?;
                if matches!(removed, Some(FileType::Directory | FileType::Symlink)) {
                    self.forget_dirs = true;
                }
                create(dir, name).map_err(|e| self.io_error(op, rel, e))
            }
            other => other.map_err(|e| self.io_error(op, rel, e)),
        }
    }

    /// The parent directory of an entry, created if the tar did not list it.
    fn parent(&mut self, parent: &[u8], raw: &[u8]) -> Result<std::rc::Rc<OwnedFd>> {
        self.root.dir(parent, true, raw)
    }

    fn set_owner_mode_xattrs(
        &self,
        target: XattrTarget<'_>,
        meta: &Meta,
        kind: FileType,
        rel: &[u8],
    ) -> Result<()> {
        if self.opts.preserve_ownership {
            let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
            match target {
                XattrTarget::Fd(fd) => rustix::fs::fchown(fd, uid, gid),
                XattrTarget::At(dir, name) => {
                    rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                }
            }
            .map_err(|e| self.io_error("set ownership of", rel, e))?;
        }
        // After chown, which clears setuid/setgid bits and file capabilities.
        let mode = Mode::from_raw_mode(meta.mode);
        match (target, kind) {
            (_, FileType::Symlink) => Ok(()),
            (XattrTarget::Fd(fd), _) => rustix::fs::fchmod(fd, mode),
            // `name` was just created by us as a device node or FIFO, so following it is moot.
            (XattrTarget::At(dir, name), _) => {
                rustix::fs::chmodat(dir, name, mode, AtFlags::empty())
            }
        }
        .map_err(|e| self.io_error("set permissions of", rel, e))?;
        for (name, value) in &meta.xattrs {
            if let Err(e) = sys::set_xattr(target, name, value) {
                // Like Docker: a filesystem without xattrs (or an xattr namespace we may not
                // write) loses them with a warning rather than failing the whole layer.
                match e.raw_os_error() {
                    Some(code)
                        if code == Errno::NOTSUP.raw_os_error()
                            || code == Errno::PERM.raw_os_error() =>
                    {
                        tracing::warn!(
                            path = %self.root.display(rel).display(),
                            xattr = %String::from_utf8_lossy(name),
                            error = %e,
                            "cannot set xattr from layer, skipping it"
                        );
                    }
                    _ => return Err(self.io_error("set xattr on", rel, e)),
                }
            }
        }
        Ok(())
    }

    fn directory(&mut self, path: &EntryPath, raw: &[u8], meta: &Meta) -> Result<()> {
        let rel = path.as_bytes();
        let Some((parent, name)) = path.split() else {
            if !self.opts.apply_root_entry {
                return Ok(());
            }
            let root = self.root.fd();
            self.set_owner_mode_xattrs(XattrTarget::Fd(root), meta, FileType::Directory, rel)?;
            self.dir_times.push((Vec::new(), meta.times.clone()));
            return Ok(());
        };
        let dir = self.parent(parent, raw)?;
        let dir = dir.as_fd();
        match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let existing =
                    sys::lstat_at(dir, name).map_err(|e| self.io_error("stat", rel, e))?;
                // An existing directory is merged into, as Docker does; anything else is
                // replaced.
                if existing.map(|st| sys::file_type(&st)) != Some(FileType::Directory) {
                    self.create_replacing(dir, name, rel, "create directory", |d, n| {
                        rustix::fs::mkdirat(d, n, Mode::from_raw_mode(0o700))
                    })?;
                }
            }
            Err(e) => return Err(self.io_error("create directory", rel, e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::empty())
            .map_err(|e| self.io_error("open directory", rel, e))?;
        self.set_owner_mode_xattrs(XattrTarget::Fd(fd.as_fd()), meta, FileType::Directory, rel)?;
        self.dir_times.push((rel.to_vec(), meta.times.clone()));
        self.root.remember_dir(rel, fd);
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        path: &EntryPath,
        raw: &[u8],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<()> {
        let (parent, name) = path.split().expect("root handled by the caller");
        let rel = path.as_bytes();
        let dir = self.parent(parent, raw)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = self.create_replacing(dir.as_fd(), name, rel, "create file", |d, n| {
            rustix::fs::openat(d, n, flags, Mode::from_raw_mode(0o600))
        })?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let mut written = 0u64;
        if expected > 0 {
            loop {
                let n = match entry.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(LayerError::ReadStream(e)),
                };
                file.write_all(&self.buf[..n])
                    .map_err(|e| self.io_error("write file", rel, e))?;
                written += n as u64;
            }
        }
        if written < expected && entry.header().entry_type() != EntryType::GNUSparse {
            return Err(LayerError::ReadStream(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("tar ends inside the contents of {:?}", lossy(raw)),
            )));
        }
        self.stats.bytes += written;
        if written > 0 {
            sys::start_writeback(file.as_fd(), 0, 0);
        }
        self.set_owner_mode_xattrs(
            XattrTarget::Fd(file.as_fd()),
            meta,
            FileType::RegularFile,
            rel,
        )?;
        rustix::fs::futimens(&file, &meta.times).map_err(|e| self.io_error("set times of", rel, e))
    }

    /// Ownership, mode, xattrs and times of something created by name (symlink, device, FIFO).
    fn finish_node(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        rel: &[u8],
        meta: &Meta,
        kind: FileType,
    ) -> Result<()> {
        self.set_owner_mode_xattrs(XattrTarget::At(dir, name), meta, kind, rel)?;
        rustix::fs::utimensat(dir, name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io_error("set times of", rel, e))
    }

    fn symlink(&mut self, path: &EntryPath, raw: &[u8], meta: &Meta, target: &[u8]) -> Result<()> {
        // The target is stored verbatim and never resolved here: it only means something inside
        // the container, and `root.rs` refuses to write through it if it leads out.
        let (parent, name) = path.split().expect("root handled by the caller");
        let rel = path.as_bytes();
        let dir = self.parent(parent, raw)?;
        self.create_replacing(dir.as_fd(), name, rel, "create symlink", |d, n| {
            rustix::fs::symlinkat(target, d, n)
        })?;
        self.finish_node(dir.as_fd(), name, rel, meta, FileType::Symlink)
    }

    fn hardlink(&mut self, path: &EntryPath, raw: &[u8], target: &[u8]) -> Result<()> {
        let bad = |problem: &'static str| LayerError::BadHardlink {
            entry: lossy(raw),
            target: lossy(target),
            problem,
        };
        let target_path =
            EntryPath::clean(target).ok_or_else(|| bad("is outside the layer root"))?;
        if target_path == *path {
            return Ok(());
        }
        let (target_parent, target_name) = target_path
            .split()
            .ok_or_else(|| bad("is the layer root"))?;
        let target_dir = self
            .root
            .dir(target_parent, false, raw)
            .map_err(|e| match e {
                LayerError::SymlinkEscape { .. } => {
                    bad("resolves outside the layer root through a symlink")
                }
                LayerError::Io { .. } | LayerError::InvalidEntry { .. } => bad("does not exist"),
                other => other,
            })?;
        let (parent, name) = path.split().expect("root handled by the caller");
        let rel = path.as_bytes();
        let dir = self.parent(parent, raw)?;
        // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
        let result = self.create_replacing(dir.as_fd(), name, rel, "create hardlink", |d, n| {
            rustix::fs::linkat(&*target_dir, target_name, d, n, AtFlags::empty())
        });
        match result {
            Err(LayerError::Io { source, .. })
                if source.raw_os_error() == Some(Errno::NOENT.raw_os_error()) =>
            {
                Err(bad("does not exist"))
            }
            Err(LayerError::Io { source, .. })
                if source.raw_os_error() == Some(Errno::PERM.raw_os_error()) =>
            {
                Err(bad("is a directory"))
            }
            other => other,
        }
    }

    fn node(
        &mut self,
        path: &EntryPath,
        raw: &[u8],
        meta: &Meta,
        kind: EntryType,
        header: &tar::Header,
    ) -> Result<()> {
        let (parent, name) = path.split().expect("root handled by the caller");
        let rel = path.as_bytes();
        let number = |n: io::Result<Option<u32>>| -> Result<u32> {
            n.map(Option::unwrap_or_default)
                .map_err(|_| LayerError::InvalidEntry {
                    entry: lossy(raw),
                    problem: "unreadable device number in tar header".to_owned(),
                })
        };
        let (file_type, dev) = match kind {
            EntryType::Char => (FileType::CharacterDevice, true),
            EntryType::Block => (FileType::BlockDevice, true),
            _ => (FileType::Fifo, false),
        };
        let dev = if dev {
            let (major, minor) = (
                number(header.device_major())?,
                number(header.device_minor())?,
            );
            rustix::fs::makedev(major, minor)
        } else {
            0
        };
        let dir = self.parent(parent, raw)?;
        self.create_replacing(dir.as_fd(), name, rel, "create device node", |d, n| {
            rustix::fs::mknodat(d, n, file_type, Mode::from_raw_mode(0o600), dev)
        })?;
        self.finish_node(dir.as_fd(), name, rel, meta, file_type)
    }

    /// `.wh.NAME`: NAME is deleted from the layers below, which overlayfs spells as a 0:0
    /// character device.
    fn whiteout(&mut self, raw: &[u8], parent: &[u8], target: &[u8], meta: &Meta) -> Result<()> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(LayerError::InvalidEntry {
                entry: lossy(raw),
                problem: "whiteout does not name a file".to_owned(),
            });
        }
        let mut rel = parent.to_vec();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(target);
        let dir = self.parent(parent, raw)?;
        self.create_replacing(dir.as_fd(), target, &rel, "create whiteout", |d, n| {
            rustix::fs::mknodat(d, n, FileType::CharacterDevice, Mode::empty(), 0)
        })?;
        if self.opts.preserve_ownership {
            let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
            rustix::fs::chownat(dir.as_fd(), target, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.io_error("set ownership of", &rel, e))?;
        }
        Ok(())
    }

    /// `.wh..wh..opq` in `parent`: the lower layers' contents of `parent` are hidden.
    fn opaque(&mut self, raw: &[u8], parent: &[u8]) -> Result<()> {
        let dir = self.parent(parent, raw)?;
        // The cached fd may be O_PATH, which cannot take xattrs; "." reopens it for real.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*dir, ".", flags, Mode::empty())
            .map_err(|e| self.io_error("open directory", parent, e))?;
        sys::set_xattr(
            XattrTarget::Fd(fd.as_fd()),
            OVERLAY_OPAQUE_XATTR.as_bytes(),
            b"y",
        )
        .map_err(|e| self.io_error("mark opaque", parent, e))
    }

    /// Restores directory times, deepest last-created first, now that nothing below them changes.
    fn finish(self) -> Result<UnpackStats> {
        for (rel, times) in self.dir_times.iter().rev() {
            let result = if rel.is_empty() {
                rustix::fs::futimens(self.root.fd(), times)
            } else {
                match self.root.open_dir_for_update(rel) {
                    Some(fd) => rustix::fs::futimens(&fd, times),
                    // Replaced by a later entry: its times were that entry's business.
                    None => Ok(()),
                }
            };
            result.map_err(|e| self.io_error("set times of", rel, e))?;
        }
        Ok(self.stats)
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, raw: &[u8], what: &str) -> Result<Vec<u8>> {
    match entry.link_name_bytes() {
        Some(target) if !target.is_empty() && !target.contains(&0) => Ok(target.into_owned()),
        _ => Err(LayerError::InvalidEntry {
            entry: lossy(raw),
            problem: format!("{what} has no target"),
        }),
    }
}

/// A PAX time: decimal seconds with an optional fraction, possibly negative.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let negative = secs.starts_with('-');
    let mut tv_sec: i64 = secs.parse().ok()?;
    if frac.is_empty() {
        return Some(Timespec { tv_sec, tv_nsec: 0 });
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut tv_nsec: i64 = digits.parse().ok()?;
    if negative && tv_nsec > 0 {
        // -1.25 is 1.25 s before the epoch: second -2 plus 0.75 s.
        tv_sec -= 1;
        tv_nsec = 1_000_000_000 - tv_nsec;
    }
    Some(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

#[cfg(test)]
mod tests;
