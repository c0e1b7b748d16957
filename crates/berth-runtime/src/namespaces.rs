//! Linux namespaces: which ones a container gets, which existing ones it joins, and the order.
//!
//! New namespaces are created by the single `clone(2)` that makes the init process, except the
//! cgroup namespace: it is unshared by the child only after the parent has moved it into its
//! cgroup, so that the namespace's root *is* the container's cgroup (as runc does).
//! Existing namespaces (`path` in the spec, or a running container's for exec) are opened by
//! the parent — so a bad path fails before any process exists — and joined by the child with
//! `setns(2)` in [`JOIN_ORDER`]. The pid namespace is the exception: `setns` on a pid namespace
//! only affects the caller's future children, so the parent enters it around the clone
//! ([`PidNamespaceEntry`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

/// Errors about namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The spec asks for a combination the runtime does not implement.
    #[error("unsupported namespace configuration: {0}")]
    Unsupported(String),
    /// Opening a namespace file failed.
    #[error("failed to open the {typ} namespace {}", path.display())]
    Open {
        /// Namespace type.
        typ: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `setns(2)` failed.
    #[error("failed to join the {typ} namespace")]
    Join {
        /// Namespace type.
        typ: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// `unshare(2)` of the cgroup namespace failed.
    #[error("failed to create the cgroup namespace")]
    UnshareCgroup(#[source] io::Error),
    /// Writing a user namespace id map failed.
    #[error("failed to write {}", path.display())]
    IdMap {
        /// `/proc/<pid>/uid_map` or `gid_map`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The order in which existing namespaces are joined: the user namespace first (it grants the
/// capabilities to join the others), the mount namespace late (it changes the root and working
/// directory), cgroup last. Pid is handled by the parent.
pub(crate) const JOIN_ORDER: [LinuxNamespaceType; 7] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
];

/// The namespace set-up of one process, decided before the clone.
#[derive(Debug)]
pub(crate) struct NamespacePlan {
    /// `CLONE_NEW*` flags for the clone.
    pub(crate) clone_flags: CloneFlags,
    /// Unshare a cgroup namespace once in the cgroup.
    pub(crate) new_cgroup: bool,
    /// Existing namespaces the child joins, in [`JOIN_ORDER`].
    pub(crate) join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// Existing pid namespace, entered by the parent around the clone.
    pub(crate) join_pid: Option<OwnedFd>,
    /// `uid_map`/`gid_map` contents for a new user namespace.
    pub(crate) id_maps: Option<(String, String)>,
}

impl Default for NamespacePlan {
    fn default() -> Self {
        NamespacePlan {
            clone_flags: CloneFlags::empty(),
            new_cgroup: false,
            join: Vec::new(),
            join_pid: None,
            id_maps: None,
        }
    }
}

impl NamespacePlan {
    /// The plan for a container's init process from `linux.namespaces`.
    pub(crate) fn for_create(linux: &Linux) -> Result<Self, NamespaceError> {
        let mut plan = NamespacePlan::default();
        let namespaces = linux.namespaces().as_deref().unwrap_or_default();
        let mut joined: Vec<(LinuxNamespaceType, OwnedFd)> = Vec::new();
        for ns in namespaces {
            match (ns.typ(), ns.path()) {
                (LinuxNamespaceType::Time, _) => {
                    return Err(NamespaceError::Unsupported(
                        "time namespaces are not supported".into(),
                    ))
                }
                (LinuxNamespaceType::User, Some(_)) => {
                    return Err(NamespaceError::Unsupported(
                        "joining an existing user namespace is not supported".into(),
                    ))
                }
                (LinuxNamespaceType::Mount, Some(_)) => {
                    return Err(NamespaceError::Unsupported(
                        "the container needs a new mount namespace, not a path".into(),
                    ))
                }
                (LinuxNamespaceType::Cgroup, None) => plan.new_cgroup = true,
                (typ, None) => plan.clone_flags |= clone_flag(typ),
                (LinuxNamespaceType::Pid, Some(path)) => {
                    plan.join_pid = Some(open_namespace(LinuxNamespaceType::Pid, path.clone())?)
                }
                (typ, Some(path)) => joined.push((typ, open_namespace(typ, path.clone())?)),
            }
        }
        if !plan.clone_flags.contains(CloneFlags::CLONE_NEWNS) {
            return Err(NamespaceError::Unsupported(
                "the container needs a mount namespace".into(),
            ));
        }
        if plan.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
            if !joined.is_empty() || plan.join_pid.is_some() {
                return Err(NamespaceError::Unsupported(
                    "joining existing namespaces together with a new user namespace".into(),
                ));
            }
            let uid_map = id_map(linux.uid_mappings().as_deref().unwrap_or_default());
            let gid_map = id_map(linux.gid_mappings().as_deref().unwrap_or_default());
            if uid_map.is_empty() || gid_map.is_empty() {
                return Err(NamespaceError::Unsupported(
                    "a new user namespace needs uidMappings and gidMappings".into(),
                ));
            }
            plan.id_maps = Some((uid_map, gid_map));
        }
        joined.sort_by_key(|(typ, _)| JOIN_ORDER.iter().position(|t| t == typ));
        plan.join = joined;
        Ok(plan)
    }

    /// The plan for a process exec'd into the running container whose init is `pid`: join
    /// every namespace of `pid` that differs from ours.
    pub(crate) fn for_exec(pid: i32) -> Result<Self, NamespaceError> {
        let mut plan = NamespacePlan::default();
        for typ in JOIN_ORDER {
            let name = proc_name(typ);
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
            let stat = |path: &PathBuf| {
                path.metadata().map_err(|source| NamespaceError::Open {
                    typ: name,
                    path: path.clone(),
                    source,
                })
            };
            let (their_meta, our_meta) = (stat(&theirs)?, stat(&ours)?);
            if their_meta.ino() == our_meta.ino() && their_meta.dev() == our_meta.dev() {
                continue;
            }
            let fd = open_namespace(typ, theirs)?;
            if typ == LinuxNamespaceType::Pid {
                plan.join_pid = Some(fd);
            } else {
                plan.join.push((typ, fd));
            }
        }
        Ok(plan)
    }

    /// In the child: joins the planned existing namespaces.
    pub(crate) fn join(&self) -> Result<(), NamespaceError> {
        for (typ, fd) in &self.join {
            nix::sched::setns(fd, clone_flag(*typ)).map_err(|e| NamespaceError::Join {
                typ: proc_name(*typ),
                source: e.into(),
            })?;
        }
        Ok(())
    }

    /// In the child, once it is in its cgroup: the new cgroup namespace.
    pub(crate) fn unshare_cgroup(&self) -> Result<(), NamespaceError> {
        if self.new_cgroup {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| NamespaceError::UnshareCgroup(e.into()))?;
        }
        Ok(())
    }

    /// In the parent, after the clone: writes the child's user namespace id maps.
    pub(crate) fn write_id_maps(&self, pid: i32) -> Result<(), NamespaceError> {
        if let Some((uid_map, gid_map)) = &self.id_maps {
            for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
                let path = PathBuf::from(format!("/proc/{pid}/{file}"));
                std::fs::write(&path, map)
                    .map_err(|source| NamespaceError::IdMap { path, source })?;
            }
        }
        Ok(())
    }

    /// Whether the process gets a new user namespace.
    pub(crate) fn new_user(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }
}

/// The parent inside an existing pid namespace for the duration of a clone: its next child is
/// created there. Dropping it restores the parent's own pid namespace for children.
pub(crate) struct PidNamespaceEntry {
    own: OwnedFd,
}

impl PidNamespaceEntry {
    /// Enters `target` for future children.
    pub(crate) fn enter(target: &OwnedFd) -> Result<Self, NamespaceError> {
        let own = open_namespace(LinuxNamespaceType::Pid, PathBuf::from("/proc/self/ns/pid"))?;
        nix::sched::setns(target, CloneFlags::CLONE_NEWPID).map_err(|e| NamespaceError::Join {
            typ: "pid",
            source: e.into(),
        })?;
        Ok(PidNamespaceEntry { own })
    }
}

impl Drop for PidNamespaceEntry {
    fn drop(&mut self) {
        // Going back to our own (active) pid namespace is always permitted.
        if let Err(err) = nix::sched::setns(self.own.as_fd(), CloneFlags::CLONE_NEWPID) {
            tracing::error!(?err, "failed to restore the pid namespace for children");
        }
    }
}

fn open_namespace(typ: LinuxNamespaceType, path: PathBuf) -> Result<OwnedFd, NamespaceError> {
    File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| NamespaceError::Open {
            typ: proc_name(typ),
            path,
            source,
        })
}

fn id_map(mappings: &[LinuxIdMapping]) -> String {
    mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The namespace's file name under `/proc/<pid>/ns/`.
pub(crate) fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn clone_flag(typ: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(typ as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(json: &str) -> Linux {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn docker_defaults_become_clone_flags() {
        let plan = NamespacePlan::for_create(&linux(
            r#"{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]}"#,
        ))
        .unwrap();
        let expected = CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNS;
        assert_eq!(plan.clone_flags, expected);
        assert!(plan.new_cgroup);
        assert!(plan.join.is_empty());
        assert!(!plan.new_user());
    }

    #[test]
    fn joins_paths_in_order() {
        let plan = NamespacePlan::for_create(&linux(
            r#"{"namespaces":[{"type":"mount"},{"type":"network","path":"/proc/self/ns/net"},{"type":"ipc","path":"/proc/self/ns/ipc"}]}"#,
        ))
        .unwrap();
        let order: Vec<_> = plan.join.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            order,
            [LinuxNamespaceType::Ipc, LinuxNamespaceType::Network]
        );
    }

    #[test]
    fn rejects_what_is_not_supported() {
        for json in [
            r#"{"namespaces":[{"type":"pid"}]}"#,
            r#"{"namespaces":[{"type":"mount"},{"type":"user"}]}"#,
            r#"{"namespaces":[{"type":"mount"},{"type":"time"}]}"#,
            r#"{"namespaces":[{"type":"mount"},{"type":"network","path":"/nonexistent"}]}"#,
        ] {
            assert!(NamespacePlan::for_create(&linux(json)).is_err(), "{json}");
        }
    }

    #[test]
    fn user_namespace_maps() {
        let plan = NamespacePlan::for_create(&linux(
            r#"{"namespaces":[{"type":"mount"},{"type":"user"}],
                "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}"#,
        ))
        .unwrap();
        assert!(plan.new_user());
        let (uid, gid) = plan.id_maps.unwrap();
        assert_eq!(uid, "0 100000 65536\n");
        assert_eq!(gid, uid);
    }
}
