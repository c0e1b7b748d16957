//! The layer root: the directory a tar is unpacked into, and the only place its entries may
//! touch.
//!
//! Every parent directory is reached from an fd of the root, never by a path string from `/`:
//! a component-wise `openat(O_NOFOLLOW)` walk handles the normal case, and when a component turns
//! out to be a symlink the whole prefix is resolved again by the kernel with `openat2`, whose
//! `RESOLVE_BENEATH` (or `RESOLVE_IN_ROOT`) makes an escape impossible rather than merely checked
//! for (the CVE-2018-15664/CVE-2019-14271 class of bugs lived in user-space path checks).
//! Resolved directories are cached by entry path so that the thousand files of
//! `usr/lib/x86_64-linux-gnu` cost one lookup each, not one walk each.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{LayerError, Result};

/// How symlinks met on the way to an entry's parent are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SymlinkScope {
    /// Follow symlinks that stay inside the root; a symlink that leads out (absolute, or `..`
    /// past the root) is an error. Layers never legitimately write through such a link, so this
    /// is the default for layer unpacking.
    #[default]
    Beneath,
    /// Resolve symlinks as if the root were `/`, the way the process inside the container would
    /// see them (`RESOLVE_IN_ROOT`); for copying into a container's filesystem.
    InRoot,
}

/// Above this many cached directory fds the cache is dropped and refilled on demand, which keeps
/// the fd count bounded for any tree shape.
const MAX_CACHED_DIRS: usize = 512;

/// An open root directory plus the directories resolved under it so far.
pub(crate) struct Root {
    path: PathBuf,
    fd: Rc<OwnedFd>,
    dirs: HashMap<Vec<u8>, Rc<OwnedFd>>,
    resolve: ResolveFlags,
}

impl Root {
    pub(crate) fn open(path: &Path, scope: SymlinkScope) -> Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LayerError::Io {
            op: "open layer directory",
            path: path.to_owned(),
            source: e.into(),
        })?;
        let scope_flag = match scope {
            SymlinkScope::Beneath => ResolveFlags::BENEATH,
            SymlinkScope::InRoot => ResolveFlags::IN_ROOT,
        };
        Ok(Root {
            path: path.to_owned(),
            fd: Rc::new(fd),
            dirs: HashMap::new(),
            resolve: scope_flag | ResolveFlags::NO_MAGICLINKS,
        })
    }

    /// The root directory itself, opened for reading (so it can take `fchmod`, xattrs, …).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The on-disk path of `rel`, for error messages only.
    pub(crate) fn display(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.path.clone()
        } else {
            self.path.join(String::from_utf8_lossy(rel).as_ref())
        }
    }

    /// Forgets every cached directory; called after something that may have been one, or a
    /// symlink leading to one, was removed.
    pub(crate) fn forget_dirs(&mut self) {
        self.dirs.clear();
    }

    /// Records a directory just created at `rel`, so its children need no lookup.
    pub(crate) fn remember_dir(&mut self, rel: &[u8], fd: OwnedFd) {
        if self.dirs.len() < MAX_CACHED_DIRS {
            self.dirs.insert(rel.to_vec(), Rc::new(fd));
        }
    }

    /// An fd of the directory at `rel` (a cleaned entry path, `""` for the root). Missing
    /// directories are created with mode 0755, as Docker does for parents a tar does not list,
    /// when `create` is set. `entry` is the tar entry's raw name, for error messages.
    pub(crate) fn dir(&mut self, rel: &[u8], create: bool, entry: &[u8]) -> Result<Rc<OwnedFd>> {
        if rel.is_empty() {
            return Ok(self.fd.clone());
        }
        if let Some(fd) = self.dirs.get(rel) {
            return Ok(fd.clone());
        }
        if self.dirs.len() >= MAX_CACHED_DIRS {
            self.dirs.clear();
        }
        // Start from the deepest cached ancestor.
        let mut start = 0;
        let mut cur = self.fd.clone();
        let mut cut = rel.len();
        while let Some(slash) = rel[..cut].iter().rposition(|&b| b == b'/') {
            if let Some(fd) = self.dirs.get(&rel[..slash]) {
                cur = fd.clone();
                start = slash + 1;
                break;
            }
            cut = slash;
        }
        let mut end = start;
        while end < rel.len() {
            let comp_end = rel[end..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(rel.len(), |p| end + p);
            let comp = &rel[end..comp_end];
            let prefix = &rel[..comp_end];
            let next = self.step(&cur, comp, prefix, create, entry)?;
            let next = Rc::new(next);
            self.dirs.insert(prefix.to_vec(), next.clone());
            cur = next;
            end = comp_end + 1;
        }
        Ok(cur)
    }

    /// Opens the directory `comp` inside `parent`, whose path from the root is `prefix`.
    fn step(
        &self,
        parent: &OwnedFd,
        comp: &[u8],
        prefix: &[u8],
        create: bool,
        entry: &[u8],
    ) -> Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(parent, comp, flags, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(parent, comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(LayerError::Io {
                            op: "create directory",
                            path: self.display(prefix),
                            source: e.into(),
                        })
                    }
                }
                if let Ok(fd) = rustix::fs::openat(parent, comp, flags, Mode::empty()) {
                    return Ok(fd);
                }
            }
            // A symlink (ELOOP/ENOTDIR with O_NOFOLLOW) or not a directory: let the kernel
            // resolve the whole prefix under the scope rules below.
            Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => {}
            Err(e) => {
                return Err(LayerError::Io {
                    op: "open directory",
                    path: self.display(prefix),
                    source: e.into(),
                })
            }
        }
        let how = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::openat2(&*self.fd, prefix, how, Mode::empty(), self.resolve).map_err(|e| {
            let parent = String::from_utf8_lossy(prefix).into_owned();
            match e {
                Errno::XDEV => LayerError::SymlinkEscape {
                    entry: String::from_utf8_lossy(entry).into_owned(),
                    parent,
                },
                Errno::NOENT if !create => LayerError::Io {
                    op: "find directory",
                    path: self.display(prefix),
                    source: e.into(),
                },
                Errno::NOENT => LayerError::InvalidEntry {
                    entry: String::from_utf8_lossy(entry).into_owned(),
                    problem: format!("parent directory {parent:?} is a dangling symlink"),
                },
                Errno::NOTDIR => LayerError::InvalidEntry {
                    entry: String::from_utf8_lossy(entry).into_owned(),
                    problem: format!("parent {parent:?} is not a directory"),
                },
                e => LayerError::Io {
                    op: "resolve directory",
                    path: self.display(prefix),
                    source: e.into(),
                },
            }
        })
    }

    /// Opens the directory at `rel` for reading, resolved from the root under the scope rules;
    /// None if it is no longer a directory.
    pub(crate) fn open_dir_for_update(&self, rel: &[u8]) -> Option<OwnedFd> {
        if rel.is_empty() {
            return None;
        }
        let how = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat2(&*self.fd, rel, how, Mode::empty(), self.resolve).ok()
    }
}
