//! Entry names: turning the path stored in a tar header into a path relative to the layer root.
//!
//! Names are cleaned lexically the way Docker's `filepath.Clean` + join does: a leading `/` is
//! dropped (layers are always relative to their root), `.` and empty components vanish, and `..`
//! removes the previous component. A `..` with nothing left to remove escapes the root and is an
//! error, except at the start of an absolute name, where — as for any rooted path — it stays at
//! the root. Symlinks are *not* considered here; `root.rs` takes care of them when the path is
//! opened.

/// A cleaned entry path: components joined with `/`, empty for the layer root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPath(Vec<u8>);

impl EntryPath {
    /// Cleans `raw`, or returns None if it escapes the root or contains a NUL byte.
    pub(crate) fn clean(raw: &[u8]) -> Option<EntryPath> {
        let rooted = raw.first() == Some(&b'/');
        let mut parts: Vec<&[u8]> = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    if parts.pop().is_none() && !rooted {
                        return None;
                    }
                }
                _ if part.contains(&0) => return None,
                _ => parts.push(part),
            }
        }
        Some(EntryPath(parts.join(&b'/')))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent directory and the last component; the root has no parent.
    pub(crate) fn split(&self) -> Option<(&[u8], &[u8])> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(slash) => (&self.0[..slash], &self.0[slash + 1..]),
            None => (&[][..], &self.0[..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> Option<String> {
        EntryPath::clean(s.as_bytes()).map(|p| String::from_utf8(p.0).unwrap())
    }

    #[test]
    fn cleans_like_docker() {
        assert_eq!(clean("etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(clean("./etc//passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(clean("/etc/x").as_deref(), Some("etc/x"));
        assert_eq!(clean("etc/").as_deref(), Some("etc"));
        assert_eq!(clean("a/../b").as_deref(), Some("b"));
        assert_eq!(clean("./").as_deref(), Some(""));
        assert_eq!(clean("/../etc/x").as_deref(), Some("etc/x"));
        assert_eq!(clean(".wh...").as_deref(), Some(".wh..."));
        assert_eq!(clean("../escape"), None);
        assert_eq!(clean("a/../../escape"), None);
        assert_eq!(clean("a/.."), Some(String::new()));
        assert_eq!(EntryPath::clean(b"a\0b"), None);
    }

    #[test]
    fn splits_parent_and_name() {
        let p = EntryPath::clean(b"a/b/c").unwrap();
        assert_eq!(p.split(), Some((&b"a/b"[..], &b"c"[..])));
        let p = EntryPath::clean(b"top").unwrap();
        assert_eq!(p.split(), Some((&b""[..], &b"top"[..])));
        assert_eq!(EntryPath::clean(b"/").unwrap().split(), None);
    }
}
