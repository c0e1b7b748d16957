//! Packing directories into tars: an overlay upper dir into a layer (`commit`, `build`), or any
//! tree into a plain archive (`export`, build contexts).
//!
//! The output follows what Docker writes, so layers diff and dedupe the same way: entries in
//! walk order (each directory before its contents, names sorted), directories named with a
//! trailing `/`, USTAR headers with PAX records only where needed (long names, xattrs), second
//! precision mtimes and no atime/ctime, empty user/group names, hardlinks detected by
//! (device, inode) and written as links to the first name seen. Sockets are skipped, as Docker
//! does. In a diff, overlayfs whiteouts become `.wh.` entries.

use std::collections::{hash_map, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use tar::EntryType;

use super::sys::{self, XattrTarget, Xattrs};
use super::walk::{display_path, walk, Descend, Node};
use super::whiteout::{
    is_opaque_xattr, is_overlay_whiteout, is_overlay_xattr, unsupported_overlay_feature,
    OPAQUE_WHITEOUT, WHITEOUT_PREFIX,
};
use super::{LayerError, Result};

/// Output buffering: large enough that headers of small files batch into few writes.
const OUT_BUFFER: usize = 1 << 20;
const COPY_BUFFER: usize = 1 << 20;
const BLOCK: usize = 512;

/// What a [`PackOptions::filter`] decides for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Include,
    /// Leave this entry out but still visit a directory's contents (for `.dockerignore`
    /// exceptions such as `!dir/keep`).
    Skip,
    /// Leave out this entry and everything below it.
    Prune,
}

/// Chooses entries by path relative to the packed directory and whether it is a directory.
pub type PathFilter<'a> = &'a dyn Fn(&Path, bool) -> Select;

/// Options for [`pack_dir`] and [`pack_diff_with`].
#[derive(Clone, Copy, Default)]
pub struct PackOptions<'a> {
    /// `SOURCE_DATE_EPOCH`: modification times later than this are written as this, so that a
    /// rebuild produces the same bytes.
    pub clamp_mtime: Option<i64>,
    /// Leaves entries out of the tar, e.g. for `.dockerignore`.
    pub filter: Option<PathFilter<'a>>,
    /// Writes the first component of every name as this instead: `cp -L LINK -` packs what
    /// the link leads to under the link's name.
    pub rename_top: Option<&'a [u8]>,
}

impl fmt::Debug for PackOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackOptions")
            .field("clamp_mtime", &self.clamp_mtime)
            .field("filter", &self.filter.map(|_| "<fn>"))
            .field("rename_top", &self.rename_top)
            .finish()
    }
}

/// Writes the changes recorded in the overlay upper dir `upper` as an OCI layer tar: overlay
/// whiteouts (0:0 character devices) become `.wh.NAME` entries and opaque directories get a
/// `.wh..wh..opq` entry.
pub fn pack_diff(upper: &Path, out: impl Write) -> Result<()> {
    pack_diff_with(upper, out, &PackOptions::default())
}

/// [`pack_diff`] with options (mtime clamping for reproducible builds, a path filter).
pub fn pack_diff_with(upper: &Path, out: impl Write, opts: &PackOptions<'_>) -> Result<()> {
    Packer::new(upper, out, opts, true).run()
}

/// Writes the whole tree under `dir` as a tar, with no whiteout translation (`export`, build
/// contexts). `dir` itself is not an entry; everything is relative to it.
pub fn pack_dir(dir: &Path, out: impl Write, opts: &PackOptions<'_>) -> Result<()> {
    Packer::new(dir, out, opts, false).run()
}

struct Packer<'a, W: Write> {
    root: &'a Path,
    out: TarWriter<BufWriter<W>>,
    opts: &'a PackOptions<'a>,
    /// Translate overlay whiteouts and check for overlay features (diff mode).
    diff: bool,
    /// First name written for each (device, inode) with more than one link.
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
}

/// A tar header in the making.
struct Entry<'a> {
    name: Vec<u8>,
    kind: EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    link: &'a [u8],
    dev: (u32, u32),
    xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

impl<'a, W: Write> Packer<'a, W> {
    fn new(root: &'a Path, out: W, opts: &'a PackOptions<'a>, diff: bool) -> Self {
        Packer {
            root,
            out: TarWriter {
                out: BufWriter::with_capacity(OUT_BUFFER, out),
            },
            opts,
            diff,
            links: HashMap::new(),
            buf: Vec::new(),
        }
    }

    fn run(mut self) -> Result<()> {
        let root = self.root;
        walk(root, &mut |node| self.node(node))?;
        self.out.finish().map_err(LayerError::WriteStream)
    }

    fn entry_for<'e>(&self, node: &Node<'_>, kind: EntryType) -> Entry<'e> {
        let st = node.stat;
        let mut mtime = sys::mtime(st).tv_sec;
        if let Some(clamp) = self.opts.clamp_mtime {
            mtime = mtime.min(clamp);
        }
        Entry {
            name: self.entry_name(node.rel),
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: 0,
            mtime,
            link: b"",
            dev: (0, 0),
            xattrs: &[],
        }
    }

    /// The tar name of the node at `rel`.
    fn entry_name(&self, rel: &[u8]) -> Vec<u8> {
        match self.opts.rename_top {
            Some(top) => {
                let rest = rel
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(&[][..], |i| &rel[i..]);
                [top, rest].concat()
            }
            None => rel.to_vec(),
        }
    }

    fn io_error(&self, op: &'static str, rel: &[u8], source: impl Into<io::Error>) -> LayerError {
        LayerError::Io {
            op,
            path: display_path(self.root, rel),
            source: source.into(),
        }
    }

    /// The xattrs worth carrying in a layer, and whether the directory is overlay-opaque.
    fn xattrs(&self, target: XattrTarget<'_>, rel: &[u8]) -> Result<(Xattrs, bool)> {
        let all = sys::list_xattrs(target).map_err(|e| self.io_error("read xattrs of", rel, e))?;
        let mut opaque = false;
        let mut keep = Vec::with_capacity(all.len());
        for (name, value) in all {
            if is_overlay_xattr(&name) {
                if self.diff {
                    if let Some(feature) = unsupported_overlay_feature(&name) {
                        return Err(LayerError::UnsupportedOverlayFeature {
                            path: display_path(self.root, rel),
                            feature,
                        });
                    }
                    opaque |= is_opaque_xattr(&name, &value);
                }
            } else if name != b"security.selinux" {
                // SELinux labels describe the host's policy, not the image.
                keep.push((name, value));
            }
        }
        Ok((keep, opaque))
    }

    fn node(&mut self, node: &Node<'_>) -> Result<Descend> {
        if let Some(filter) = self.opts.filter {
            let path = Path::new(OsStr::from_bytes(node.rel));
            match filter(path, node.kind == FileType::Directory) {
                Select::Include => {}
                Select::Skip => return Ok(Descend::Yes),
                Select::Prune => return Ok(Descend::No),
            }
        }
        let write = LayerError::WriteStream;
        match node.kind {
            FileType::Directory => {
                let dir = node.dir.expect("walk opens directories");
                let (xattrs, opaque) = self.xattrs(XattrTarget::Fd(dir), node.rel)?;
                let mut entry = self.entry_for(node, EntryType::Directory);
                entry.name.push(b'/');
                entry.xattrs = &xattrs;
                self.out.header(&entry).map_err(write)?;
                if opaque {
                    // Docker's form: an empty file inheriting the directory's owner and mode.
                    let mut marker = self.entry_for(node, EntryType::Regular);
                    marker.mode &= 0o777;
                    marker.name.push(b'/');
                    marker.name.extend_from_slice(OPAQUE_WHITEOUT.as_bytes());
                    self.out.header(&marker).map_err(write)?;
                }
            }
            FileType::CharacterDevice if self.diff && is_overlay_whiteout(node.stat) => {
                // Checked before hardlinks: overlayfs may share one whiteout inode between
                // many names.
                let mut entry = self.entry_for(node, EntryType::Regular);
                entry.mode = 0o600;
                entry.name.truncate(node.rel.len() - node.name.len());
                entry.name.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                entry.name.extend_from_slice(node.name);
                self.out.header(&entry).map_err(write)?;
            }
            FileType::Socket | FileType::Unknown => {
                let path = display_path(self.root, node.rel);
                tracing::debug!(path = %path.display(), "sockets cannot be archived, skipping");
            }
            kind => {
                if self.write_hardlink(node)? {
                    return Ok(Descend::Yes);
                }
                match kind {
                    FileType::RegularFile => self.regular(node)?,
                    FileType::Symlink => self.symlink(node)?,
                    _ => self.device(node, kind)?,
                }
            }
        }
        Ok(Descend::Yes)
    }

    /// Writes a link entry if this inode was already written under another name.
    fn write_hardlink(&mut self, node: &Node<'_>) -> Result<bool> {
        if sys::nlink(node.stat) <= 1 {
            return Ok(false);
        }
        let key = sys::inode_key(node.stat);
        let name = self.entry_name(node.rel);
        if let hash_map::Entry::Vacant(first) = self.links.entry(key) {
            first.insert(name);
            return Ok(false);
        }
        let mut entry = self.entry_for(node, EntryType::Link);
        entry.link = &self.links[&key];
        self.out.header(&entry).map_err(LayerError::WriteStream)?;
        Ok(true)
    }

    fn regular(&mut self, node: &Node<'_>) -> Result<()> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = rustix::fs::openat(node.parent, node.name, flags, Mode::empty())
            .map_err(|e| self.io_error("open file", node.rel, e))?;
        let (xattrs, _) = self.xattrs(XattrTarget::Fd(fd.as_fd()), node.rel)?;
        let mut entry = self.entry_for(node, EntryType::Regular);
        entry.size = node.stat.st_size as u64;
        entry.xattrs = &xattrs;
        self.out.header(&entry).map_err(LayerError::WriteStream)?;
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let mut file = File::from(fd).take(entry.size);
        let mut copied = 0u64;
        while copied < entry.size {
            let n = match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error("read file", node.rel, e)),
            };
            self.out
                .out
                .write_all(&self.buf[..n])
                .map_err(LayerError::WriteStream)?;
            copied += n as u64;
        }
        if copied < entry.size {
            return Err(self.io_error(
                "read file",
                node.rel,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being packed",
                ),
            ));
        }
        self.out.pad(entry.size).map_err(LayerError::WriteStream)
    }

    fn symlink(&mut self, node: &Node<'_>) -> Result<()> {
        let target = rustix::fs::readlinkat(node.parent, node.name, Vec::new())
            .map_err(|e| self.io_error("read symlink", node.rel, e))?;
        let (xattrs, _) = self.xattrs(XattrTarget::At(node.parent, node.name), node.rel)?;
        let mut entry = self.entry_for(node, EntryType::Symlink);
        entry.link = target.to_bytes();
        entry.xattrs = &xattrs;
        self.out.header(&entry).map_err(LayerError::WriteStream)
    }

    fn device(&mut self, node: &Node<'_>, kind: FileType) -> Result<()> {
        let (xattrs, _) = self.xattrs(XattrTarget::At(node.parent, node.name), node.rel)?;
        let tar_kind = match kind {
            FileType::CharacterDevice => EntryType::Char,
            FileType::BlockDevice => EntryType::Block,
            _ => EntryType::Fifo,
        };
        let mut entry = self.entry_for(node, tar_kind);
        if tar_kind != EntryType::Fifo {
            let rdev = sys::rdev(node.stat);
            entry.dev = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
        }
        entry.xattrs = &xattrs;
        self.out.header(&entry).map_err(LayerError::WriteStream)
    }
}

/// Writes tar headers and padding; file data goes straight to `out`.
struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    fn header(&mut self, e: &Entry<'_>) -> io::Result<()> {
        let mut pax = Vec::new();
        if e.name.len() > 100 {
            pax_record(&mut pax, b"path", &e.name);
        }
        if e.link.len() > 100 {
            pax_record(&mut pax, b"linkpath", e.link);
        }
        for (name, value) in e.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax_record(&mut pax, &key, value);
        }
        if !pax.is_empty() {
            let base = e
                .name
                .rsplit(|&b| b == b'/')
                .find(|c| !c.is_empty())
                .unwrap_or(b"");
            let mut name = b"PaxHeaders.0/".to_vec();
            name.extend_from_slice(&base[..base.len().min(100 - name.len())]);
            let header = ustar(&Entry {
                name,
                kind: EntryType::XHeader,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: pax.len() as u64,
                mtime: e.mtime,
                link: b"",
                dev: (0, 0),
                xattrs: &[],
            })?;
            self.out.write_all(header.as_bytes())?;
            self.out.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        let header = ustar(e)?;
        self.out.write_all(header.as_bytes())
    }

    /// Zero bytes completing the last block of `size` bytes of data.
    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0; BLOCK][rem..])?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        self.out.flush()
    }
}

/// The USTAR header of `e`; names and link targets longer than the fields are cut here and
/// carried in full by the preceding PAX record.
fn ustar(e: &Entry<'_>) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    let fields = h.as_old_mut();
    let (name, link) = (
        &e.name[..e.name.len().min(100)],
        &e.link[..e.link.len().min(100)],
    );
    fields.name[..name.len()].copy_from_slice(name);
    fields.linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(e.kind);
    h.set_mode(e.mode);
    h.set_uid(e.uid.into());
    h.set_gid(e.gid.into());
    h.set_size(e.size);
    // Times before 1970 cannot be written in USTAR; they only occur on broken clocks.
    h.set_mtime(e.mtime.max(0) as u64);
    if matches!(e.kind, EntryType::Char | EntryType::Block) {
        h.set_device_major(e.dev.0)?;
        h.set_device_minor(e.dev.1)?;
    }
    h.set_cksum();
    Ok(h)
}

/// Appends one `"<len> <key>=<value>\n"` record, where `<len>` counts the whole record,
/// itself included.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + digits(len) {
        len = body + digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

#[cfg(test)]
mod tests;
