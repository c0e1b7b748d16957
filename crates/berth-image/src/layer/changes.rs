//! Filesystem changes of a container (`docker diff`): what its overlay upper dir added, changed
//! or deleted relative to the image layers below it.
//!
//! The rules are Docker's (`pkg/archive` `changes` with the overlay deleted-file test): a
//! whiteout is `D`; an opaque directory that hid an existing one is `D` (its new contents are
//! then `A`); a path that exists in a lower layer is `C`, except a directory whose size, mode and
//! mtime are unchanged (it was only copied up); anything else is `A`. The parent of an added or
//! deleted path is reported as `C` if it was not already. Unlike Docker, a lower path counts as
//! existing only if the layers above it do not hide it (whiteouts, opaque directories, a
//! non-directory in the way), which is what the container actually saw.

use std::collections::HashSet;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::sys;
use super::walk::{walk, Descend};
use super::whiteout::{is_overlay_whiteout, OVERLAY_OPAQUE_XATTR};
use super::{LayerError, Result};

/// The `docker diff` letter of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// `A`: the path did not exist below.
    Added,
    /// `C`: the path existed below and was modified (or is the parent of an addition/deletion).
    Changed,
    /// `D`: the path existed below and was removed.
    Deleted,
}

impl ChangeKind {
    /// `A`, `C` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `docker diff`: a kind and an absolute path inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path in the container, e.g. `/etc/passwd`.
    pub path: String,
}

impl fmt::Display for Change {
    /// `C /etc/passwd`, as `docker diff` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// The changes recorded in the overlay upper dir `upper` relative to `lowers` (the image's layer
/// directories, topmost first), in walk order: each directory before its contents, names sorted.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let lowers = lowers
        .iter()
        .map(|path| {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            rustix::fs::open(path, flags, Mode::empty()).map_err(|e| LayerError::Io {
                op: "open layer directory",
                path: path.clone(),
                source: e.into(),
            })
        })
        .collect::<Result<Vec<OwnedFd>>>()?;
    let mut out = Vec::new();
    let mut changed_dirs: HashSet<String> = HashSet::new();
    // Upper directories marked opaque: nothing below them is visible from the lowers.
    let mut opaque_dirs: HashSet<Vec<u8>> = HashSet::new();
    walk(upper, &mut |node| {
        let rel = node.rel;
        let path = format!("/{}", String::from_utf8_lossy(rel));
        let io_err = |op, e: std::io::Error| LayerError::Io {
            op,
            path: upper.join(String::from_utf8_lossy(rel).as_ref()),
            source: e,
        };
        let is_dir = node.kind == FileType::Directory;
        let opaque = match node.dir {
            Some(dir) => is_opaque(dir).map_err(|e| io_err("read xattrs of", e))?,
            None => false,
        };
        let hidden = ancestors(rel).any(|a| opaque_dirs.contains(a));
        let below = if hidden {
            None
        } else {
            lookup_lower(&lowers, rel).map_err(|e| io_err("look up in lower layers", e))?
        };
        if opaque {
            opaque_dirs.insert(rel.to_vec());
        }
        let kind = if node.kind == FileType::CharacterDevice && is_overlay_whiteout(node.stat) {
            ChangeKind::Deleted
        } else if let Some(lower) = below {
            if opaque {
                // Deleted and re-created; its contents are all new.
                ChangeKind::Deleted
            } else if is_dir
                && sys::file_type(&lower) == FileType::Directory
                && same_dir_attributes(node.stat, &lower)
            {
                // Only copied up because something inside changed.
                return Ok(Descend::Yes);
            } else {
                ChangeKind::Changed
            }
        } else {
            ChangeKind::Added
        };
        if is_dir {
            changed_dirs.insert(path.clone());
        }
        if kind != ChangeKind::Changed {
            let parent = match path.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &path[..i],
            };
            if parent != "/" && !changed_dirs.contains(parent) {
                changed_dirs.insert(parent.to_owned());
                out.push(Change {
                    kind: ChangeKind::Changed,
                    path: parent.to_owned(),
                });
            }
        }
        out.push(Change { kind, path });
        Ok(Descend::Yes)
    })?;
    Ok(out)
}

/// The proper ancestors of `rel` (`a/b/c` → `a/b`, `a`).
fn ancestors(rel: &[u8]) -> impl Iterator<Item = &[u8]> {
    rel.iter()
        .enumerate()
        .rev()
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &rel[..i])
}

fn is_opaque(dir: BorrowedFd<'_>) -> std::io::Result<bool> {
    Ok(sys::get_xattr_fd(dir, OVERLAY_OPAQUE_XATTR.as_bytes())?.as_deref() == Some(b"y"))
}

/// Docker's test for a directory that was copied up but not itself modified.
fn same_dir_attributes(upper: &Stat, lower: &Stat) -> bool {
    let (u, l) = (sys::mtime(upper), sys::mtime(lower));
    // Filesystems without sub-second times report 0 ns; treat that as a match.
    let same_time =
        u.tv_sec == l.tv_sec && (u.tv_nsec == l.tv_nsec || u.tv_nsec == 0 || l.tv_nsec == 0);
    upper.st_size == lower.st_size && upper.st_mode == lower.st_mode && same_time
}

/// What the layers `lowers` (topmost first) show at `rel`, as overlayfs would: the first layer
/// that has it wins, a whiteout or a non-directory on the way ends the search, and an opaque
/// directory on the way hides the layers below it.
fn lookup_lower(lowers: &[OwnedFd], rel: &[u8]) -> std::io::Result<Option<Stat>> {
    let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[][..], rel),
    };
    'layers: for layer in lowers {
        let mut dir: Option<OwnedFd> = None;
        let mut behind_opaque = false;
        for comp in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            let at = dir.as_ref().map_or(layer.as_fd(), |d| d.as_fd());
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(at, comp, flags, Mode::empty()) {
                Ok(fd) => {
                    behind_opaque |= is_opaque(fd.as_fd())?;
                    dir = Some(fd);
                }
                Err(Errno::NOENT) if behind_opaque => return Ok(None),
                Err(Errno::NOENT) => continue 'layers,
                // A file, symlink or whiteout where a directory should be hides everything
                // below it in the lower layers.
                Err(Errno::NOTDIR | Errno::LOOP) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        let at = dir.as_ref().map_or(layer.as_fd(), |d| d.as_fd());
        match sys::lstat_at(at, name)? {
            Some(st) if is_overlay_whiteout(&st) => return Ok(None),
            Some(st) => return Ok(Some(st)),
            None if behind_opaque => return Ok(None),
            None => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn set_opaque(path: &Path) {
        rustix::fs::setxattr(
            path,
            OVERLAY_OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reports_like_docker_diff() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
        for dir in ["etc", "var/cache/apt", "usr/bin", "home"] {
            fs::create_dir_all(lower.join(dir)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("etc/hostname"), "h").unwrap();
        fs::write(lower.join("var/cache/apt/pkgcache"), "p").unwrap();
        fs::write(lower.join("usr/bin/tool"), "t").unwrap();

        // The upper dir as overlayfs leaves it after: rm /etc/passwd; echo >> /etc/hostname;
        // rm -r /var/cache && mkdir /var/cache && touch /var/cache/new; touch /root/.history;
        // and a copied-up but unchanged /usr/bin (mtime preserved) with a new file in it.
        fs::create_dir_all(upper.join("etc")).unwrap();
        whiteout(&upper.join("etc/passwd"));
        fs::write(upper.join("etc/hostname"), "h2").unwrap();
        fs::create_dir_all(upper.join("var/cache")).unwrap();
        set_opaque(&upper.join("var/cache"));
        fs::write(upper.join("var/cache/new"), "n").unwrap();
        fs::create_dir_all(upper.join("root")).unwrap();
        fs::write(upper.join("root/.history"), "ls").unwrap();
        fs::create_dir_all(upper.join("usr/bin")).unwrap();
        fs::write(upper.join("usr/bin/tool"), "t2").unwrap();
        for dir in ["usr", "usr/bin", "var", "etc"] {
            let mut mtime = fs::metadata(lower.join(dir)).unwrap().modified().unwrap();
            if dir == "etc" {
                // Deleting passwd changed /etc's mtime.
                mtime += std::time::Duration::from_secs(100);
            }
            fs::File::open(upper.join(dir))
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
        let changes = changes(&upper, &[lower]).unwrap();
        assert_eq!(
            lines(&changes),
            [
                // /etc's own mtime differs from the lower one, so it counts as changed.
                "C /etc",
                "C /etc/hostname",
                "D /etc/passwd",
                "A /root",
                "A /root/.history",
                // /usr and /usr/bin were only copied up: not reported.
                "C /usr/bin/tool",
                "C /var",
                "D /var/cache",
                "A /var/cache/new",
            ]
        );
    }

    #[test]
    fn lower_lookup_honours_whiteouts_and_opaque_dirs() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("top");
        let bottom = tmp.path().join("bottom");
        fs::create_dir_all(bottom.join("a/b")).unwrap();
        fs::write(bottom.join("a/b/f"), "").unwrap();
        fs::write(bottom.join("a/g"), "").unwrap();
        fs::write(bottom.join("x"), "").unwrap();
        fs::create_dir_all(top.join("a")).unwrap();
        whiteout(&top.join("a/g"));
        whiteout(&top.join("x"));
        let open = |p: &Path| {
            rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        let layers = [open(&top), open(&bottom)];
        assert!(lookup_lower(&layers, b"a/b/f").unwrap().is_some());
        assert!(lookup_lower(&layers, b"a/g").unwrap().is_none());
        assert!(lookup_lower(&layers, b"x").unwrap().is_none());
        set_opaque(&top.join("a"));
        assert!(lookup_lower(&layers, b"a/b/f").unwrap().is_none());
        assert!(lookup_lower(&layers, b"a").unwrap().is_some());
    }
}
