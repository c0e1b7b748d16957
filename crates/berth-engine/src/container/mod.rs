//! Containers: a writable layer over an image, a stored configuration, and — while it runs —
//! a monitor process that owns the container's stdio and records how it ended.
//!
//! Where to start reading:
//! - [`state`]: the `containers` table, the [`ContainerState`] machine and name/ID resolution;
//! - [`config`]: the stored configuration, in Docker's `Config` / `HostConfig` shape;
//! - [`create`]: image config + flags → a container; [`spec`]: a container → an OCI spec;
//! - [`start`]: starts the monitor ([`crate::monitor`]), which starts the container;
//! - one file per verb after that (`stop.rs`, `kill.rs`, `remove.rs`, `logs.rs`, …);
//! - [`reconcile`]: how a container whose monitor died is noticed and marked exited.
//!
//! On disk a container is `<root>/containers/<id>/` (overlay `upper/` and `work/`, the
//! `rootfs/` mount point, the OCI bundle `config.json`, `hostname`, `hosts`, `resolv.conf` and
//! the json-file log `<id>-json.log`); while it runs, `<runroot>/containers/<id>/` holds the
//! monitor's `lock` and `attach.sock`.

pub mod attach;
pub mod commit;
pub mod config;
pub mod cp;
pub mod create;
pub mod diff;
pub mod exec;
pub mod export;
pub mod inspect;
pub mod kill;
pub mod list;
pub mod logs;
pub mod names;
pub mod pause;
pub mod prune;
pub mod reconcile;
pub mod remove;
pub mod rename;
pub mod resources;
pub mod rootfs;
pub mod spec;
pub mod start;
pub mod state;
pub mod stats;
pub mod stop;
pub mod sys;
pub mod sysctl;
pub mod top;
pub mod update;
pub mod wait;

use std::path::{Path, PathBuf};

pub use crate::registry::PullPolicy;
pub use config::{Config, HostConfig, PortBinding, RestartPolicy, Ulimit};
pub use create::CreateOptions;
pub use resources::Resources;
pub use state::{Container, ContainerState};
pub use update::UpdateOptions;

use crate::Engine;

/// The directory under the root (and the runroot) holding one directory per container.
pub const CONTAINERS_DIR: &str = "containers";

/// The cgroup path of a container, relative to each hierarchy's root.
pub fn cgroup_path(id: &str) -> String {
    format!("/berth/{id}")
}

/// Where the container's persistent files live.
pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(CONTAINERS_DIR).join(id)
}

/// Where the container's run-time files (monitor lock, attach socket) live.
pub fn run_dir(runroot: &Path, id: &str) -> PathBuf {
    runroot.join(CONTAINERS_DIR).join(id)
}

/// The json-file log of a container.
pub fn log_path(root: &Path, id: &str) -> PathBuf {
    container_dir(root, id).join(format!("{id}-json.log"))
}

/// The runtime's own state lives beside ours in the runroot.
pub fn runtime(runroot: &Path) -> berth_runtime::Runtime {
    berth_runtime::Runtime::new(runroot.join("runtime"))
}

impl Engine {
    pub fn container_dir(&self, id: &str) -> PathBuf {
        container_dir(self.root(), id)
    }

    pub fn container_run_dir(&self, id: &str) -> PathBuf {
        run_dir(self.runroot(), id)
    }

    pub(crate) fn runtime(&self) -> berth_runtime::Runtime {
        runtime(self.runroot())
    }
}

/// Nanoseconds since the epoch, the unit of every container timestamp.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Docker's time format for container timestamps (RFC 3339 with nanoseconds, trailing zeros
/// trimmed); zero is Go's zero time.
pub fn rfc3339(nanos: i64) -> String {
    if nanos <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .unwrap_or_default();
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
