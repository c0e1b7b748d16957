//! Engine errors, grouped into the categories a caller maps to exit codes or HTTP statuses.

use std::path::Path;

use berth_image::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The named object does not exist (Docker API: 404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (Docker API: 409).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed (Docker API: 400).
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to fetch {url}: {message}")]
    Fetch { url: String, message: String },
}

/// For `map_err`: `action` on `path` failed.
pub(crate) fn io_error(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.display().to_string();
    move |source| EngineError::Io {
        action,
        path,
        source,
    }
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::ImageNotFound(name) => {
                EngineError::NotFound(format!("No such image: {name}"))
            }
            StoreError::Conflict(msg) => EngineError::Conflict(msg),
            other => EngineError::Store(other),
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(err: rusqlite::Error) -> Self {
        EngineError::Store(StoreError::Db(err))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
