//! `import`: a filesystem tarball becomes a one-layer image.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use berth_image::config::{host_architecture, History, ImageConfig, RootFs, RunConfig};
use berth_image::store::{LayerSource, NewImage};
use berth_image::Digest;
use serde_json::Value;

use super::{apply_changes, parse_reference};
use crate::{Engine, EngineError, Result};

/// Where the tarball comes from.
pub enum ImportSource {
    File(PathBuf),
    Stdin,
    Url(String),
}

impl ImportSource {
    /// Docker's reading of the `file|URL|-` argument.
    pub fn parse(text: &str) -> ImportSource {
        if text == "-" {
            ImportSource::Stdin
        } else if text.starts_with("http://") || text.starts_with("https://") {
            ImportSource::Url(text.to_string())
        } else {
            ImportSource::File(PathBuf::from(text))
        }
    }

    fn describe(&self) -> String {
        match self {
            ImportSource::File(path) => path.display().to_string(),
            ImportSource::Stdin => "-".into(),
            ImportSource::Url(url) => url.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct ImportOptions {
    /// `-c` Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// `-m`: the commit message (Docker's default: "Imported from SOURCE").
    pub message: Option<String>,
    /// `--platform` `os/arch[/variant]`.
    pub platform: Option<String>,
    /// `REPOSITORY[:TAG]` to name the image.
    pub reference: Option<String>,
}

impl Engine {
    /// Imports a tarball (plain, gzip or zstd) as a new single-layer image.
    pub fn import(&self, source: ImportSource, options: &ImportOptions) -> Result<Digest> {
        // Everything that can be wrong with the arguments is checked before reading any data.
        let tags = match &options.reference {
            Some(name) => {
                let reference = parse_reference(name)?;
                if reference.digest().is_some() {
                    return Err(EngineError::InvalidArgument(
                        "import: cannot import to a digest reference".into(),
                    ));
                }
                vec![reference.with_default_tag()]
            }
            None => Vec::new(),
        };
        let mut run_config = RunConfig::default();
        apply_changes(&mut run_config, &options.changes)?;
        let (os, architecture, variant) = parse_platform(options.platform.as_deref())?;

        let reader: Box<dyn Read> = match &source {
            ImportSource::File(path) => {
                Box::new(File::open(path).map_err(|source| EngineError::Io {
                    action: "open",
                    path: path.display().to_string(),
                    source,
                })?)
            }
            ImportSource::Stdin => Box::new(std::io::stdin().lock()),
            ImportSource::Url(url) => Box::new(fetch(url)?),
        };
        let layer = self
            .store()
            .add_layer(None, reader, &LayerSource::default())?;

        let created = now_rfc3339();
        let comment = options
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", source.describe()));
        let mut config = ImageConfig {
            created: Some(created.clone()),
            architecture,
            os,
            variant,
            config: run_config,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(comment.clone()),
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        config
            .extra
            .insert("comment".into(), Value::String(comment));
        let id = self.store().put_image(&NewImage {
            config: &config.to_vec(),
            layers: std::slice::from_ref(&layer),
            parent: None,
            manifest_digest: None,
            tags: &tags,
            repo_digests: &[],
        })?;
        self.image_id_event("import", &id);
        Ok(id)
    }
}

fn fetch(url: &str) -> Result<reqwest::blocking::Response> {
    let fail = |message: String| EngineError::Fetch {
        url: url.to_string(),
        message,
    };
    let response = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .map_err(|e| fail(e.to_string()))?
        .get(url)
        .send()
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("server answered {}", response.status())));
    }
    Ok(response)
}

/// `os/arch[/variant]`, defaulting to this machine.
pub(crate) fn parse_platform(text: Option<&str>) -> Result<(String, String, Option<String>)> {
    let Some(text) = text else {
        return Ok(("linux".into(), host_architecture().into(), None));
    };
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => {
            Ok((os.to_string(), arch.to_string(), None))
        }
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
            Ok((os.to_string(), arch.to_string(), Some(variant.to_string())))
        }
        _ => Err(EngineError::InvalidArgument(format!(
            "invalid platform {text:?}: expected os/arch[/variant]"
        ))),
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
