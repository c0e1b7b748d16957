//! A depth-first walk over a directory tree in the order Docker writes layers: each directory
//! before its contents, names sorted bytewise (Go's `filepath.Walk` order), symlinks never
//! followed. Directories are walked through fds, so a tree that changes underneath (a running
//! container) can make the walk fail but never lead it outside the tree.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::{LayerError, Result};

/// One node of the tree, handed to the visitor.
pub(crate) struct Node<'a> {
    /// The directory holding this node.
    pub parent: BorrowedFd<'a>,
    pub name: &'a [u8],
    /// Path relative to the walked root, components joined with `/`.
    pub rel: &'a [u8],
    pub stat: &'a Stat,
    pub kind: FileType,
    /// For directories, an fd open for reading (usable for xattrs).
    pub dir: Option<BorrowedFd<'a>>,
}

/// What the visitor wants done with a directory's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Descend {
    Yes,
    No,
}

/// Walks everything below `root` (not `root` itself), calling `visit` for each node.
pub(crate) fn walk(root: &Path, visit: &mut dyn FnMut(&Node<'_>) -> Result<Descend>) -> Result<()> {
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error("open directory", root.to_owned(), e))?;
    let mut walker = Walker {
        root,
        rel: Vec::new(),
    };
    walker.walk_dir(fd, visit)
}

struct Walker<'r> {
    root: &'r Path,
    /// The current directory's path relative to the root.
    rel: Vec<u8>,
}

impl Walker<'_> {
    fn display(&self) -> PathBuf {
        display_path(self.root, &self.rel)
    }

    fn walk_dir(
        &mut self,
        fd: OwnedFd,
        visit: &mut dyn FnMut(&Node<'_>) -> Result<Descend>,
    ) -> Result<()> {
        let mut dir = Dir::new(fd).map_err(|e| io_error("read directory", self.display(), e))?;
        let mut names: Vec<CString> = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io_error("read directory", self.display(), e))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push(name.to_owned());
            }
        }
        names.sort_unstable();
        let dirfd = dir
            .fd()
            .map_err(|e| io_error("read directory", self.display(), e))?;
        let base_len = self.rel.len();
        for name in &names {
            let name = name.to_bytes();
            if base_len > 0 {
                self.rel.push(b'/');
            }
            self.rel.extend_from_slice(name);
            let result = self.visit_child(dirfd, name, visit);
            self.rel.truncate(base_len);
            result?;
        }
        Ok(())
    }

    fn visit_child(
        &mut self,
        dirfd: BorrowedFd<'_>,
        name: &[u8],
        visit: &mut dyn FnMut(&Node<'_>) -> Result<Descend>,
    ) -> Result<()> {
        let stat = match rustix::fs::statat(dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed since the directory was read (a running container): nothing to record.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_error("stat", self.display(), e)),
        };
        let kind = FileType::from_raw_mode(stat.st_mode);
        let child = if kind == FileType::Directory {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            Some(
                rustix::fs::openat(dirfd, name, flags, Mode::empty())
                    .map_err(|e| io_error("open directory", self.display(), e))?,
            )
        } else {
            None
        };
        let descend = visit(&Node {
            parent: dirfd,
            name,
            rel: &self.rel,
            stat: &stat,
            kind,
            dir: child.as_ref().map(|fd| fd.as_fd()),
        })?;
        match child {
            Some(fd) if descend == Descend::Yes => self.walk_dir(fd, visit),
            _ => Ok(()),
        }
    }
}

/// `root/rel` for messages.
pub(crate) fn display_path(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(String::from_utf8_lossy(rel).as_ref())
    }
}

fn io_error(op: &'static str, path: PathBuf, e: Errno) -> LayerError {
    LayerError::Io {
        op,
        path,
        source: e.into(),
    }
}
