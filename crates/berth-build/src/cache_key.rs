//! Step cache keys.
//!
//! A step's key is the SHA-256 of: its parent's key, the instruction after
//! expansion (as canonical JSON), the ARGs in scope (sorted), and for
//! COPY/ADD a [`ContentDigest`] of the sources. The content digest covers
//! each entry's relative path, kind, permission bits, uid/gid, symlink
//! target and file bytes, never the mtime, so touching a file does not
//! invalidate the cache but changing a byte or a mode does.
//!
//! File contents are hashed on all cores; a [`StatCache`] keyed by
//! (path, size, mtime, inode) lets unchanged files skip the read entirely
//! on the next build.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::context::{ContextEntry, EntryKind};
use crate::ignore::{IgnoreError, Matcher};
use crate::instructions::InstructionKind;

/// A failure while hashing sources or using the stat cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheKeyError {
    /// A source file could not be read.
    #[error("failed to read {path} for its cache digest")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The stat cache could not be written.
    #[error("failed to write stat cache {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A SHA-256 value used as a key or digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse lower-case hex.
    pub fn from_hex(s: &str) -> Option<Key> {
        let v = hex::decode(s).ok()?;
        Some(Key(v.try_into().ok()?))
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.to_hex())
    }
}

/// A step's cache key.
pub type CacheKey = Key;
/// The digest of a set of source files.
pub type ContentDigest = Key;

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The key of a stage's starting point: the base image digest (or
/// `scratch`, or a stage's final key) and the platform.
pub fn base_key(base: &str, platform: &str) -> CacheKey {
    let mut h = Sha256::new();
    put(&mut h, b"berth-base-v1");
    put(&mut h, base.as_bytes());
    put(&mut h, platform.as_bytes());
    Key(h.finalize().into())
}

/// The key of one step.
pub fn step_key(
    parent: &CacheKey,
    instruction: &InstructionKind,
    args: &BTreeMap<String, String>,
    sources: Option<&ContentDigest>,
) -> CacheKey {
    let mut h = Sha256::new();
    put(&mut h, b"berth-step-v1");
    h.update(parent.0);
    // Serialising our own types cannot fail; fall back to Debug regardless.
    let canonical =
        serde_json::to_vec(instruction).unwrap_or_else(|_| format!("{instruction:?}").into_bytes());
    put(&mut h, &canonical);
    h.update((args.len() as u64).to_le_bytes());
    for (k, v) in args {
        put(&mut h, k.as_bytes());
        put(&mut h, v.as_bytes());
    }
    match sources {
        Some(d) => {
            h.update([1]);
            h.update(d.0);
        }
        None => h.update([0]),
    }
    Key(h.finalize().into())
}

/// The context entries a COPY/ADD source list selects: each source is a
/// glob (Go `filepath.Match` syntax) relative to the context; a match on a
/// directory selects everything below it; `.` selects everything.
pub fn select_sources<'a>(
    entries: &'a [ContextEntry],
    sources: &[String],
) -> Result<Vec<&'a ContextEntry>, IgnoreError> {
    let mut literal = Vec::new();
    let mut globs = Vec::new();
    for s in sources {
        let c = crate::ignore::clean(s.trim_start_matches('/'));
        if c == "." || c.is_empty() {
            return Ok(entries.iter().collect());
        }
        if c.contains(['*', '?', '[', '\\']) {
            globs.push(c);
        } else {
            literal.push(c);
        }
    }
    let matcher = Matcher::new(&globs)?;
    Ok(entries
        .iter()
        .filter(|e| {
            literal.iter().any(|p| {
                e.path.len() >= p.len()
                    && e.path.starts_with(p.as_str())
                    && (e.path.len() == p.len() || e.path.as_bytes()[p.len()] == b'/')
            }) || (!matcher.is_empty() && matcher.matches(&e.path))
        })
        .collect())
}

/// Remembered file digests, keyed by context root and relative path and
/// validated by size, mtime and inode. Load it before a build and save it
/// after.
#[derive(Debug, Default)]
pub struct StatCache {
    roots: HashMap<String, HashMap<String, StatRecord>>,
    dirty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatRecord {
    size: u64,
    mtime_ns: i64,
    ino: u64,
    digest: [u8; 32],
}

/// On-disk form: root -> path -> (size, mtime_ns, ino, hex digest).
type StatFile = HashMap<String, HashMap<String, (u64, i64, u64, String)>>;

impl StatCache {
    /// Load a cache file; a missing or unreadable file gives an empty cache.
    pub fn load(path: &Path) -> StatCache {
        let Ok(text) = std::fs::read(path) else {
            return StatCache::default();
        };
        let file: StatFile = serde_json::from_slice(&text).unwrap_or_default();
        let roots = file
            .into_iter()
            .map(|(root, entries)| {
                let entries = entries
                    .into_iter()
                    .filter_map(|(p, (size, mtime_ns, ino, d))| {
                        let digest = Key::from_hex(&d)?.0;
                        Some((
                            p,
                            StatRecord {
                                size,
                                mtime_ns,
                                ino,
                                digest,
                            },
                        ))
                    })
                    .collect();
                (root, entries)
            })
            .collect();
        StatCache {
            roots,
            dirty: false,
        }
    }

    /// Write the cache atomically (temp file + rename) if it changed.
    pub fn save(&mut self, path: &Path) -> Result<(), CacheKeyError> {
        if !self.dirty {
            return Ok(());
        }
        let werr = |source| CacheKeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let file: StatFile = self
            .roots
            .iter()
            .map(|(root, entries)| {
                let entries = entries
                    .iter()
                    .map(|(p, r)| {
                        (
                            p.clone(),
                            (r.size, r.mtime_ns, r.ino, hex::encode(r.digest)),
                        )
                    })
                    .collect();
                (root.clone(), entries)
            })
            .collect();
        let data = serde_json::to_vec(&file).map_err(|e| werr(e.into()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, data).map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)?;
        self.dirty = false;
        Ok(())
    }

    /// The number of remembered files.
    pub fn len(&self) -> usize {
        self.roots.values().map(HashMap::len).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn root(&self, root: &str) -> Option<&HashMap<String, StatRecord>> {
        self.roots.get(root)
    }

    fn record(&mut self, root: &str, e: &ContextEntry, digest: [u8; 32]) {
        self.roots.entry(root.to_string()).or_default().insert(
            e.path.clone(),
            StatRecord {
                size: e.size,
                mtime_ns: e.mtime_ns,
                ino: e.ino,
                digest,
            },
        );
        self.dirty = true;
    }
}

fn cached(records: Option<&HashMap<String, StatRecord>>, e: &ContextEntry) -> Option<[u8; 32]> {
    let r = records?.get(&e.path)?;
    (r.size == e.size && r.mtime_ns == e.mtime_ns && r.ino == e.ino).then_some(r.digest)
}

fn hash_file(path: &Path, size: u64, buf: &mut Vec<u8>) -> Result<[u8; 32], CacheKeyError> {
    let rerr = |source| CacheKeyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(rerr)?;
    // ring's SHA-256 uses the OpenSSL-derived AVX2/SHA-NI code: about twice
    // the speed of sha2's portable code on CPUs without SHA extensions,
    // which is what makes a cold 24 MB context fit the build budget.
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    if size <= 1 << 20 {
        buf.clear();
        f.read_to_end(buf).map_err(rerr)?;
        h.update(&buf[..]);
    } else {
        buf.resize(1 << 20, 0);
        loop {
            let n = f.read(buf).map_err(rerr)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(h.finish().as_ref());
    Ok(out)
}

/// Digest the given entries of the context at `root`. Entries are combined
/// in path order; file contents come from `cache` when their stat matches,
/// otherwise they are read (in parallel) and remembered in `cache`.
pub fn content_digest(
    root: &Path,
    entries: &[&ContextEntry],
    mut cache: Option<&mut StatCache>,
) -> Result<ContentDigest, CacheKeyError> {
    let mut sorted: Vec<&ContextEntry> = entries.to_vec();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let root_key = root.to_string_lossy();

    // Per-file digests: from the stat cache, or hashed below.
    let mut digests: Vec<Option<[u8; 32]>> = vec![None; sorted.len()];
    let mut todo = Vec::new();
    let records = cache.as_deref().and_then(|c| c.root(&root_key));
    for (i, e) in sorted.iter().enumerate() {
        if e.kind != EntryKind::File {
            continue;
        }
        match cached(records, e) {
            Some(d) => digests[i] = Some(d),
            None => todo.push(i),
        }
    }
    if !todo.is_empty() {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(todo.len())
            .min(8);
        let results: Mutex<Vec<(usize, [u8; 32])>> = Mutex::new(Vec::with_capacity(todo.len()));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let first_err: Mutex<Option<CacheKeyError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut buf = Vec::new();
                    let mut local = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else { break };
                        let e = sorted[i];
                        match hash_file(&root.join(&e.path), e.size, &mut buf) {
                            Ok(d) => local.push((i, d)),
                            Err(err) => {
                                let mut slot = first_err.lock().unwrap_or_else(|p| p.into_inner());
                                slot.get_or_insert(err);
                                break;
                            }
                        }
                    }
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(local);
                });
            }
        });
        if let Some(err) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(err);
        }
        for (i, d) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            digests[i] = Some(d);
            if let Some(c) = cache.as_deref_mut() {
                c.record(&root_key, sorted[i], d);
            }
        }
    }

    let mut h = Sha256::new();
    put(&mut h, b"berth-content-v1");
    for (e, d) in sorted.iter().zip(&digests) {
        put(&mut h, e.path.as_bytes());
        let kind: u8 = match e.kind {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
            EntryKind::Other => b'o',
        };
        h.update([kind]);
        h.update((e.mode & 0o7777).to_le_bytes());
        h.update(e.uid.to_le_bytes());
        h.update(e.gid.to_le_bytes());
        match e.kind {
            EntryKind::File => {
                h.update(e.size.to_le_bytes());
                h.update(d.unwrap_or([0; 32]));
            }
            EntryKind::Symlink => put(&mut h, e.link_target.as_deref().unwrap_or("").as_bytes()),
            _ => {}
        }
    }
    Ok(Key(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::walk;
    use crate::parse;
    use std::os::unix::fs::PermissionsExt;

    fn digest(root: &Path, cache: Option<&mut StatCache>) -> ContentDigest {
        let entries = walk(root, &Matcher::default()).unwrap();
        let refs: Vec<&ContextEntry> = entries.iter().collect();
        content_digest(root, &refs, cache).unwrap()
    }

    #[test]
    fn content_digest_ignores_mtime_but_not_content_or_mode() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir(r.join("src")).unwrap();
        std::fs::write(r.join("src/a"), "hello").unwrap();
        std::fs::write(r.join("b"), vec![7u8; (1 << 20) + 5]).unwrap();
        std::os::unix::fs::symlink("src/a", r.join("l")).unwrap();
        let d0 = digest(r, None);
        // Same content, new mtime: same digest.
        std::fs::write(r.join("src/a"), "hello").unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(r.join("src/a"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(digest(r, None), d0);
        std::fs::write(r.join("src/a"), "hellO").unwrap();
        let d1 = digest(r, None);
        assert_ne!(d1, d0);
        std::fs::set_permissions(r.join("src/a"), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(digest(r, None), d1);
        std::fs::remove_file(r.join("l")).unwrap();
        std::os::unix::fs::symlink("b", r.join("l")).unwrap();
        assert_ne!(digest(r, None), d1);
    }

    #[test]
    fn stat_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("ctx");
        std::fs::create_dir(&r).unwrap();
        for i in 0..20 {
            std::fs::write(r.join(format!("f{i}")), format!("content {i}")).unwrap();
        }
        let cache_file = dir.path().join("stat-cache.json");
        let mut c = StatCache::load(&cache_file);
        let d0 = digest(&r, Some(&mut c));
        assert_eq!(c.len(), 20);
        c.save(&cache_file).unwrap();
        let mut c2 = StatCache::load(&cache_file);
        assert_eq!(c2.len(), 20);
        assert_eq!(digest(&r, Some(&mut c2)), d0);
        assert_eq!(digest(&r, None), d0);
        // A changed file (new size) is re-read despite the cache.
        std::fs::write(r.join("f3"), "changed!!").unwrap();
        assert_ne!(digest(&r, Some(&mut c2)), d0);
    }

    #[test]
    fn step_keys_chain() {
        let df = parse("FROM a\nRUN make\nRUN make test\n").unwrap();
        let ins = &df.stages[0].instructions;
        let base = base_key("sha256:abc", "linux/amd64");
        let args = BTreeMap::new();
        let k1 = step_key(&base, &ins[0].kind, &args, None);
        assert_eq!(k1, step_key(&base, &ins[0].kind, &args, None));
        assert_ne!(k1, step_key(&base, &ins[1].kind, &args, None));
        assert_ne!(
            k1,
            step_key(
                &base_key("sha256:abd", "linux/amd64"),
                &ins[0].kind,
                &args,
                None
            )
        );
        let with_arg: BTreeMap<_, _> = [("V".to_string(), "1".to_string())].into();
        assert_ne!(k1, step_key(&base, &ins[0].kind, &with_arg, None));
        let d = Key([1; 32]);
        assert_ne!(k1, step_key(&base, &ins[0].kind, &args, Some(&d)));
        assert_eq!(Key::from_hex(&k1.to_hex()), Some(k1));
    }

    #[test]
    fn source_selection() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in ["src/a.rs", "src/m/b.rs", "README.md", "x.md"] {
            let p = r.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let entries = walk(r, &Matcher::default()).unwrap();
        let names = |s: &[&str]| -> Vec<String> {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            select_sources(&entries, &s)
                .unwrap()
                .iter()
                .map(|e| e.path.clone())
                .collect()
        };
        assert_eq!(
            names(&["src/"]),
            vec!["src", "src/a.rs", "src/m", "src/m/b.rs"]
        );
        assert_eq!(names(&["*.md"]), vec!["README.md", "x.md"]);
        assert_eq!(names(&["."]).len(), entries.len());
    }
}
