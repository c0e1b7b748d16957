//! `berth build`: the executor on top of `berth-build`'s Dockerfile language.
//!
//! Where to start reading: [`build`] prepares the context ([`context`]), parses and plans the
//! Dockerfile, then [`executor`] dispatches each stage's instructions: metadata steps change the
//! image config ([`metadata`]), COPY/ADD write a new layer directory straight from the context
//! ([`copy`]), RUN executes in an overlay over the stage's layers with berth-runtime and the
//! upper dir becomes the layer ([`run`]). Every layer step goes through the cache ([`cache`]):
//! its key chains the parent's key, the expanded instruction, the build args in scope and, for
//! COPY/ADD, the digest of the sources; a hit reuses the stored layer without running anything.
//!
//! Process model: the build runs in one thread of the CLI process, which first moves itself into
//! a private mount namespace (so a `COPY --from` overlay can never outlive it). RUN steps fork
//! through the runtime, which needs a single-threaded caller: the only threads the build starts
//! (hashing sources, HTTP for ADD) are joined before any RUN.

pub mod cache;
pub mod context;
mod copy;
mod executor;
mod metadata;
pub mod progress;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_image::Digest;

use crate::Engine;

pub use progress::{Progress, ProgressMode};

/// Errors of a build, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be parsed or is invalid.
    #[error("failed to solve: dockerfile parse error on line {line}: {message}")]
    Parse { line: usize, message: String },
    /// Something the user asked for is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A RUN step exited non-zero.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed { command: String, code: i32 },
    /// A source of COPY/ADD is missing or unreadable.
    #[error("failed to compute cache key: {0}")]
    Source(String),
    /// A file-system step failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The runtime failed to run a step.
    #[error("failed to run step: {0}")]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// The store failed.
    #[error(transparent)]
    Engine(#[from] crate::EngineError),
}

impl From<berth_image::store::StoreError> for BuildError {
    fn from(e: berth_image::store::StoreError) -> Self {
        BuildError::Engine(e.into())
    }
}

impl From<rusqlite::Error> for BuildError {
    fn from(e: rusqlite::Error) -> Self {
        BuildError::Engine(e.into())
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io {
        action,
        path,
        source,
    }
}

/// Where the build context comes from.
#[derive(Debug, Clone)]
pub enum ContextSource {
    /// A directory, read in place.
    Dir(PathBuf),
    /// A tar archive (possibly compressed) in memory, e.g. from stdin.
    Tar(Vec<u8>),
    /// No context at all (a Dockerfile on stdin).
    Empty,
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
pub enum DockerfileSource {
    /// A path (relative paths are relative to the context directory).
    Path(PathBuf),
    /// The text itself (`-f -`, or a Dockerfile given as the context on stdin).
    Text(String),
}

/// Everything `berth build` takes.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: ContextSource,
    /// `None`: `Dockerfile` in the context.
    pub dockerfile: Option<DockerfileSource>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub platform: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `default`, `host` or `none`.
    pub network: String,
    /// `--secret id=…,src=…`: id → file.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub image_id: Digest,
    pub tags: Vec<String>,
    /// Steps that were answered from the cache.
    pub cached_steps: usize,
    /// Steps that were executed.
    pub executed_steps: usize,
}

/// Builds an image. Nothing is recorded (no image, no tag) unless every step succeeded.
pub fn build(
    engine: &Engine,
    options: &BuildOptions,
    progress: &mut Progress,
) -> Result<BuildOutput> {
    executor::build(engine, options, progress)
}

/// `builder prune`: empties the build cache (with `all`, also the cache mounts and the stat
/// cache) and lets the layers only the cache kept alive be collected. Returns the bytes freed.
pub fn prune(engine: &Engine, all: bool) -> Result<u64> {
    Ok(prune_used_before(engine, all, i64::MAX)?.1)
}

/// `builder prune --filter until=…` (unix seconds; `i64::MAX` for everything): the removed
/// cache keys and the bytes freed. `all` also empties the cache mounts.
pub fn prune_used_before(engine: &Engine, all: bool, until: i64) -> Result<(Vec<String>, u64)> {
    let (keys, freed) = cache::Cache::open(engine.store())?.clear_used_before(until)?;
    if all {
        for dir in ["build-cache-mounts", "build-cache"] {
            let path = engine.root().join(dir);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
            }
        }
    }
    let layers = engine.store().collect_garbage_layers()?;
    Ok((keys, freed + layers))
}

pub use berth_build::lint::{Problem, Severity};

/// `build --check`: lints the Dockerfile without building; problems in line order.
pub fn check(engine: &Engine, options: &BuildOptions) -> Result<Vec<Problem>> {
    let ctx = context::Context::prepare(engine.store(), options)?;
    let args = berth_build::args::BuildArgs::new(options.build_args.clone());
    let mut problems = berth_build::lint::check_with(&ctx.dockerfile, &args);
    problems.sort_by_key(|p| p.line);
    Ok(problems)
}
