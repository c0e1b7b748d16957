//! Registry operations on the store: `pull`, `push`, `login`, `logout`, `search`, and
//! [`Engine::ensure_image`], the implicit pull behind `run`, `create` and build `FROM`.
//!
//! The wire protocol lives in `berth-registry`; this module decides what to transfer (layers
//! already in the store are skipped, blobs the registry has are not uploaded), runs transfers on a
//! few plain threads, and records the results (images, tags, RepoDigests) in the store.
//! Progress is reported as [`TransferEvent`]s so the CLI can draw bars or print Docker's lines.

mod compress;
mod login;
mod pull;
mod push;
mod spool;

use berth_image::reference::Reference;
use berth_image::store::StoreError;
use berth_registry::{Registry, RegistryConfig, RegistryError};

pub use berth_registry::platform::{runnable_platforms, Platform};
pub use login::{normalize_server, SearchResult};
pub use pull::{PullOptions, PullPolicy, PullReport};
pub use push::{PushOptions, PushReport};

use crate::EngineError;

/// How many layers are transferred at once.
pub const PARALLEL_TRANSFERS: usize = 3;

/// What a transfer is doing, in Docker's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    AlreadyExists,
    PullingFsLayer,
    Waiting,
    Downloading,
    VerifyingChecksum,
    DownloadComplete,
    Extracting,
    PullComplete,
    Preparing,
    Pushing,
    Pushed,
    LayerAlreadyExists,
    MountedFrom(String),
}

impl std::fmt::Display for LayerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerStatus::AlreadyExists => f.write_str("Already exists"),
            LayerStatus::PullingFsLayer => f.write_str("Pulling fs layer"),
            LayerStatus::Waiting => f.write_str("Waiting"),
            LayerStatus::Downloading => f.write_str("Downloading"),
            LayerStatus::VerifyingChecksum => f.write_str("Verifying Checksum"),
            LayerStatus::DownloadComplete => f.write_str("Download complete"),
            LayerStatus::Extracting => f.write_str("Extracting"),
            LayerStatus::PullComplete => f.write_str("Pull complete"),
            LayerStatus::Preparing => f.write_str("Preparing"),
            LayerStatus::Pushing => f.write_str("Pushing"),
            LayerStatus::Pushed => f.write_str("Pushed"),
            LayerStatus::LayerAlreadyExists => f.write_str("Layer already exists"),
            LayerStatus::MountedFrom(repo) => write!(f, "Mounted from {repo}"),
        }
    }
}

/// Progress of a pull or push.
#[derive(Debug, Clone)]
pub enum TransferEvent {
    /// `latest: Pulling from library/busybox`.
    Pulling {
        tag_or_digest: String,
        repository: String,
    },
    /// `The push refers to repository [localhost:5000/app]`.
    PushRefersTo { repository: String },
    /// A layer changed state; `id` is the 12-character short digest.
    Layer { id: String, status: LayerStatus },
    /// Bytes moved for a layer (for progress bars), with the total when known.
    Progress {
        id: String,
        status: LayerStatus,
        current: u64,
        total: u64,
    },
    /// A pushed tag: `latest: digest: sha256:… size: 528`.
    Pushed {
        tag: String,
        digest: String,
        size: u64,
    },
}

/// Receives progress; called from transfer threads.
pub type Observer<'a> = &'a (dyn Fn(&TransferEvent) + Sync);

/// An observer that ignores everything.
pub fn quiet(_: &TransferEvent) {}

/// Errors of registry operations: the registry's, or the engine's and store's.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Message(String),
}

impl From<StoreError> for TransferError {
    fn from(err: StoreError) -> Self {
        TransferError::Engine(err.into())
    }
}

impl From<TransferError> for EngineError {
    fn from(err: TransferError) -> Self {
        match err {
            TransferError::Engine(e) => e,
            TransferError::Registry(RegistryError::NotFound(m)) => EngineError::NotFound(m),
            TransferError::Registry(RegistryError::InvalidPlatform(p)) => {
                EngineError::InvalidArgument(RegistryError::InvalidPlatform(p).to_string())
            }
            other => EngineError::Fetch {
                url: String::new(),
                message: other.to_string(),
            },
        }
    }
}

pub type Result<T, E = TransferError> = std::result::Result<T, E>;

/// Parses a user's image name with Docker's error wording.
fn parse(name: &str) -> Result<Reference> {
    Ok(crate::image::parse_reference(name)?)
}

/// A client for the registry of `reference`, with stored credentials.
fn registry_for(domain: &str) -> Result<Registry> {
    Ok(Registry::new(domain, &RegistryConfig::from_env())?)
}

/// `<12 hex>` of a digest, as Docker's progress lines show it.
fn short(digest: &berth_image::Digest) -> String {
    digest.hex()[..12].to_string()
}
