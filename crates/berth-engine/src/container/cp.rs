//! `cp`: files between a container and the host, with Docker's naming rules.
//!
//! Every path inside the container is resolved with `openat2(RESOLVE_IN_ROOT)` from a
//! descriptor of the container's root, and everything below it is reached with `*at` calls
//! and `O_NOFOLLOW` from directory descriptors: a symlink crafted inside the container
//! (`/x -> /`, `/x -> ../../..`) resolves inside the container and can never make `cp` read or
//! write outside it.
//!
//! The root is a [`ContainerView`]: what the container's processes see, volumes and binds
//! included, whether it runs or not. Like Docker, a copy into a read-only mount point is
//! refused up front (the kernel refuses it anyway, with a less helpful error).
//!
//! With `-` for the host side, `cp` streams a tar: the layer packer and unpacker do the
//! walking, handed a `/proc/self/fd/N` path of a directory resolved as above, so every lookup
//! they make is relative to that descriptor (the packer's `O_NOFOLLOW` walk, the unpacker's
//! `RESOLVE_BENEATH`), however the container rearranges its tree meanwhile.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::layer::{self, LayerError, PackOptions, Select, SymlinkScope, UnpackOptions};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::rootfs::ContainerView;
use super::state::Container;
use crate::volume::mounts::{clean_destination, load_mounts};
use crate::{Engine, EngineError, Result};

/// `cp -a -L`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Keep the source's uid/gid (otherwise copies into a container belong to root).
    pub archive: bool,
    /// Follow a symlink named as the source.
    pub follow_link: bool,
}

fn io_err<'a>(action: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> EngineError + 'a {
    move |source| EngineError::Io {
        action,
        path: path.to_string(),
        source,
    }
}

fn errno<'a>(action: &'static str, path: &'a str) -> impl FnOnce(Errno) -> EngineError + 'a {
    move |e| EngineError::Io {
        action,
        path: path.to_string(),
        source: e.into(),
    }
}

/// Resolves `path` inside the root `root_fd` (never leaving it).
fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// What `cp` works on: the container's view (held open while it is used) and its root as a
/// directory descriptor, from which every path below is resolved.
fn open_view(engine: &Engine, container: &Container) -> Result<(ContainerView, OwnedFd)> {
    let view = ContainerView::open(engine, container)?;
    let root = rustix::fs::open(
        &view.root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", &container.id))?;
    Ok((view, root))
}

/// A path naming the directory `fd` itself, for code that walks from a path: opening it
/// reopens that very directory, whatever has been renamed or swapped since, so every lookup
/// after it stays relative to `fd`.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn not_found(path: &str, container: &str) -> EngineError {
    EngineError::NotFound(format!(
        "Could not find the file {path} in container {container}"
    ))
}

/// A tar stream problem in one line, causes included: the CLI shows only this message.
fn tar_error(e: LayerError) -> EngineError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    EngineError::InvalidArgument(message)
}

/// `-L`: the path a symlink at `path` leads to, one link at a time, each resolved inside the
/// root as the container would.
fn follow_links(root: BorrowedFd<'_>, path: &str, container: &str) -> Result<String> {
    // Linux's own limit on links in one lookup.
    const MAX_LINKS: usize = 40;
    let mut path = path.to_string();
    for _ in 0..MAX_LINKS {
        let (parent, name) = split(&path);
        let dir = open_in_root(root, &parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|_| not_found(&path, container))?;
        match rustix::fs::readlinkat(&dir, name.as_str(), Vec::new()) {
            Ok(target) => {
                let target = target.to_string_lossy();
                path = if target.starts_with('/') {
                    target.into_owned()
                } else {
                    format!("{}/{target}", parent.trim_end_matches('/'))
                };
            }
            Err(Errno::INVAL) => return Ok(path),
            Err(Errno::NOENT) => return Err(not_found(&path, container)),
            Err(e) => return Err(errno("read link", &path)(e)),
        }
    }
    Err(errno("follow", &path)(Errno::LOOP))
}

/// Splits `a/b/c` into (`a/b`, `c`); `/` has no name.
fn split(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name.into(),
        ),
        None => (".".into(), trimmed.into()),
    }
}

impl Engine {
    /// `cp CONTAINER:SRC DEST`.
    pub fn copy_from_container(
        &self,
        name_or_id: &str,
        src: &str,
        dest: &Path,
        opts: &CopyOptions,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        let (_view, root_fd) = open_view(self, &c)?;
        let contents_only = src.ends_with("/.");
        let src_clean = src.trim_end_matches("/.");
        let flags = if opts.follow_link || src.ends_with('/') {
            OFlags::PATH
        } else {
            OFlags::PATH | OFlags::NOFOLLOW
        };
        let fd = open_in_root(root_fd.as_fd(), src_clean, flags).map_err(|e| {
            if e == Errno::NOENT {
                not_found(src, name_or_id)
            } else {
                EngineError::Io {
                    action: "open",
                    path: src.to_string(),
                    source: e.into(),
                }
            }
        })?;
        let stat = rustix::fs::fstat(&fd).map_err(errno("stat", src))?;
        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
        let (_, src_name) = split(src_clean);
        let src_name = if src_name.is_empty() || src_name == "." {
            "root".to_string()
        } else {
            src_name
        };
        let dest_str = dest.display().to_string();
        match std::fs::metadata(dest) {
            Ok(meta) if meta.is_dir() => {
                if is_dir && contents_only {
                    copy_out_children(&fd, src, dest)
                } else {
                    copy_out(&fd, &stat, src, &dest.join(&src_name))
                }
            }
            Ok(_) if is_dir => Err(EngineError::InvalidArgument(format!(
                "cannot copy a directory to a file: {dest_str}"
            ))),
            Ok(_) => copy_out(&fd, &stat, src, dest),
            Err(_) => {
                if dest_str.ends_with('/') && !is_dir {
                    return Err(EngineError::NotFound(format!(
                        "no such directory: {dest_str}"
                    )));
                }
                let parent = dest
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(EngineError::NotFound(format!(
                        "no such directory: {}",
                        parent.display()
                    )));
                }
                copy_out(&fd, &stat, src, dest)
            }
        }
    }

    /// `cp SRC CONTAINER:DEST`.
    pub fn copy_to_container(
        &self,
        src: &Path,
        name_or_id: &str,
        dest: &str,
        opts: &CopyOptions,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        let src_str = src.display().to_string();
        let src_meta = if opts.follow_link {
            std::fs::metadata(src)
        } else {
            std::fs::symlink_metadata(src)
        }
        .map_err(|_| {
            EngineError::NotFound(format!("lstat {src_str}: no such file or directory"))
        })?;
        let contents_only = src_str.ends_with("/.");
        let (_view, root_fd) = open_view(self, &c)?;
        let src_name = src
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| OsStr::new("root").to_os_string());
        let existing = open_in_root(root_fd.as_fd(), dest, OFlags::RDONLY | OFlags::DIRECTORY);
        let target = match &existing {
            Ok(_) if !(src_meta.is_dir() && contents_only) => {
                format!(
                    "{}/{}",
                    dest.trim_end_matches('/'),
                    src_name.to_string_lossy()
                )
            }
            _ => dest.to_string(),
        };
        self.refuse_read_only(&c, &target)?;
        let (dir, name) = match existing {
            Ok(dir) => {
                if src_meta.is_dir() && contents_only {
                    let writer = Writer {
                        archive: opts.archive,
                    };
                    return writer.children(src, &dir);
                }
                (dir, src_name)
            }
            Err(Errno::NOTDIR) if src_meta.is_dir() => {
                return Err(EngineError::InvalidArgument(format!(
                    "cannot copy a directory to a file: {dest}"
                )))
            }
            Err(_) => {
                if dest.ends_with('/') && !src_meta.is_dir() {
                    return Err(EngineError::NotFound(format!("no such directory: {dest}")));
                }
                let (parent, name) = split(dest);
                let dir =
                    open_in_root(root_fd.as_fd(), &parent, OFlags::RDONLY | OFlags::DIRECTORY)
                        .map_err(|_| {
                            EngineError::NotFound(format!("no such directory: {parent}"))
                        })?;
                (dir, OsStr::new(&name).to_os_string())
            }
        };
        let writer = Writer {
            archive: opts.archive,
        };
        writer.entry(src, &src_meta, &dir, &name)
    }
}

impl Engine {
    /// `cp CONTAINER:SRC -`: a tar of SRC on `out`, its entries named from SRC's basename
    /// (`etc/`, `etc/passwd`…), or from `.` for `SRC/.` (`./`, `./passwd`…).
    pub fn archive_from_container(
        &self,
        name_or_id: &str,
        src: &str,
        follow_link: bool,
        out: impl Write,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        let (_view, root_fd) = open_view(self, &c)?;
        let pack = |dir: &OwnedFd, opts: &PackOptions<'_>, out| {
            layer::pack_dir(&fd_path(dir), out, opts).map_err(tar_error)
        };
        let contents = |path: &str, out| {
            let dir = open_in_root(root_fd.as_fd(), path, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| match e {
                    Errno::NOENT => not_found(src, name_or_id),
                    e => errno("open", src)(e),
                })?;
            pack(&dir, &PackOptions::default(), out)
        };
        let contents_only = src.ends_with("/.");
        let src_clean = src.trim_end_matches("/.");
        let (_, src_name) = split(src_clean);
        if src_name.is_empty() || src_name == "." {
            // The root has no parent to pick it from: its contents, without a `./` entry.
            return contents(src_clean, out);
        }
        // `SRC/` and `SRC/.` name what a symlink SRC leads to, as a path lookup would.
        let wants_dir = contents_only || src.ends_with('/');
        let path = if follow_link || wants_dir {
            follow_links(root_fd.as_fd(), src_clean, name_or_id)?
        } else {
            src_clean.to_string()
        };
        let (parent, name) = split(&path);
        if name.is_empty() || name == "." || name == ".." {
            // A link to `..` or `.`: no name of its own to select from its parent.
            return contents(&path, out);
        }
        let dir = open_in_root(root_fd.as_fd(), &parent, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|_| not_found(src, name_or_id))?;
        let stat = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(
            |e| match e {
                Errno::NOENT => not_found(src, name_or_id),
                e => errno("stat", src)(e),
            },
        )?;
        if wants_dir && FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return Err(EngineError::InvalidArgument(format!(
                "not a directory: {src}"
            )));
        }
        // Docker's names: `SRC/.` is written as `./`, `./FILE`…
        let top = if contents_only {
            "."
        } else {
            src_name.as_str()
        };
        // The walk starts at the parent and keeps only SRC's entry and what is below it.
        let only_src = |rel: &Path, _: bool| {
            if rel.starts_with(&name) {
                Select::Include
            } else {
                Select::Prune
            }
        };
        let opts = PackOptions {
            filter: Some(&only_src),
            rename_top: Some(top.as_bytes()),
            ..PackOptions::default()
        };
        pack(&dir, &opts, out)
    }

    /// `cp - CONTAINER:DEST`: extracts the tar on `input` into DEST, an existing directory.
    /// Ownership in the tar is kept and `.wh.` names are plain files; the tar can only write
    /// below DEST, never through a symlink out of it.
    pub fn extract_to_container(
        &self,
        input: impl Read,
        name_or_id: &str,
        dest: &str,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        let (_view, root_fd) = open_view(self, &c)?;
        let dir = open_in_root(root_fd.as_fd(), dest, OFlags::RDONLY | OFlags::DIRECTORY).map_err(
            |e| match e {
                Errno::NOENT => not_found(dest, name_or_id),
                Errno::NOTDIR => {
                    EngineError::InvalidArgument("extraction point is not a directory".into())
                }
                e => errno("open", dest)(e),
            },
        )?;
        self.refuse_read_only(&c, dest)?;
        let opts = UnpackOptions {
            preserve_ownership: true,
            convert_whiteouts: false,
            symlinks: SymlinkScope::Beneath,
            apply_root_entry: false,
        };
        layer::unpack(input, &fd_path(&dir), &opts)
            .map(|_| ())
            .map_err(tar_error)
    }

    /// Docker's checks before writing `path` into `container`: not into a read-only mount
    /// point, nor outside the mount points of a container with a read-only root.
    fn refuse_read_only(&self, container: &Container, path: &str) -> Result<()> {
        let Some(path) = clean_destination(&format!("/{path}")) else {
            return Ok(());
        };
        let points = load_mounts(self.store().db().conn(), &container.id)?;
        // Parents come first: the last one holding the path is the mount it lands on.
        let holder = points
            .iter()
            .rev()
            .find(|p| Path::new(&path).starts_with(&p.destination));
        match holder {
            Some(point) if !point.rw => Err(EngineError::InvalidArgument(
                "mounted volume is marked read-only".into(),
            )),
            None if container.host_config.readonly_rootfs => Err(EngineError::InvalidArgument(
                "container rootfs is marked read-only".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Copies what `fd` (an `O_PATH` descriptor inside the container) names to host path `dest`.
fn copy_out(fd: &OwnedFd, stat: &rustix::fs::Stat, what: &str, dest: &Path) -> Result<()> {
    let dest_str = dest.display().to_string();
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => {
            match std::fs::create_dir(dest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => {}
                Err(e) => return Err(io_err("create", &dest_str)(e)),
            }
            let _ = std::fs::set_permissions(
                dest,
                std::fs::Permissions::from_mode(stat.st_mode & 0o7777),
            );
            copy_out_children(fd, what, dest)
        }
        FileType::RegularFile => {
            let file = rustix::fs::openat(fd, "", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .or_else(|_| reopen(fd))
                .map_err(errno("open", what))?;
            let mut src = File::from(file);
            let _ = std::fs::remove_file(dest).ok();
            let mut out = File::create(dest).map_err(io_err("create", &dest_str))?;
            io::copy(&mut src, &mut out).map_err(io_err("write", &dest_str))?;
            let _ = out.set_permissions(std::fs::Permissions::from_mode(stat.st_mode & 0o7777));
            Ok(())
        }
        FileType::Symlink => {
            let target =
                rustix::fs::readlinkat(fd, "", Vec::new()).map_err(errno("read link", what))?;
            let _ = std::fs::remove_file(dest);
            std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), dest)
                .map_err(io_err("create symlink", &dest_str))
        }
        _ => Ok(()),
    }
}

/// Reopens an `O_PATH` descriptor for reading (through its `/proc/self/fd` link).
fn reopen(fd: &OwnedFd) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(fd_path(fd), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

fn copy_out_children(dir: &OwnedFd, what: &str, dest: &Path) -> Result<()> {
    let readable = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open", what))?;
    let entries = rustix::fs::Dir::read_from(&readable).map_err(errno("read", what))?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(errno("read", what))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    for name in names {
        let os = OsStr::from_bytes(&name);
        let child = rustix::fs::openat(
            &readable,
            os,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open", what))?;
        let stat = rustix::fs::fstat(&child).map_err(errno("stat", what))?;
        let child_what = format!("{}/{}", what.trim_end_matches('/'), os.to_string_lossy());
        copy_out(&child, &stat, &child_what, &dest.join(os))?;
    }
    Ok(())
}

/// Writes host files below a directory descriptor inside the container.
struct Writer {
    archive: bool,
}

impl Writer {
    fn entry(
        &self,
        src: &Path,
        meta: &std::fs::Metadata,
        dir: &OwnedFd,
        name: &OsStr,
    ) -> Result<()> {
        let what = src.display().to_string();
        let (uid, gid) = if self.archive {
            (meta.uid(), meta.gid())
        } else {
            (0, 0)
        };
        let owner = |fd: BorrowedFd<'_>, name: &OsStr, flags: AtFlags| {
            let _ = rustix::fs::chownat(
                fd,
                name,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                flags,
            );
        };
        let mode = Mode::from_raw_mode(meta.mode() & 0o7777);
        if meta.is_dir() {
            match rustix::fs::mkdirat(dir, name, mode) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno("create", &what)(e)),
            }
            let child = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno("open", &what))?;
            owner(child.as_fd(), OsStr::new(""), AtFlags::EMPTY_PATH);
            let _ = rustix::fs::fchmod(&child, mode);
            return self.children(src, &child);
        }
        // Whatever is in the way (a symlink especially) is replaced, never followed.
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(EngineError::InvalidArgument(format!(
                    "cannot overwrite directory {} with non-directory {what}",
                    name.to_string_lossy()
                )))
            }
            Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(errno("replace", &what))?,
            Err(_) => {}
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(src).map_err(io_err("read link", &what))?;
            rustix::fs::symlinkat(&target, dir, name).map_err(errno("create symlink", &what))?;
            owner(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW);
            return Ok(());
        }
        if !meta.is_file() {
            return Ok(());
        }
        let out = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
        .map_err(errno("create", &what))?;
        let mut out = File::from(out);
        let mut input = File::open(src).map_err(io_err("open", &what))?;
        io::copy(&mut input, &mut out).map_err(io_err("write", &what))?;
        owner(out.as_fd(), OsStr::new(""), AtFlags::EMPTY_PATH);
        let _ = rustix::fs::fchmod(&out, mode);
        Ok(())
    }

    fn children(&self, src: &Path, dir: &OwnedFd) -> Result<()> {
        let what = src.display().to_string();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(src)
            .map_err(io_err("read", &what))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).map_err(io_err("stat", &what))?;
            let name = path.file_name().expect("entry has a name").to_os_string();
            self.entry(&path, &meta, dir, &name)?;
        }
        Ok(())
    }
}
