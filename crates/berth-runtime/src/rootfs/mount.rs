//! The spec's `mounts`: option parsing (`ro`, `nosuid`, `rbind`, `rprivate`, `mode=755`…) into
//! `mount(2)` flags and data, and mounting each entry inside the container's root.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::resolve::{fd_path, open_dir_in_root, open_in_root, Create};
use super::RootfsError;
use crate::sys;

/// How an entry is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A bind mount of a host path (`bind`/`rbind` option or `type: bind`).
    Bind {
        /// `rbind`: submounts come along.
        recursive: bool,
    },
    /// `type: cgroup`: the container's own cgroup, v1 or v2 (see [`CgroupMounts`]).
    Cgroup,
    /// Any other file system, by type (`proc`, `tmpfs`, `devpts`, `overlay`…).
    Filesystem(String),
}

/// One spec mount, parsed before the clone so the child only issues system calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountPlan {
    pub(crate) kind: MountKind,
    /// Host path for binds (made absolute against the bundle), device name otherwise.
    pub(crate) source: Option<PathBuf>,
    /// Destination inside the container, as written in the spec.
    pub(crate) destination: PathBuf,
    /// `mount(2)` flags other than bind and propagation.
    pub(crate) flags: MsFlags,
    /// Propagation to apply after mounting (`rprivate`, `slave`…), empty for none.
    pub(crate) propagation: MsFlags,
    /// File-system specific options, comma-joined (`mode=755,size=65536k`).
    pub(crate) data: String,
}

impl MountPlan {
    /// Parses a spec entry; relative bind sources are taken relative to the bundle.
    pub(crate) fn from_spec(mount: &Mount, bundle: &Path) -> Result<Self, RootfsError> {
        let destination = mount.destination().clone();
        if !destination.is_absolute() {
            return Err(RootfsError::InvalidMount {
                destination,
                reason: "the destination is not an absolute path".into(),
            });
        }
        let options = parse_options(mount.options().as_deref().unwrap_or_default());
        let typ = mount.typ().as_deref().unwrap_or("");
        let kind = if options.bind.is_some() || typ == "bind" {
            MountKind::Bind {
                recursive: options.bind.unwrap_or(false),
            }
        } else if typ == "cgroup" || typ == "cgroup2" {
            MountKind::Cgroup
        } else if typ.is_empty() {
            return Err(RootfsError::InvalidMount {
                destination,
                reason: "no type given and not a bind mount".into(),
            });
        } else {
            MountKind::Filesystem(typ.to_string())
        };
        let source = match (&kind, mount.source()) {
            (MountKind::Bind { .. }, None) => {
                return Err(RootfsError::InvalidMount {
                    destination,
                    reason: "a bind mount needs a source".into(),
                })
            }
            (MountKind::Bind { .. }, Some(source)) => Some(bundle.join(source)),
            (_, source) => source.clone(),
        };
        Ok(MountPlan {
            kind,
            source,
            destination,
            flags: options.flags,
            propagation: options.propagation,
            data: options.data,
        })
    }

    /// True for the entry the engine uses to describe an overlay root (`/` of type overlay).
    pub(crate) fn is_overlay_root(&self) -> bool {
        self.destination == Path::new("/")
            && self.kind == MountKind::Filesystem("overlay".to_string())
    }
}

/// Mount options split into flags, propagation and data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MountOptions {
    pub(crate) flags: MsFlags,
    pub(crate) propagation: MsFlags,
    /// `Some(recursive)` for `bind`/`rbind`.
    pub(crate) bind: Option<bool>,
    pub(crate) data: String,
}

/// Parses mount options the way mount(8) and runc do: flags apply in order (`ro` then `rw`
/// ends read-write), anything unknown is passed to the file system as data.
pub(crate) fn parse_options(options: &[String]) -> MountOptions {
    let mut parsed = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: None,
        data: String::new(),
    };
    let mut data: Vec<&str> = Vec::new();
    for option in options {
        match option.as_str() {
            "defaults" => {}
            "bind" => parsed.bind = Some(parsed.bind.unwrap_or(false)),
            "rbind" => parsed.bind = Some(true),
            other => {
                if let Some((flag, set)) = flag_option(other) {
                    parsed.flags.set(flag, set);
                } else if let Some(propagation) = propagation_flags(other) {
                    parsed.propagation = propagation;
                } else {
                    data.push(other);
                }
            }
        }
    }
    parsed.data = data.join(",");
    parsed
}

/// The options that set a per-mount flag, beside the ones that clear it (`dirsync` has none).
const FLAG_OPTIONS: [(MsFlags, &str, Option<&str>); 13] = [
    (MsFlags::MS_RDONLY, "ro", Some("rw")),
    (MsFlags::MS_NOSUID, "nosuid", Some("suid")),
    (MsFlags::MS_NODEV, "nodev", Some("dev")),
    (MsFlags::MS_NOEXEC, "noexec", Some("exec")),
    (MsFlags::MS_SYNCHRONOUS, "sync", Some("async")),
    (MsFlags::MS_DIRSYNC, "dirsync", None),
    (MsFlags::MS_MANDLOCK, "mand", Some("nomand")),
    (MsFlags::MS_NOATIME, "noatime", Some("atime")),
    (MsFlags::MS_NODIRATIME, "nodiratime", Some("diratime")),
    (MsFlags::MS_RELATIME, "relatime", Some("norelatime")),
    (
        MsFlags::MS_STRICTATIME,
        "strictatime",
        Some("nostrictatime"),
    ),
    (MsFlags::MS_LAZYTIME, "lazytime", Some("nolazytime")),
    (MsFlags::MS_SILENT, "silent", Some("loud")),
];

/// The flag an option names, and whether the option sets it (`ro`) or clears it (`rw`).
fn flag_option(name: &str) -> Option<(MsFlags, bool)> {
    FLAG_OPTIONS.iter().find_map(|&(flag, sets, clears)| {
        if name == sets {
            Some((flag, true))
        } else if Some(name) == clears {
            Some((flag, false))
        } else {
            None
        }
    })
}

/// `private`, `rslave`… as `mount(2)` propagation flags.
pub(crate) fn propagation_flags(name: &str) -> Option<MsFlags> {
    let (recursive, base) = match name.strip_prefix('r') {
        Some(base @ ("private" | "shared" | "slave" | "unbindable")) => (true, base),
        _ => (false, name),
    };
    let flag = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if recursive {
        flag | MsFlags::MS_REC
    } else {
        flag
    })
}

/// What the container's `/sys/fs/cgroup` shows, decided by the parent from the host.
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupMounts {
    /// The host's cgroup mount root (normally `/sys/fs/cgroup`).
    pub(crate) root: PathBuf,
    /// The container's cgroup path below each hierarchy (`berth/<id>`, no leading slash).
    pub(crate) path: PathBuf,
    /// True when the host root is a pure cgroup v2 mount.
    pub(crate) unified: bool,
    /// True when the container has its own cgroup namespace.
    pub(crate) namespaced: bool,
    /// v1 hierarchies under the root: `(name, symlink target)`, e.g. `("cpu", None)`,
    /// `("cpuacct", Some("cpu,cpuacct"))`.
    pub(crate) hierarchies: Vec<(String, Option<PathBuf>)>,
}

/// `mount(2)` returning `io::Error`.
pub(crate) fn mount(
    source: Option<&Path>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(io::Error::from)
}

/// For `map_err`: `step` of mounting at `destination` failed.
fn mount_failed(destination: &Path, step: &'static str) -> impl FnOnce(io::Error) -> RootfsError {
    let destination = destination.to_path_buf();
    move |source| RootfsError::Mount {
        step,
        destination,
        source,
    }
}

/// Mounts one entry inside `root` (the rootfs directory, before `pivot_root`).
pub(crate) fn mount_entry(
    root: &OwnedFd,
    entry: &MountPlan,
    cgroups: &CgroupMounts,
) -> Result<(), RootfsError> {
    let failed = |step| mount_failed(&entry.destination, step);
    match &entry.kind {
        MountKind::Bind { recursive } => {
            let source = entry.source.as_deref().unwrap_or(Path::new(""));
            let is_dir = std::fs::metadata(source)
                .map_err(failed("look up the bind source"))?
                .is_dir();
            let create = if is_dir {
                Create::Directory
            } else {
                Create::File
            };
            let target = open_in_root(root, &entry.destination, create)
                .map_err(failed("create the mount point"))?;
            let rec = if *recursive {
                MsFlags::MS_REC
            } else {
                MsFlags::empty()
            };
            mount(
                Some(source),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND | rec,
                None,
            )
            .map_err(failed("bind mount"))?;
            if !entry.flags.is_empty() {
                let mounted = open_in_root(root, &entry.destination, Create::Nothing)
                    .map_err(failed("reopen the bind mount"))?;
                remount_bind(&fd_path(&mounted), entry.flags | rec)
                    .map_err(failed("remount the bind mount with its options"))?;
            }
        }
        MountKind::Cgroup => mount_cgroup(root, entry, cgroups)?,
        MountKind::Filesystem(fstype) => {
            let target = open_in_root(root, &entry.destination, Create::Directory)
                .map_err(failed("create the mount point"))?;
            let data = (!entry.data.is_empty()).then_some(entry.data.as_str());
            mount(
                entry.source.as_deref(),
                &fd_path(&target),
                Some(fstype),
                entry.flags,
                data,
            )
            .map_err(failed("mount"))?;
        }
    }
    if !entry.propagation.is_empty() {
        let mounted = open_in_root(root, &entry.destination, Create::Nothing)
            .map_err(failed("reopen the mount"))?;
        mount(None, &fd_path(&mounted), None, entry.propagation, None)
            .map_err(failed("set the mount propagation"))?;
    }
    Ok(())
}

/// Remounts a bind mount with `flags`, keeping the flags the kernel locked on it (a bind
/// mount in a user namespace cannot drop `nosuid`/`nodev`/… it inherited).
pub(crate) fn remount_bind(target: &str, flags: MsFlags) -> io::Result<()> {
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    match mount(None, target, None, remount, None) {
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::PERM) => {
            let locked = locked_flags(target)?;
            mount(None, target, None, remount | locked, None)
        }
        result => result,
    }
}

/// The per-mount flags currently set on `target`, as `mount(2)` flags.
fn locked_flags(target: &str) -> io::Result<MsFlags> {
    use rustix::fs::StatVfsMountFlags as St;
    let stat = rustix::fs::statvfs(target)?;
    let pairs = [
        (St::RDONLY, MsFlags::MS_RDONLY),
        (St::NOSUID, MsFlags::MS_NOSUID),
        (St::NODEV, MsFlags::MS_NODEV),
        (St::NOEXEC, MsFlags::MS_NOEXEC),
        (St::NOATIME, MsFlags::MS_NOATIME),
        (St::NODIRATIME, MsFlags::MS_NODIRATIME),
        (St::RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| stat.f_flag.contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

/// The container's view of its cgroup at the mount's destination (normally `/sys/fs/cgroup`).
///
/// cgroup v2 with a cgroup namespace: a fresh `cgroup2` mount, whose root is the namespace's
/// root. Otherwise each hierarchy shows the container's own cgroup directory, bind-mounted from
/// the host (v1: one bind per hierarchy on a tmpfs, like runc and Docker).
fn mount_cgroup(
    root: &OwnedFd,
    entry: &MountPlan,
    cgroups: &CgroupMounts,
) -> Result<(), RootfsError> {
    let failed = |step| mount_failed(&entry.destination, step);
    let target = open_in_root(root, &entry.destination, Create::Directory)
        .map_err(failed("create the cgroup mount point"))?;
    if cgroups.unified {
        if cgroups.namespaced {
            mount(
                Some(Path::new("cgroup2")),
                &fd_path(&target),
                Some("cgroup2"),
                entry.flags,
                None,
            )
            .map_err(failed("mount cgroup2"))?;
        } else {
            let source = cgroups.root.join(&cgroups.path);
            mount(
                Some(&source),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(failed("bind mount the container's cgroup"))?;
            let mounted = open_in_root(root, &entry.destination, Create::Nothing)
                .map_err(failed("reopen the cgroup mount"))?;
            remount_bind(&fd_path(&mounted), entry.flags)
                .map_err(failed("remount the cgroup mount"))?;
        }
        return Ok(());
    }

    // v1: a tmpfs with one bind mount per hierarchy; the mount options (read-only…) are set on
    // all of them at once at the end.
    mount(
        Some(Path::new("tmpfs")),
        &fd_path(&target),
        Some("tmpfs"),
        entry.flags & !MsFlags::MS_RDONLY,
        Some("mode=755"),
    )
    .map_err(failed("mount the cgroup tmpfs"))?;
    let dir =
        open_dir_in_root(root, &entry.destination).map_err(failed("open the cgroup tmpfs"))?;
    let dir_path = fd_path(&dir);
    for (name, link) in &cgroups.hierarchies {
        if let Some(link) = link {
            rustix::fs::symlinkat(link, &dir, name.as_str())
                .map_err(|e| failed("link a cgroup hierarchy")(e.into()))?;
            continue;
        }
        rustix::fs::mkdirat(&dir, name.as_str(), rustix::fs::Mode::from_raw_mode(0o755))
            .map_err(|e| failed("create a cgroup hierarchy directory")(e.into()))?;
        // Our own fresh tmpfs: nothing can swap the directory under the path.
        let point = format!("{dir_path}/{name}");
        let source = cgroups.root.join(name).join(&cgroups.path);
        match mount(Some(&source), &point, None, MsFlags::MS_BIND, None) {
            // A hierarchy the cgroup manager does not use for this container (name=systemd,
            // an empty unified mount): its directory stays empty, as with runc.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            result => result.map_err(failed("bind mount a cgroup hierarchy"))?,
        }
    }
    drop(dir);
    let attributes = mount_attributes(entry.flags);
    if attributes != 0 {
        let mounted = open_in_root(root, &entry.destination, Create::Nothing)
            .map_err(failed("reopen the cgroup tmpfs"))?;
        sys::set_mount_attributes_recursive(&fd_path(&mounted), attributes)
            .map_err(failed("apply the mount options to the cgroup mounts"))?;
    }
    Ok(())
}

/// The `mount_setattr(2)` equivalent of the per-mount `mount(2)` flags.
fn mount_attributes(flags: MsFlags) -> u64 {
    use sys::mount_attr;
    [
        (MsFlags::MS_RDONLY, mount_attr::RDONLY),
        (MsFlags::MS_NOSUID, mount_attr::NOSUID),
        (MsFlags::MS_NODEV, mount_attr::NODEV),
        (MsFlags::MS_NOEXEC, mount_attr::NOEXEC),
        (MsFlags::MS_NODIRATIME, mount_attr::NODIRATIME),
    ]
    .iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .fold(0, |acc, (_, attr)| acc | attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_apply_in_order_and_unknowns_become_data() {
        let parsed = parse_options(&opts(&[
            "nosuid",
            "ro",
            "strictatime",
            "mode=755",
            "rw",
            "size=65536k",
        ]));
        assert_eq!(parsed.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(parsed.data, "mode=755,size=65536k");
        assert_eq!(parsed.bind, None);
        assert!(parsed.propagation.is_empty());
    }

    #[test]
    fn every_flag_option_sets_or_clears_its_flag() {
        for (flag, sets, clears) in FLAG_OPTIONS {
            assert_eq!(parse_options(&opts(&[sets])).flags, flag, "{sets}");
            if let Some(clears) = clears {
                assert!(
                    parse_options(&opts(&[sets, clears])).flags.is_empty(),
                    "{clears}"
                );
            }
        }
        let parsed = parse_options(&opts(&["defaults", "dirsync", "nolazytime"]));
        assert_eq!(parsed.flags, MsFlags::MS_DIRSYNC);
        assert_eq!(parsed.data, "");
    }

    #[test]
    fn bind_and_propagation() {
        let parsed = parse_options(&opts(&["rbind", "ro", "rprivate"]));
        assert_eq!(parsed.bind, Some(true));
        assert_eq!(parsed.flags, MsFlags::MS_RDONLY);
        assert_eq!(parsed.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(parse_options(&opts(&["bind"])).bind, Some(false));
        assert_eq!(propagation_flags("slave"), Some(MsFlags::MS_SLAVE));
        assert_eq!(propagation_flags("rw"), None);
    }

    #[test]
    fn plans_from_spec_entries() {
        let bundle = Path::new("/bundle");
        let bind: Mount = serde_json::from_str(
            r#"{"destination":"/data","type":"bind","source":"vol","options":["rbind","ro"]}"#,
        )
        .unwrap();
        let plan = MountPlan::from_spec(&bind, bundle).unwrap();
        assert_eq!(plan.kind, MountKind::Bind { recursive: true });
        assert_eq!(plan.source.as_deref(), Some(Path::new("/bundle/vol")));

        let overlay: Mount = serde_json::from_str(
            r#"{"destination":"/","type":"overlay","source":"overlay","options":["lowerdir=/l","upperdir=/u","workdir=/w"]}"#,
        )
        .unwrap();
        let plan = MountPlan::from_spec(&overlay, bundle).unwrap();
        assert!(plan.is_overlay_root());
        assert_eq!(plan.data, "lowerdir=/l,upperdir=/u,workdir=/w");

        let relative: Mount =
            serde_json::from_str(r#"{"destination":"proc","type":"proc"}"#).unwrap();
        assert!(MountPlan::from_spec(&relative, bundle).is_err());
    }
}
