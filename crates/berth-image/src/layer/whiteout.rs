//! Whiteouts: how a layer records deletions, in OCI tar form and in overlayfs form.
//!
//! OCI (<https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts>):
//! `.wh.NAME` deletes `NAME`; `.wh..wh..opq` makes its directory opaque. Any other
//! `.wh..wh.` name is AUFS bookkeeping (hardlink dirs, `.wh..wh.aufs`) and carries no files.
//! overlayfs (Documentation/filesystems/overlayfs.rst): a character device 0:0 deletes the name,
//! the xattr `trusted.overlay.opaque=y` (or `user.overlay.opaque` in user namespaces) makes a
//! directory opaque. Other `*.overlay.*` xattrs are overlay's private state and never travel in
//! layers.

use rustix::fs::{FileType, Stat};

/// Prefix of an OCI whiteout entry.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI entry that marks its directory opaque.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata entries, skipped on unpack.
pub(crate) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

/// The xattr overlayfs reads to decide that a directory hides the lower layers' contents.
pub(crate) const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Whether `st` is an overlayfs whiteout (character device 0:0).
pub(crate) fn is_overlay_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

/// Whether an xattr name belongs to overlayfs itself (origin, impure, redirect, opaque, …).
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Whether an xattr (name, value) marks its directory opaque.
pub(crate) fn is_opaque_xattr(name: &[u8], value: &[u8]) -> bool {
    (name == OVERLAY_OPAQUE_XATTR.as_bytes() || name == USER_OVERLAY_OPAQUE_XATTR.as_bytes())
        && value == b"y"
}

/// Whether an overlay xattr means this upper dir cannot be read as a plain diff: with
/// `redirect_dir` a renamed directory's contents stay in the lower layer, with `metacopy` a
/// file's data does.
pub(crate) fn unsupported_overlay_feature(name: &[u8]) -> Option<&'static str> {
    let suffix = name
        .strip_prefix(b"trusted.overlay.")
        .or_else(|| name.strip_prefix(b"user.overlay."))?;
    match suffix {
        b"redirect" => Some("redirect_dir"),
        b"metacopy" => Some("metacopy"),
        _ => None,
    }
}
