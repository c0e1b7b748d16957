//! The runtime's error type: every module's error, plus the failures reported by the container
//! process itself, with the exit status Docker would use for each ([`RuntimeError::exit_code`]).

use std::io;
use std::path::PathBuf;

use crate::cgroups::CgroupError;
use crate::container::ExitStatus;
use crate::process::channel::{ChildFailure, FailureKind};
use crate::seccomp::SeccompError;
use crate::state::StateError;

pub use crate::namespaces::NamespaceError;
pub use crate::process::channel::ChannelError;
pub use crate::rootfs::RootfsError;

/// Errors of the runtime's verbs.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The caller has more than one thread; forking it could deadlock the child.
    #[error(
        "the runtime must be called from a single-threaded process (this one has {threads} threads)"
    )]
    MultiThreaded {
        /// Threads found.
        threads: u64,
    },
    /// The container id cannot be used as a directory or cgroup name.
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '-' and '.', not starting with '.'"
    )]
    InvalidId(String),
    /// The spec is incomplete or inconsistent.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// An I/O step in the caller's process failed.
    #[error("failed to {step} {}", path.display())]
    Io {
        /// The failed step.
        step: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The container's `config.json` could not be read (exec needs its seccomp profile).
    #[error("failed to read the container's spec {}", path.display())]
    LoadSpec {
        /// The `config.json`.
        path: PathBuf,
        /// The cause.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// `clone(2)` failed.
    #[error("failed to clone the container process")]
    Clone(#[source] io::Error),
    /// A namespace error.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// A root file system error.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// A cgroup error.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A seccomp error.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// The parent/child channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A set-up step in the container process failed; the message names the step.
    #[error("container process set-up failed: {message}")]
    Setup {
        /// The failed step and its causes.
        message: String,
        /// The OS error code behind it, 0 if none.
        errno: i32,
    },
    /// The command does not exist (Docker exit status 127).
    #[error("{message}")]
    NotFound {
        /// `exec "foo": executable file not found in $PATH`.
        message: String,
    },
    /// The command exists but cannot be executed (Docker exit status 126).
    #[error("{message}")]
    CannotExecute {
        /// `exec "/etc": permission denied`.
        message: String,
    },
    /// The container process died before reporting anything.
    #[error("the container process exited during set-up ({status})")]
    ChildExited {
        /// How it ended.
        status: ExitStatus,
    },
    /// The container's init process is gone (or its pid now belongs to another process).
    #[error("container {id} is not running")]
    NotRunning {
        /// The container id.
        id: String,
    },
    /// Signalling or reaping a process failed.
    #[error("failed to {step} process {pid}")]
    Process {
        /// The failed step.
        step: &'static str,
        /// The process.
        pid: i32,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl RuntimeError {
    /// The exit status Docker reports for this error: 127 for a missing command, 126 for one
    /// that cannot be executed, 125 for everything else (the engine's own failure).
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::NotFound { .. } => 127,
            RuntimeError::CannotExecute { .. } => 126,
            _ => 125,
        }
    }
}

impl From<ChildFailure> for RuntimeError {
    fn from(failure: ChildFailure) -> Self {
        match failure.kind {
            FailureKind::NotFound => RuntimeError::NotFound {
                message: failure.message,
            },
            FailureKind::CannotExecute => RuntimeError::CannotExecute {
                message: failure.message,
            },
            FailureKind::Setup => RuntimeError::Setup {
                message: failure.message,
                errno: failure.errno,
            },
        }
    }
}

/// Everything that went wrong while deleting a container: deletion carries on past each
/// failure so as much as possible is cleaned up.
#[derive(Debug, thiserror::Error)]
#[error("failed to delete container {id}: {}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct DeleteError {
    /// The container id.
    pub id: String,
    /// Each failed cleanup step.
    pub errors: Vec<RuntimeError>,
}
