//! The overlay root: when the spec has a mount of type `overlay` on `/`, the runtime mounts it
//! on `root.path` itself, *inside the container's new mount namespace*, before anything else.
//!
//! The engine relies on this: the overlay then exists only in the container's namespace and
//! disappears with it, so a crashed monitor or a killed container can never leave an overlay
//! mounted on the host.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::mount::{mount, MountPlan};

/// The kernel copies at most one page of mount data; longer option strings fail with EINVAL.
const MAX_MOUNT_DATA: usize = 4095;

/// Mounts the overlay described by `entry` on `root`.
///
/// When the options are longer than a page (many layers), the common directory of the layer
/// paths is made the working directory and the paths are given relative to it, as Docker's
/// overlay2 driver does with its short `l/` links.
pub(crate) fn mount_root(entry: &MountPlan, root: &Path) -> io::Result<()> {
    let root = root.to_str().ok_or(io::ErrorKind::InvalidInput)?;
    let mut data = entry.data.clone();
    if data.len() > MAX_MOUNT_DATA {
        if let Some((base, shortened)) = shorten(&data) {
            std::env::set_current_dir(&base)?;
            data = shortened;
        }
    }
    let source = entry.source.as_deref().unwrap_or(Path::new("overlay"));
    let flags = entry.flags & !MsFlags::MS_RDONLY;
    match mount(Some(source), root, Some("overlay"), flags, Some(&data)) {
        // `volatile` (Linux 5.10) only spares the sync at unmount: a kernel that does not know
        // it gets the same overlay without it.
        Err(err) if err.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => {
            match without_option(&data, "volatile") {
                Some(plain) => mount(Some(source), root, Some("overlay"), flags, Some(&plain)),
                None => Err(err),
            }
        }
        other => other,
    }
}

/// The mount options without `name`, or `None` when they do not have it.
fn without_option(data: &str, name: &str) -> Option<String> {
    let options: Vec<&str> = data.split(',').collect();
    if !options.contains(&name) {
        return None;
    }
    let kept: Vec<&str> = options.into_iter().filter(|o| *o != name).collect();
    Some(kept.join(","))
}

/// Rewrites the `lowerdir`, `upperdir` and `workdir` paths of overlay options relative to their
/// longest common directory; returns that directory and the new options, or `None` when there
/// is no common directory to strip.
pub(crate) fn shorten(data: &str) -> Option<(PathBuf, String)> {
    let paths: Vec<&str> = data
        .split(',')
        .filter_map(|option| option.split_once('='))
        .filter(|(key, _)| matches!(*key, "lowerdir" | "upperdir" | "workdir"))
        .flat_map(|(_, value)| value.split(':'))
        .collect();
    let first = Path::new(paths.first()?);
    let mut base = first.parent()?.to_path_buf();
    while !paths.iter().all(|p| Path::new(p).starts_with(&base)) {
        if !base.pop() {
            return None;
        }
    }
    // Stripping `/` would gain nothing.
    base.parent()?;
    let strip = |p: &str| -> String {
        Path::new(p)
            .strip_prefix(&base)
            .map(|rel| rel.to_string_lossy().into_owned())
            .unwrap_or_else(|_| p.to_string())
    };
    let options: Vec<String> = data
        .split(',')
        .map(|option| match option.split_once('=') {
            Some((key @ ("lowerdir" | "upperdir" | "workdir"), value)) => {
                let value: Vec<String> = value.split(':').map(strip).collect();
                format!("{key}={}", value.join(":"))
            }
            _ => option.to_string(),
        })
        .collect();
    Some((base, options.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_to_the_common_directory() {
        let (base, data) = shorten(
            "lowerdir=/var/lib/berth/layers/a/diff:/var/lib/berth/layers/b/diff,\
             upperdir=/var/lib/berth/containers/c/upper,workdir=/var/lib/berth/containers/c/work,\
             index=off",
        )
        .unwrap();
        assert_eq!(base, PathBuf::from("/var/lib/berth"));
        assert_eq!(
            data,
            "lowerdir=layers/a/diff:layers/b/diff,upperdir=containers/c/upper,\
             workdir=containers/c/work,index=off"
        );
    }

    #[test]
    fn nothing_to_strip() {
        assert_eq!(shorten("lowerdir=/a:/b,upperdir=/c,workdir=/d"), None);
        assert_eq!(shorten("index=off"), None);
    }

    #[test]
    fn volatile_can_be_dropped_from_the_options() {
        assert_eq!(
            without_option("lowerdir=/l,upperdir=/u,volatile", "volatile").as_deref(),
            Some("lowerdir=/l,upperdir=/u")
        );
        assert_eq!(without_option("lowerdir=/volatile", "volatile"), None);
    }
}
