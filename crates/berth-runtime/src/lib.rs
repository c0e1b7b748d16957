//! berth's OCI runtime: it takes an OCI bundle (`config.json` + rootfs) and runs it isolated.
//!
//! # Brief overview
//!
//! The engine's monitor process (single-threaded, see [`container`]) drives a container with a
//! [`Runtime`]:
//!
//! 1. [`Runtime::create`] clones the init process into its namespaces and cgroup, builds its
//!    root file system and stops it at a barrier before `execve`; it returns a [`Created`];
//! 2. [`Created::start`] releases the barrier and reports whether `execve` worked
//!    ([`RuntimeError::exit_code`]: 127 not found, 126 cannot execute);
//! 3. the caller, the process's parent, reaps it ([`wait`]) and gets its [`ExitStatus`];
//! 4. [`Runtime::delete`] removes what is left (processes, cgroup, state).
//!
//! [`Runtime::exec`] runs another process in a running container; [`Runtime::kill`],
//! [`Runtime::pause`] and [`Runtime::resume`] act on it. [`spec_defaults`] gives Docker's
//! default spec.
//!
//! # Where to start reading
//!
//! - [`container`]: the verbs and the process model (single-threaded caller, who reaps);
//! - `process`: the child side of the clone: the init process's set-up, the start barrier,
//!   the last steps before `execve` (`process/launch.rs`), exec into a running container;
//! - `rootfs`: mounts, the overlay root, devices, `pivot_root`, masked and read-only paths;
//! - `namespaces`, `capabilities`, `rlimits`, `user`, `tty`: one concern each;
//! - [`cgroups`]: cgroup v1 and v2 resource control, freezer and OOM reporting;
//! - [`seccomp`]: compiling an OCI seccomp profile to BPF and Docker's default profile;
//! - `sys`: the few raw system calls (clone, close_range, mount_setattr, signals): all the
//!   kernel-facing `unsafe` of the runtime in one place.
//!
//! # Requirements
//!
//! Linux ≥ 5.12 (`openat2`, `close_range(CLOSE_RANGE_CLOEXEC)`, `mount_setattr`), root (or
//! the equivalent capabilities), and a single-threaded caller for `create` and `exec`.
//! Not implemented: OCI hooks, AppArmor/SELinux labels, `linux.personality`, Intel RDT,
//! scheduler/IO-priority/CPU-affinity process settings, time namespaces, joining an existing
//! user namespace.

mod capabilities;
mod cgroup_join;
pub mod cgroups;
pub mod container;
pub mod error;
mod namespaces;
mod process;
mod rlimits;
mod rootfs;
pub mod seccomp;
pub mod spec_defaults;
pub mod state;
mod sys;
mod tty;
mod user;

pub use container::{wait, Created, ExitStatus, Runtime};
pub use error::{DeleteError, RuntimeError};
pub use oci_spec;
pub use process::{Stdio, DEFAULT_PATH};
pub use rootfs::mount_in_root;
pub use state::State;
