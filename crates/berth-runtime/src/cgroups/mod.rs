//! Cgroups: a container's resource limits, freezer, OOM reporting and teardown.
//!
//! [`CgroupManager::new`] looks at the cgroup root once: if it is a cgroup2 filesystem the
//! host is *unified* (v2) and the container gets one directory; otherwise it is v1 (legacy
//! or hybrid, where an empty cgroup2 sits at `unified/` and is ignored) and the container
//! gets a directory in each controller hierarchy it uses. The rest of the API is the same
//! for both:
//!
//! 1. [`apply`](CgroupManager::apply) creates the directories and writes the OCI
//!    `linux.resources` limits;
//!    [`update`](CgroupManager::update) writes new limits to a running container's cgroup;
//! 2. [`add_task`](CgroupManager::add_task) moves the container's init into them, before it
//!    execs;
//! 3. [`freeze`](CgroupManager::freeze)/[`thaw`](CgroupManager::thaw) implement
//!    `pause`/`unpause`; [`pids`](CgroupManager::pids), [`stats`](CgroupManager::stats) and
//!    [`oom_killed`](CgroupManager::oom_killed) answer `top`, `stats` and `inspect`;
//! 4. [`destroy`](CgroupManager::destroy) kills whatever is left and removes the directories.
//!
//! Values follow runc where the kernel interfaces differ: cpu shares become a v2 weight with
//! `1 + ((shares - 2) * 9999) / 262142`, the OCI swap limit (memory + swap) becomes v2's
//! `memory.swap.max = swap - limit`, and a pids limit of 0 or -1 means `max`.

mod fs;
mod v1;
mod v2;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

/// Errors from cgroup operations; each names the step and the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup root could not be inspected.
    #[error("failed to inspect the cgroup root {path}")]
    Detect {
        /// The root given to [`CgroupManager::new`].
        path: PathBuf,
        /// The statfs error.
        #[source]
        err: io::Error,
    },
    /// The OCI `cgroupsPath` is unusable.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A requested limit cannot be expressed.
    #[error("invalid cgroup resources: {reason}")]
    InvalidResources {
        /// What is wrong.
        reason: String,
    },
    /// The cgroup hierarchy that a limit needs is not mounted.
    #[error(
        "cgroup controller {controller} is not available under {root} (needed for {needed_for})"
    )]
    MissingController {
        /// The controller, e.g. `cpuset`.
        controller: &'static str,
        /// The cgroup root.
        root: PathBuf,
        /// The resource that needs it.
        needed_for: &'static str,
    },
    /// The cgroup to update does not exist.
    #[error("cgroup {path} does not exist")]
    NotFound {
        /// The directory that should be there.
        path: PathBuf,
    },
    /// A cgroup directory could not be created.
    #[error("failed to create cgroup directory {path}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        err: io::Error,
    },
    /// An interface file could not be written.
    #[error("failed to write {data:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was being written.
        data: String,
        /// The cause.
        #[source]
        err: io::Error,
    },
    /// An interface file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        err: io::Error,
    },
    /// An interface file held something unexpected.
    #[error("unexpected content in {path}: {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// The freezer did not reach the requested state in time.
    #[error("cgroup {path} did not become {state} within {waited:?}")]
    FreezeTimeout {
        /// The cgroup directory.
        path: PathBuf,
        /// `frozen` or `thawed`.
        state: &'static str,
        /// How long berth waited.
        waited: Duration,
    },
    /// A remaining task could not be killed.
    #[error("failed to kill pid {pid} in cgroup {path}")]
    Kill {
        /// The task.
        pid: i32,
        /// The cgroup directory.
        path: PathBuf,
        /// The cause.
        #[source]
        err: nix::errno::Errno,
    },
    /// Tasks were still running after they were killed.
    #[error("cgroup {path} still has tasks {pids:?} after {waited:?}")]
    Busy {
        /// The cgroup directory.
        path: PathBuf,
        /// The remaining tasks.
        pids: Vec<i32>,
        /// How long berth waited.
        waited: Duration,
    },
    /// A cgroup directory could not be removed.
    #[error("failed to remove cgroup directory {path}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        err: io::Error,
    },
    /// Teardown went on past failures; these are all of them.
    #[error("failed to destroy cgroup {path}: {}", ErrorList(.errors))]
    Destroy {
        /// The OCI cgroups path.
        path: String,
        /// Every failure, in order.
        errors: Vec<CgroupError>,
    },
}

/// Displays a list of errors with their causes, `; `-separated.
struct ErrorList<'a>(&'a [CgroupError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{err}")?;
            let mut source = std::error::Error::source(err);
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

/// Convenience alias for this module.
pub type Result<T> = std::result::Result<T, CgroupError>;

/// Resource usage of a container, for `berth stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Memory charged to the cgroup, page cache included (v1 `memory.usage_in_bytes`,
    /// v2 `memory.current`).
    pub memory_usage: u64,
    /// The memory limit; `u64::MAX` when unlimited.
    pub memory_limit: u64,
    /// CPU time used by all tasks, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks (threads included).
    pub pids_current: u64,
    /// Inactive file cache within `memory_usage`; `docker stats` shows
    /// `memory_usage - memory_inactive_file`.
    pub memory_inactive_file: u64,
}

/// How long `freeze` waits for every task to stop.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `destroy` waits for killed tasks to leave the cgroup.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// A container's cgroup, on the v1 or v2 hierarchy chosen once in [`CgroupManager::new`].
#[derive(Debug)]
pub struct CgroupManager {
    path: String,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    V1(v1::V1),
    V2(v2::V2),
}

impl CgroupManager {
    /// Prepares to manage the cgroup at `path` (an OCI `cgroupsPath` such as
    /// `/berth/<id>`, taken relative to `cgroup_root` either way) under `cgroup_root`
    /// (normally `/sys/fs/cgroup`). Creates nothing.
    pub fn new(cgroup_root: &Path, path: &str) -> Result<Self> {
        let relative = validate_path(path)?;
        let stat = nix::sys::statfs::statfs(cgroup_root).map_err(|errno| CgroupError::Detect {
            path: cgroup_root.to_owned(),
            err: io::Error::from(errno),
        })?;
        let backend = if stat.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC {
            Backend::V2(v2::V2::new(cgroup_root, relative))
        } else {
            Backend::V1(v1::V1::new(cgroup_root, relative)?)
        };
        tracing::debug!(path, root = %cgroup_root.display(), v2 = matches!(backend, Backend::V2(_)), "cgroup manager");
        Ok(CgroupManager {
            path: path.to_owned(),
            backend,
        })
    }

    /// Creates the cgroup directories and writes `resources`.
    pub fn apply(&self, resources: Option<&LinuxResources>) -> Result<()> {
        match &self.backend {
            Backend::V1(b) => b.apply(resources),
            Backend::V2(b) => b.apply(resources),
        }
    }

    /// Writes `resources` to the existing cgroup of a running container (`runc update`):
    /// only the limits `resources` names change. Fails with [`CgroupError::NotFound`] when
    /// the cgroup is gone instead of creating an empty one. Lowering a memory limit below
    /// the current usage fails as the kernel says (`EBUSY` on v1).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        match &self.backend {
            Backend::V1(b) => b.update(resources),
            Backend::V2(b) => b.update(resources),
        }
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        match &self.backend {
            Backend::V1(b) => b.add_task(pid),
            Backend::V2(b) => b.add_task(pid),
        }
    }

    /// Freezes every task and returns once all are frozen.
    pub fn freeze(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(b) => b.freeze(),
            Backend::V2(b) => b.freeze(),
        }
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<()> {
        match &self.backend {
            Backend::V1(b) => b.thaw(),
            Backend::V2(b) => b.thaw(),
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match &self.backend {
            Backend::V1(b) => b.is_frozen(),
            Backend::V2(b) => b.is_frozen(),
        }
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        match &self.backend {
            Backend::V1(b) => b.pids(),
            Backend::V2(b) => b.pids(),
        }
    }

    /// Whether the kernel's OOM killer has killed a task of this cgroup.
    pub fn oom_killed(&self) -> Result<bool> {
        match &self.backend {
            Backend::V1(b) => b.oom_killed(),
            Backend::V2(b) => b.oom_killed(),
        }
    }

    /// Current usage, for `berth stats`.
    pub fn stats(&self) -> Result<CgroupStats> {
        match &self.backend {
            Backend::V1(b) => b.stats(),
            Backend::V2(b) => b.stats(),
        }
    }

    /// Kills the remaining tasks and removes the cgroup's directories. Goes on past
    /// failures and reports all of them in [`CgroupError::Destroy`]. A cgroup that was
    /// never created is fine.
    pub fn destroy(&self) -> Result<()> {
        let errors = match &self.backend {
            Backend::V1(b) => b.destroy(),
            Backend::V2(b) => b.destroy(),
        };
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CgroupError::Destroy {
                path: self.path.clone(),
                errors,
            })
        }
    }

    /// The OCI cgroups path this manager was created with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the host uses the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        matches!(self.backend, Backend::V2(_))
    }
}

/// Checks an OCI cgroups path and returns it relative to the root, without slashes at
/// either end. `..` and `.` components are refused: the path must not leave the root.
fn validate_path(path: &str) -> Result<&str> {
    let invalid = |reason| CgroupError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    let relative = path.trim_matches('/');
    if relative.is_empty() {
        return Err(invalid("it names the root cgroup"));
    }
    if relative
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid("empty, `.` or `..` components are not allowed"));
    }
    if relative.contains('\0') {
        return Err(invalid("NUL byte"));
    }
    Ok(relative)
}

/// Sends SIGKILL to each of `pids`; a pid that is already gone is fine.
fn kill_all(dir: &Path, pids: &[i32], errors: &mut Vec<CgroupError>) {
    for &pid in pids {
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(err) => errors.push(CgroupError::Kill {
                pid,
                path: dir.to_owned(),
                err,
            }),
        }
    }
}

/// Polls `dir/cgroup.procs` until it is empty.
fn wait_empty(dir: &Path) -> Result<()> {
    let mut backoff = fs::Backoff::new(DRAIN_TIMEOUT);
    loop {
        let pids = match fs::procs(dir) {
            Ok(pids) => pids,
            Err(CgroupError::Read { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(())
            }
            Err(err) => return Err(err),
        };
        if pids.is_empty() {
            return Ok(());
        }
        if !backoff.wait() {
            return Err(CgroupError::Busy {
                path: dir.to_owned(),
                pids,
                waited: backoff.elapsed(),
            });
        }
    }
}

/// Whether `resources` pin cpus or memory nodes (which needs the cpuset controller).
fn pins_cpus_or_mems(resources: &LinuxResources) -> bool {
    resources
        .cpu()
        .as_ref()
        .is_some_and(|c| c.cpus().is_some() || c.mems().is_some())
}

/// runc's conversion of cgroup v1 cpu shares (2..=262144) to a v2 weight (1..=10000).
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests;
