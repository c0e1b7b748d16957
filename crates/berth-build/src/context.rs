//! Walking a build context directory in place: the entries a build may use,
//! after `.dockerignore` filtering.
//!
//! Excluded directories are not descended into when no `!` exception could
//! re-include something below them ([`Matcher::can_skip_dir`]); otherwise
//! they are walked and kept only as parents of re-included entries, the way
//! BuildKit's fsutil includes the parents of included files. Matching reuses
//! each directory's [`MatchInfo`], so a path's parents are never re-matched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::ignore::{MatchInfo, Matcher};

/// A failure while walking the context.
#[derive(Debug, thiserror::Error)]
#[error("failed to walk build context at {path}")]
pub struct ContextError {
    /// The path that could not be read.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A fifo, socket or device.
    Other,
}

/// One included entry of the context, with the metadata a cache key needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Path relative to the context root, `/`-separated.
    pub path: String,
    /// The kind of entry.
    pub kind: EntryKind,
    /// Size in bytes (files) or of the link text (symlinks).
    pub size: u64,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Change time in nanoseconds (for stat caches).
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
    /// The target of a symlink.
    pub link_target: Option<String>,
}

/// Walk `root` and return its included entries in a stable, depth-first,
/// name-sorted order (a directory comes before its contents). The root
/// itself is not listed.
pub fn walk(root: &Path, matcher: &Matcher) -> Result<Vec<ContextEntry>, ContextError> {
    let mut out = Vec::new();
    walk_dir(root, "", matcher, &MatchInfo::default(), &mut out)?;
    Ok(out)
}

fn io_err(path: &Path, source: std::io::Error) -> ContextError {
    ContextError {
        path: path.to_path_buf(),
        source,
    }
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    matcher: &Matcher,
    info: &MatchInfo,
    out: &mut Vec<ContextEntry>,
) -> Result<(), ContextError> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut children = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        children.push(entry);
    }
    children.sort_by_key(|e| e.file_name());
    for entry in children {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let full = entry.path();
        // DirEntry::metadata is an fstatat on the open directory (no
        // symlink following, no full-path resolution).
        let md = entry.metadata().map_err(|e| io_err(&full, e))?;
        let ft = md.file_type();
        let (excluded, child_info) = if matcher.is_empty() {
            (false, MatchInfo::default())
        } else {
            matcher.matches_with_parent(&path, info)
        };
        if ft.is_dir() {
            if excluded {
                if matcher.can_skip_dir(&path) {
                    continue;
                }
                // Walk for exceptions; keep the directory only if needed.
                let at = out.len();
                walk_dir(&full, &path, matcher, &child_info, out)?;
                if out.len() > at {
                    out.insert(at, entry_from(&path, &md, EntryKind::Dir, None));
                }
                continue;
            }
            out.push(entry_from(&path, &md, EntryKind::Dir, None));
            walk_dir(&full, &path, matcher, &child_info, out)?;
            continue;
        }
        if excluded {
            continue;
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&full).map_err(|e| io_err(&full, e))?;
            let target = target.to_string_lossy().into_owned();
            out.push(entry_from(&path, &md, EntryKind::Symlink, Some(target)));
        } else if ft.is_file() {
            out.push(entry_from(&path, &md, EntryKind::File, None));
        } else {
            out.push(entry_from(&path, &md, EntryKind::Other, None));
        }
    }
    Ok(())
}

fn entry_from(
    path: &str,
    md: &std::fs::Metadata,
    kind: EntryKind,
    link_target: Option<String>,
) -> ContextEntry {
    ContextEntry {
        path: path.to_string(),
        kind,
        size: md.size(),
        mode: md.mode(),
        uid: md.uid(),
        gid: md.gid(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        ctime_ns: md.ctime() * 1_000_000_000 + md.ctime_nsec(),
        ino: md.ino(),
        dev: md.dev(),
        link_target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(entries: &[ContextEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn walk_filters_and_reincludes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "a.txt",
            "node_modules/x/y.js",
            "docs/README.md",
            "docs/other.md",
            "src/main.rs",
            "src/tmp.log",
        ] {
            let p = r.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f).unwrap();
        }
        std::os::unix::fs::symlink("a.txt", r.join("link")).unwrap();
        let m = Matcher::new(&["node_modules", "docs", "!docs/README.md", "**/*.log"]).unwrap();
        let entries = walk(r, &m).unwrap();
        assert_eq!(
            paths(&entries),
            vec![
                "a.txt",
                "docs",
                "docs/README.md",
                "link",
                "src",
                "src/main.rs"
            ]
        );
        let link = entries.iter().find(|e| e.path == "link").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(link.link_target.as_deref(), Some("a.txt"));
        let all = walk(r, &Matcher::default()).unwrap();
        assert_eq!(all.len(), 11);
    }
}
