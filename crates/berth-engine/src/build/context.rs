//! The build context: a directory read in place, or a tar (from stdin or a file) unpacked once
//! into a temporary directory under the store; plus the Dockerfile and the ignore matcher.

use std::fs;
use std::path::{Path, PathBuf};

use berth_build::context::{walk, ContextEntry};
use berth_build::ignore::{matcher_for, Matcher};
use berth_image::layer::{self, SymlinkScope, UnpackOptions};
use berth_image::store::Store;

use super::{io_err, BuildError, BuildOptions, ContextSource, DockerfileSource, Result};

/// Whether bytes given on stdin are an archive (tar, gzip, zstd…) rather than a Dockerfile.
pub fn looks_like_archive(bytes: &[u8]) -> bool {
    let ustar = bytes.len() > 262 && &bytes[257..262] == b"ustar";
    ustar || layer::Compression::detect(bytes) != layer::Compression::None
}

/// A directory removed when dropped.
pub(crate) struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if fs::symlink_metadata(&self.0).is_ok() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A ready context.
pub struct Context {
    /// The directory the sources are read from.
    pub dir: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The Dockerfile's name (for messages).
    pub dockerfile_name: String,
    matcher: Matcher,
    entries: Option<Vec<ContextEntry>>,
    _tmp: Option<TempDir>,
}

impl Context {
    pub fn prepare(store: &Store, options: &BuildOptions) -> Result<Context> {
        let (dir, tmp) = match &options.context {
            ContextSource::Dir(d) => {
                let d = fs::canonicalize(d).map_err(|_| {
                    BuildError::Invalid(format!(
                        "unable to prepare context: path {:?} not found",
                        d.display().to_string()
                    ))
                })?;
                if !d.is_dir() {
                    return Err(BuildError::Invalid(format!(
                        "unable to prepare context: {} is not a directory",
                        d.display()
                    )));
                }
                (d, None)
            }
            ContextSource::Tar(bytes) => {
                let d = store.temp_path("context");
                fs::create_dir(&d).map_err(io_err("create", &d))?;
                let guard = TempDir(d.clone());
                let reader =
                    layer::decompressed(&bytes[..]).map_err(io_err("decompress context", &d))?;
                let opts = UnpackOptions {
                    preserve_ownership: false,
                    convert_whiteouts: false,
                    symlinks: SymlinkScope::Beneath,
                    apply_root_entry: true,
                };
                layer::unpack(reader, &d, &opts).map_err(|e| {
                    BuildError::Invalid(format!("failed to read the context archive: {e}"))
                })?;
                (d, Some(guard))
            }
            ContextSource::Empty => {
                let d = store.temp_path("context");
                fs::create_dir(&d).map_err(io_err("create", &d))?;
                (d.clone(), Some(TempDir(d)))
            }
        };
        let (text, path, name) = match &options.dockerfile {
            Some(DockerfileSource::Text(t)) => {
                (t.clone(), dir.join("Dockerfile"), "Dockerfile".to_string())
            }
            Some(DockerfileSource::Path(p)) => {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    dir.join(p)
                };
                let text = read_dockerfile(&path)?;
                let name = p.display().to_string();
                (text, path, name)
            }
            None => {
                let path = dir.join("Dockerfile");
                (read_dockerfile(&path)?, path, "Dockerfile".to_string())
            }
        };
        let matcher = matcher_for(&path, &dir)
            .map_err(|e| BuildError::Invalid(format!("failed to read .dockerignore: {e}")))?;
        Ok(Context {
            dir,
            dockerfile: text,
            dockerfile_name: name,
            matcher,
            entries: None,
            _tmp: tmp,
        })
    }

    /// The included entries of the context (walked once, on first use).
    pub fn entries(&mut self) -> Result<&[ContextEntry]> {
        if self.entries.is_none() {
            let e = walk(&self.dir, &self.matcher)
                .map_err(|e| BuildError::Invalid(format!("failed to walk the context: {e}")))?;
            self.entries = Some(e);
        }
        Ok(self.entries.as_deref().unwrap_or_default())
    }
}

fn read_dockerfile(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|_| {
        BuildError::Invalid(format!(
            "failed to solve: failed to read dockerfile: open {}: no such file or directory",
            path.display()
        ))
    })
}
