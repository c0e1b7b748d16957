//! Joining the container's cgroup from inside the new process, without a grace period.
//!
//! Moving *another* process into a cgroup (`cgroup.procs` ← pid, what
//! [`CgroupManager::add_task`](crate::cgroups::CgroupManager::add_task) does) takes the kernel's
//! global `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace period: measured
//! here, 4–16 ms of the whole start-up under load, more than everything else together. A
//! single-threaded process moving *itself* by writing `0` to a v1 `tasks` file skips that lock
//! (`cgroup_procs_write_start`, "If we migrate a single thread… we can skip the global lock").
//!
//! So on cgroup v1 the parent opens the container's `tasks` file in every hierarchy after
//! [`CgroupManager::apply`](crate::cgroups::CgroupManager::apply) created them, and the child
//! writes `0` to each as its first step (permission is checked against the opener). cgroup v2
//! has no per-thread move across domains, so there the parent still calls `add_task`.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// The container's `tasks` files, one per v1 hierarchy that has the container's cgroup.
#[derive(Debug, Default)]
pub(crate) struct TaskFiles {
    files: Vec<(PathBuf, OwnedFd)>,
}

impl TaskFiles {
    /// Opens `<root>/<hierarchy>/<path>/tasks` for every v1 hierarchy under `cgroup_root`
    /// where the container's cgroup exists (symlinked aliases such as `cpuacct -> cpu,cpuacct`
    /// are skipped, the real directory is visited).
    pub(crate) fn open(cgroup_root: &Path, cgroup_path: &str) -> io::Result<TaskFiles> {
        let relative = cgroup_path.trim_matches('/');
        let mut files = Vec::new();
        for entry in std::fs::read_dir(cgroup_root)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let path = entry.path().join(relative).join("tasks");
            match rustix::fs::open(&path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => files.push((path, fd)),
                // A hierarchy without the container's cgroup (name=systemd, the empty unified
                // mount of a hybrid host, a controller the manager does not use).
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(TaskFiles { files })
    }

    /// Whether there is nothing to join (cgroup v2, or no hierarchy found).
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// In the child: moves the calling (single-threaded) process into every hierarchy.
    pub(crate) fn join_self(&self) -> Result<(), JoinError> {
        for (path, fd) in &self.files {
            rustix::io::write(fd, b"0").map_err(|e| JoinError {
                path: path.clone(),
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

/// A failed self-join.
#[derive(Debug, thiserror::Error)]
#[error("failed to join the container's cgroup through {}", path.display())]
pub(crate) struct JoinError {
    path: PathBuf,
    #[source]
    source: io::Error,
}
