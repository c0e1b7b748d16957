//! Registry errors: one enum for the whole client, each variant naming the step that failed.

use berth_image::DigestError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The transport failed (connection refused, TLS, timeout) after any retries.
    #[error("{method} {url}: {source}")]
    Http {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error status.
    #[error("{message}")]
    Status { status: u16, message: String },
    /// The registry refused our credentials (or we have none) for `what`.
    #[error("{0}")]
    Unauthorized(String),
    /// The manifest, blob or repository does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Content did not hash to the digest it was fetched by or announced with.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest or index could not be understood.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// No manifest in an index matches the wanted platform.
    #[error("no matching manifest for {wanted} in the manifest list entries")]
    NoMatchingPlatform { wanted: String },
    /// A `--platform` value that is not `os[/arch[/variant]]`.
    #[error("invalid platform {0:?}: expected os[/arch[/variant]]")]
    InvalidPlatform(String),
    /// Plain http was refused: the registry is neither local nor listed as insecure.
    #[error("{0}")]
    Insecure(String),
    /// Reading or writing the Docker config file or running a credential helper failed.
    #[error("{0}")]
    Credentials(String),
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Digest(#[from] DigestError),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    /// Whether retrying the same request may succeed (transport trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_request()
                    || source.is_body()
            }
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
