//! Layer tars: the unit in which image filesystems are stored, shipped and diffed.
//!
//! A layer is a tar stream of the files one build step (or one `commit`) added, changed or
//! deleted. Deletions are recorded as OCI *whiteouts*: an empty file `.wh.NAME` deletes `NAME`
//! from the layers below, and `.wh..wh..opq` in a directory hides everything the lower layers had
//! in it (<https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts>).
//!
//! berth keeps each unpacked layer in its own directory and stacks them with overlayfs, which has
//! its own whiteout form: a character device 0:0 named `NAME`, and the xattr
//! `trusted.overlay.opaque=y` on an opaque directory. This module converts between the two:
//! - [`unpack`]: tar → directory usable as an overlay lower dir. Tars are untrusted input, so
//!   every path is resolved without ever leaving the destination (see `root.rs`);
//!   [`unpack_with_diff_id`] also hashes the stream, on a second core.
//! - [`pack_diff`]: overlay upper dir → layer tar (commit, build).
//! - [`pack_dir`]: any directory → plain tar (export, build contexts).
//! - [`changes`]: overlay upper dir → `docker diff` style list.
//! - [`decompressed`]: transparent gzip/zstd decoding of a layer blob.

mod changes;
mod compression;
mod hashing;
mod pack;
mod path;
mod root;
mod sys;
#[cfg(test)]
mod testutil;
mod unpack;
mod walk;
mod whiteout;

use std::io;
use std::path::PathBuf;

pub use changes::{changes, Change, ChangeKind};
pub use compression::{decompressed, Compression};
pub use hashing::TeeHasher;
pub use pack::{pack_diff, pack_diff_with, pack_dir, PackOptions, Select};
pub use root::SymlinkScope;
pub use sys::start_writeback;
pub use unpack::{unpack, unpack_with_diff_id, UnpackOptions, UnpackStats};
pub use whiteout::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// What went wrong while reading, writing or comparing a layer. Entry names are shown as they
/// appear in the tar; filesystem paths are shown in full.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("failed to read the layer tar stream")]
    ReadStream(#[source] io::Error),
    #[error("failed to write the layer tar stream")]
    WriteStream(#[source] io::Error),
    #[error("layer entry {entry:?} points outside the layer root")]
    PathEscape { entry: String },
    #[error(
        "layer entry {entry:?}: parent directory {parent:?} resolves outside the layer root \
         (through a symlink)"
    )]
    SymlinkEscape { entry: String, parent: String },
    #[error("layer entry {entry:?}: hardlink target {target:?} {problem}")]
    BadHardlink {
        entry: String,
        target: String,
        problem: &'static str,
    },
    #[error("layer entry {entry:?}: {problem}")]
    InvalidEntry { entry: String, problem: String },
    #[error("failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: overlay {feature} is in use in this upper dir; berth mounts overlays with \
         redirect_dir=off,metacopy=off and cannot turn such a dir into a layer"
    )]
    UnsupportedOverlayFeature {
        path: PathBuf,
        feature: &'static str,
    },
}

pub type Result<T, E = LayerError> = std::result::Result<T, E>;
