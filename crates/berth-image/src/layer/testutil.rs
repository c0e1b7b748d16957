//! Test helpers shared by the layer tests: a raw tar writer for crafted (and hostile) archives,
//! and a tree description for comparing directories.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Builds a tar stream entry by entry from raw names.
#[derive(Default)]
pub(crate) struct RawTar(pub Vec<u8>);

pub(crate) struct RawEntry<'a> {
    pub name: &'a [u8],
    pub kind: u8,
    pub link: &'a [u8],
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
}

impl<'a> RawEntry<'a> {
    pub fn new(name: &'a str, kind: u8) -> Self {
        RawEntry {
            name: name.as_bytes(),
            kind,
            link: b"",
            data: b"",
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            dev: (0, 0),
        }
    }
    pub fn file(name: &'a str, data: &'a [u8]) -> Self {
        RawEntry {
            data,
            ..RawEntry::new(name, b'0')
        }
    }
    pub fn dir(name: &'a str) -> Self {
        RawEntry::new(name, b'5')
    }
    pub fn symlink(name: &'a str, target: &'a str) -> Self {
        RawEntry {
            link: target.as_bytes(),
            ..RawEntry::new(name, b'2')
        }
    }
    pub fn hardlink(name: &'a str, target: &'a str) -> Self {
        RawEntry {
            link: target.as_bytes(),
            ..RawEntry::new(name, b'1')
        }
    }
}

impl RawTar {
    pub fn entry(mut self, e: RawEntry<'_>) -> Self {
        let mut h = tar::Header::new_ustar();
        let old = h.as_old_mut();
        old.name[..e.name.len()].copy_from_slice(e.name);
        old.linkname[..e.link.len()].copy_from_slice(e.link);
        h.set_entry_type(tar::EntryType::new(e.kind));
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        h.set_device_major(e.dev.0).unwrap();
        h.set_device_minor(e.dev.1).unwrap();
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(e.data);
        self.pad();
        self
    }

    /// A PAX extended header applying `records` to the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3;
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let e = RawEntry {
            data: &data,
            ..RawEntry::new("PaxHeaders/x", b'x')
        };
        self.entry(e)
    }

    fn pad(&mut self) {
        let rem = self.0.len() % 512;
        if rem != 0 {
            self.0.resize(self.0.len() + 512 - rem, 0);
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

/// Every node under `root` (not `root` itself) with what a layer must preserve: type, mode,
/// owner, mtime (seconds), content digest, link target, device number, xattrs (minus overlay's
/// own) and hardlink group. Directory sizes are left out: they depend on the filesystem.
pub(crate) fn describe(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<u64, Vec<u8>> = HashMap::new();
    describe_into(root, b"", &mut out, &mut inodes);
    out
}

fn describe_into(
    dir: &Path,
    rel: &[u8],
    out: &mut BTreeMap<Vec<u8>, String>,
    inodes: &mut HashMap<u64, Vec<u8>>,
) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let mut child = rel.to_vec();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(name.as_bytes());
        let m = fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir".to_owned()
        } else if ft.is_symlink() {
            format!("symlink->{}", fs::read_link(&path).unwrap().display())
        } else if ft.is_file() {
            let data = fs::read(&path).unwrap();
            format!(
                "file size={} sha={}",
                data.len(),
                &crate::digest::Digest::of(&data).hex()[..16]
            )
        } else if ft.is_char_device() {
            format!(
                "char {}:{}",
                rustix::fs::major(m.rdev()),
                rustix::fs::minor(m.rdev())
            )
        } else if ft.is_block_device() {
            format!(
                "block {}:{}",
                rustix::fs::major(m.rdev()),
                rustix::fs::minor(m.rdev())
            )
        } else if ft.is_fifo() {
            "fifo".to_owned()
        } else {
            "other".to_owned()
        };
        let mut link = String::new();
        if !ft.is_dir() && m.nlink() > 1 {
            let first = inodes.entry(m.ino()).or_insert_with(|| child.clone());
            link = format!(" links-with={}", String::from_utf8_lossy(first));
        }
        let mode = if ft.is_symlink() {
            0
        } else {
            m.mode() & 0o7777
        };
        out.insert(
            child.clone(),
            format!(
                "{kind} mode={mode:o} owner={}:{} mtime={} xattrs={:?}{link}",
                m.uid(),
                m.gid(),
                m.mtime(),
                xattrs(&path)
            ),
        );
        if ft.is_dir() {
            describe_into(&path, &child, out, inodes);
        }
    }
}

/// xattrs of `path` (not following a symlink), sorted, overlay's own left out.
pub(crate) fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let mut value = vec![0u8; 4096];
        let len = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut value[..]).unwrap();
        value.truncate(len);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    out.sort();
    out
}

/// Whether the tests run with the privileges for ownership, device nodes and trusted xattrs.
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
