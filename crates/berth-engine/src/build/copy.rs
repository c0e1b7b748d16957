//! COPY and ADD: the selected sources are written straight into a fresh layer directory under
//! the store's `tmp/` (no container, no tar round trip), which then becomes the layer.
//!
//! Sources are read in place from the context (entries from `berth_build::context::walk`, so
//! `.dockerignore` applies and symlinks are copied as symlinks, never followed out of the
//! context), or, for `--from`, from a read-only overlay of the stage's or image's layers mounted
//! in the build's private mount namespace. Targets are clean relative paths inside the new
//! directory, which only this step writes.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{lchown, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_build::context::{walk, ContextEntry, EntryKind};
use berth_build::ignore::{clean, Matcher};
use berth_build::instructions::{Copy, CopySource};
use berth_image::layer::{self, SymlinkScope, UnpackOptions};
use sha2::{Digest as _, Sha256};

use super::context::TempDir;
use super::{io_err, BuildError, Result};
use crate::Engine;

/// Where a COPY reads from.
pub(super) enum CopyFrom {
    Context,
    /// The layer directories of a stage or image, topmost first.
    Layers(Vec<PathBuf>),
}

/// The source tree of one COPY.
pub(super) enum Source {
    Context {
        root: PathBuf,
        entries: Vec<ContextEntry>,
    },
    Layers(Vec<PathBuf>),
}

pub(super) struct CopyRequest<'a> {
    pub copy: &'a Copy,
    pub is_add: bool,
    pub workdir: &'a str,
    /// The stage's layers, topmost first (to find existing directories).
    pub lowers: Vec<PathBuf>,
    pub source: Source,
}

pub(super) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Downloads `url`, verifying `checksum` (`sha256:<hex>`) when given.
pub(super) fn fetch(url: &str, checksum: Option<&str>) -> Result<Vec<u8>> {
    let failed = |m: String| BuildError::Source(format!("failed to fetch {url}: {m}"));
    let body = {
        let client = reqwest::blocking::Client::builder()
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let resp = client.get(url).send().map_err(|e| failed(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(failed(format!("invalid response status {}", resp.status())));
        }
        resp.bytes().map_err(|e| failed(e.to_string()))?.to_vec()
    };
    if let Some(want) = checksum {
        let hex = want.strip_prefix("sha256:").ok_or_else(|| {
            BuildError::Invalid(format!(
                "unsupported checksum {want:?}: only sha256 is supported"
            ))
        })?;
        let got = hex::encode(Sha256::digest(&body));
        if got != hex.to_ascii_lowercase() {
            return Err(BuildError::Source(format!(
                "digest mismatch for {url}: expected sha256:{hex}, got sha256:{got}"
            )));
        }
    }
    Ok(body)
}

/// A read-only overlay mounted for `COPY --from`; unmounted on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.0);
    }
}

fn parse_mode(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::Invalid(format!("invalid --chmod value {s:?}: must be octal")))
}

/// Resolves `--chown` against the stage's `/etc/passwd` and `/etc/group`.
fn parse_owner(spec: &str, lowers: &[PathBuf]) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |rel: &str| -> String {
        lowers
            .iter()
            .find_map(|l| fs::read(l.join(rel)).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| {
                let id = f[2].parse().unwrap_or(0);
                let g = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
                (id, g)
            })
        })
    };
    let (uid, mut gid) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("etc/passwd", user).ok_or_else(|| {
            BuildError::Invalid(format!(
                "unable to convert uid/gid chown string to host mapping: user {user} not found"
            ))
        })?,
    };
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g).map(|(id, _)| id).ok_or_else(|| {
                BuildError::Invalid(format!(
                    "unable to convert uid/gid chown string to host mapping: group {g} not found"
                ))
            })?,
        };
    }
    Ok((uid, gid))
}

/// The metadata of `rel` in the stage's layers (topmost wins; whiteouts hide).
fn lower_meta(lowers: &[PathBuf], rel: &str) -> Option<fs::Metadata> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for l in lowers {
        if let Ok(m) = fs::symlink_metadata(l.join(rel)) {
            if m.file_type().is_char_device() && m.rdev() == 0 {
                return None;
            }
            return Some(m);
        }
    }
    None
}

struct Writer<'a> {
    out: &'a Path,
    lowers: &'a [PathBuf],
    owner: (u32, u32),
    chmod: Option<u32>,
    /// (target, mtime ns) to apply once everything is written, children before parents.
    times: Vec<(PathBuf, i64)>,
}

impl Writer<'_> {
    /// Creates the missing parents of `rel`, copying an existing directory's metadata from the
    /// layers below so the new layer does not change it.
    fn parents(&mut self, rel: &str) -> Result<()> {
        let mut acc = String::new();
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            let path = self.out.join(&acc);
            if fs::symlink_metadata(&path).is_ok() {
                continue;
            }
            match lower_meta(self.lowers, &acc) {
                Some(m) if m.is_dir() => {
                    use std::os::unix::fs::MetadataExt;
                    fs::DirBuilder::new()
                        .mode(m.mode() & 0o7777)
                        .create(&path)
                        .map_err(io_err("create", &path))?;
                    fs::set_permissions(&path, fs::Permissions::from_mode(m.mode() & 0o7777))
                        .map_err(io_err("chmod", &path))?;
                    lchown(&path, Some(m.uid()), Some(m.gid())).map_err(io_err("chown", &path))?;
                    self.times
                        .push((path, m.mtime() * 1_000_000_000 + m.mtime_nsec()));
                }
                _ => {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&path)
                        .map_err(io_err("create", &path))?;
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                        .map_err(io_err("chmod", &path))?;
                }
            }
        }
        Ok(())
    }

    fn finish_entry(&mut self, path: &Path, mode: u32, mtime_ns: i64, symlink: bool) -> Result<()> {
        lchown(path, Some(self.owner.0), Some(self.owner.1)).map_err(io_err("chown", path))?;
        if !symlink {
            let mode = self.chmod.unwrap_or(mode & 0o7777);
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(io_err("chmod", path))?;
        }
        self.times.push((path.to_path_buf(), mtime_ns));
        Ok(())
    }

    fn entry(&mut self, root: &Path, e: &ContextEntry, target: &str) -> Result<()> {
        let target = clean(target);
        let target = target.trim_start_matches('/');
        if target.is_empty() || target == "." {
            return Ok(());
        }
        self.parents(target)?;
        let dst = self.out.join(target);
        let src = root.join(&e.path);
        match e.kind {
            EntryKind::Dir => {
                if !fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir()) {
                    let _ = fs::remove_file(&dst);
                    fs::create_dir(&dst).map_err(io_err("create", &dst))?;
                }
                self.finish_entry(&dst, e.mode, e.mtime_ns, false)
            }
            EntryKind::File => {
                if fs::symlink_metadata(&dst).is_ok() {
                    let _ = fs::remove_file(&dst);
                }
                fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
                self.finish_entry(&dst, e.mode, e.mtime_ns, false)
            }
            EntryKind::Symlink => {
                let link = match &e.link_target {
                    Some(t) => PathBuf::from(t),
                    None => fs::read_link(&src).map_err(io_err("read link", &src))?,
                };
                if fs::symlink_metadata(&dst).is_ok() {
                    let _ = fs::remove_file(&dst);
                }
                std::os::unix::fs::symlink(&link, &dst).map_err(io_err("create symlink", &dst))?;
                self.finish_entry(&dst, e.mode, e.mtime_ns, true)
            }
            EntryKind::Other => Ok(()),
        }
    }

    fn bytes(&mut self, target: &str, data: &[u8], mode: u32) -> Result<()> {
        let target = clean(target);
        let target = target.trim_start_matches('/');
        self.parents(target)?;
        let dst = self.out.join(target);
        fs::write(&dst, data).map_err(io_err("write", &dst))?;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        self.finish_entry(&dst, mode, now, false)
    }

    fn apply_times(&mut self) {
        use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD};
        for (path, ns) in self.times.iter().rev() {
            let t = Timespec {
                tv_sec: ns.div_euclid(1_000_000_000),
                tv_nsec: ns.rem_euclid(1_000_000_000) as _,
            };
            let ts = Timestamps {
                last_access: t,
                last_modification: t,
            };
            let _ = utimensat(CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW);
        }
    }
}

fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    super::context::looks_like_archive(&head[..n])
}

/// Writes the layer directory of one COPY/ADD and returns it (under the store's `tmp/`).
pub(super) fn copy(engine: &Engine, req: &CopyRequest<'_>) -> Result<PathBuf> {
    let store = engine.store();
    let out = store.temp_path("copy");
    fs::create_dir(&out).map_err(io_err("create", &out))?;
    fs::set_permissions(&out, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &out))?;
    let guard = TempDir(out.clone());

    let (root, entries, _mounted): (PathBuf, Vec<ContextEntry>, Option<Mounted>) = match &req.source
    {
        Source::Context { root, entries } => (root.clone(), entries.clone(), None),
        Source::Layers(dirs) => {
            let (root, mounted) = match dirs.len() {
                0 => {
                    let empty = store.temp_path("from-empty");
                    fs::create_dir(&empty).map_err(io_err("create", &empty))?;
                    (empty.clone(), Some(Mounted(empty)))
                }
                1 => (dirs[0].clone(), None),
                _ => {
                    let mnt = store.temp_path("from");
                    fs::create_dir(&mnt).map_err(io_err("create", &mnt))?;
                    let lower: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                    let data =
                        format!("lowerdir={},redirect_dir=off,metacopy=off", lower.join(":"));
                    if let Err(e) = crate::container::sys::mount_overlay(&mnt, &data) {
                        let _ = fs::remove_dir(&mnt);
                        return Err(io_err("mount the source overlay on", &mnt)(e));
                    }
                    (mnt.clone(), Some(Mounted(mnt)))
                }
            };
            let entries =
                walk(&root, &Matcher::default()).map_err(|e| BuildError::Source(e.to_string()))?;
            (root, entries, mounted)
        }
    };

    let c = req.copy;
    let owner = match &c.chown {
        Some(s) => parse_owner(s, &req.lowers)?,
        None => (0, 0),
    };
    let chmod = c.chmod.as_deref().map(parse_mode).transpose()?;
    let excludes = Matcher::new(&c.excludes)
        .map_err(|e| BuildError::Invalid(format!("invalid --exclude pattern: {e}")))?;
    let dest_abs = if c.dest.starts_with('/') {
        c.dest.clone()
    } else {
        let wd = if req.workdir.is_empty() {
            "/"
        } else {
            req.workdir
        };
        format!("{}/{}", wd.trim_end_matches('/'), c.dest)
    };
    let dest = clean(&dest_abs).trim_start_matches('/').to_string();
    let has_glob = c
        .sources
        .iter()
        .any(|s| matches!(s, CopySource::Path(p) if p.contains(['*', '?', '['])));
    let dest_is_dir = c.dest.ends_with('/')
        || c.dest.ends_with("/.")
        || c.dest == "."
        || c.sources.len() > 1
        || has_glob
        || dest.is_empty()
        || lower_meta(&req.lowers, &dest).is_some_and(|m| m.is_dir());
    let join = |base: &str, rel: &str| -> String {
        if base.is_empty() {
            rel.to_string()
        } else if rel.is_empty() {
            base.to_string()
        } else {
            format!("{base}/{rel}")
        }
    };

    let mut w = Writer {
        out: &out,
        lowers: &req.lowers,
        owner,
        chmod,
        times: Vec::new(),
    };
    if dest_is_dir && !dest.is_empty() {
        w.parents(&format!("{dest}/x"))?;
    }
    for s in &c.sources {
        let p = match s {
            CopySource::Inline(h) => {
                let target = if dest_is_dir {
                    join(&dest, &h.name)
                } else {
                    dest.clone()
                };
                w.bytes(&target, h.content.as_bytes(), 0o644)?;
                continue;
            }
            CopySource::Path(p) => p,
        };
        if req.is_add && is_url(p) {
            let body = fetch(p, c.checksum.as_deref())?;
            let name = p
                .split(['?', '#'])
                .next()
                .unwrap_or(p)
                .rsplit('/')
                .find(|s| !s.is_empty() && !s.contains(':'))
                .unwrap_or("download")
                .to_string();
            let target = if dest_is_dir {
                join(&dest, &name)
            } else {
                dest.clone()
            };
            w.bytes(&target, &body, 0o600)?;
            continue;
        }
        let src = clean(p.trim_start_matches('/'));
        let whole = src == "." || src.is_empty();
        let matched: Vec<Option<&ContextEntry>> = if whole {
            vec![None]
        } else if src.contains(['*', '?', '[']) {
            let m = Matcher::new(&[src.as_str()])
                .map_err(|e| BuildError::Invalid(format!("invalid source pattern {p:?}: {e}")))?;
            let pat = &m.patterns()[0];
            entries
                .iter()
                .filter(|e| pat.matches(&e.path))
                .map(Some)
                .collect()
        } else {
            entries
                .iter()
                .filter(|e| e.path == src)
                .map(Some)
                .take(1)
                .collect()
        };
        if matched.is_empty() {
            return Err(BuildError::Source(format!("\"/{src}\": not found")));
        }
        for m in matched {
            let is_dir = m.is_none_or(|e| e.kind == EntryKind::Dir);
            let mpath = m.map(|e| e.path.as_str()).unwrap_or("");
            if is_dir {
                let base = if c.parents {
                    join(&dest, mpath)
                } else {
                    dest.clone()
                };
                if let Some(e) = m {
                    if !base.is_empty() {
                        w.entry(&root, e, &base)?;
                    }
                }
                let prefix = if mpath.is_empty() {
                    String::new()
                } else {
                    format!("{mpath}/")
                };
                for e in entries
                    .iter()
                    .filter(|e| e.path.starts_with(&prefix) && e.path != mpath)
                {
                    if !excludes.is_empty() && excludes.matches(&e.path) {
                        continue;
                    }
                    let rel = &e.path[prefix.len()..];
                    w.entry(&root, e, &join(&base, rel))?;
                }
                continue;
            }
            let e = m.expect("a file entry");
            if !excludes.is_empty() && excludes.matches(&e.path) {
                continue;
            }
            if req.is_add && e.kind == EntryKind::File && is_archive(&root.join(&e.path)) {
                let target_dir = out.join(&dest);
                w.parents(&format!("{dest}/x"))?;
                fs::create_dir_all(&target_dir).map_err(io_err("create", &target_dir))?;
                let file = fs::File::open(root.join(&e.path))
                    .map_err(io_err("open", root.join(&e.path)))?;
                let reader =
                    layer::decompressed(file).map_err(io_err("decompress", root.join(&e.path)))?;
                let opts = UnpackOptions {
                    preserve_ownership: true,
                    convert_whiteouts: false,
                    symlinks: SymlinkScope::Beneath,
                    apply_root_entry: true,
                };
                layer::unpack(reader, &target_dir, &opts).map_err(|err| {
                    BuildError::Source(format!("failed to extract {}: {err}", e.path))
                })?;
                continue;
            }
            let name = e.path.rsplit('/').next().unwrap_or(&e.path);
            let target = if c.parents {
                join(&dest, &e.path)
            } else if dest_is_dir {
                join(&dest, name)
            } else {
                dest.clone()
            };
            w.entry(&root, e, &target)?;
        }
    }
    w.apply_times();
    std::mem::forget(guard);
    Ok(out)
}

/// Creates directory `rel` in `out` when the layers below do not have it (a RUN's working
/// directory, as BuildKit creates WORKDIR), keeping existing parents' metadata.
pub(super) fn ensure_dir(out: &Path, lowers: &[PathBuf], rel: &str) -> Result<()> {
    let rel = clean(rel);
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() || lower_meta(lowers, rel).is_some_and(|m| m.is_dir()) {
        return Ok(());
    }
    let mut w = Writer {
        out,
        lowers,
        owner: (0, 0),
        chmod: None,
        times: Vec::new(),
    };
    w.parents(&format!("{rel}/x"))?;
    w.apply_times();
    Ok(())
}

/// Whether `path` (absolute in the image) is a directory in the layers (topmost first).
pub(super) fn is_dir_in(lowers: &[PathBuf], path: &str) -> bool {
    let rel = clean(path);
    let rel = rel.trim_start_matches('/');
    rel.is_empty() || lower_meta(lowers, rel).is_some_and(|m| m.is_dir())
}
