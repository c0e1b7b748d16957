//! `commit`: the container's writable layer becomes a new layer on top of its image.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use berth_image::config::{History, RunConfig};
use berth_image::layer::pack_diff;
use berth_image::store::{LayerInfo, LayerSource, NewImage, StoreError};
use berth_image::{ChainId, Digest};

use super::state::ContainerState;
use crate::error::io_error;
use crate::image::{apply_changes, parse_reference};
use crate::{Engine, EngineError, Result};

/// `commit` flags.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub reference: Option<String>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub changes: Vec<String>,
    /// Freeze the container while its layer is read (Docker's default).
    pub pause: bool,
}

impl Engine {
    pub fn commit_container(&self, name_or_id: &str, opts: &CommitOptions) -> Result<Digest> {
        let c = self.container(name_or_id)?;
        let tags = match &opts.reference {
            Some(r) => {
                let r = parse_reference(r)?;
                if r.digest().is_some() {
                    return Err(EngineError::InvalidArgument(
                        "cannot commit to a digest reference".into(),
                    ));
                }
                vec![r.with_default_tag()]
            }
            None => Vec::new(),
        };
        let base_id: Digest = c
            .image_id
            .parse()
            .map_err(|_| EngineError::NotFound(format!("No such image: {}", c.image_id)))?;
        let (_, base) = self.store().image_config(&base_id)?;
        let mut run = run_config_of(&c.config, &base.config);
        apply_changes(&mut run, &opts.changes)?;

        let upper = self.container_dir(&c.id).join("upper");
        let tmp = self.store().temp_path("commit.tar");
        let io = |action| io_error(action, &tmp);
        let paused =
            opts.pause && c.state == ContainerState::Running && self.runtime().pause(&c.id).is_ok();
        let packed = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("create"))
            .and_then(|mut f| {
                pack_diff(&upper, &mut f).map_err(|e| EngineError::from(StoreError::from(e)))?;
                f.seek(SeekFrom::Start(0)).map_err(io("rewind"))?;
                Ok(f)
            });
        if paused {
            let _ = self.runtime().resume(&c.id);
        }
        let file = match packed {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let chain = ChainId::chain(&base.rootfs.diff_ids);
        let added = self
            .store()
            .add_layer(chain.last(), file, &LayerSource::default());
        let _ = std::fs::remove_file(&tmp);
        let layer = added?;

        let mut layers: Vec<LayerInfo> = ChainId::chain(&base.rootfs.diff_ids)
            .iter()
            .map(|c| self.store().layer_info(c))
            .collect::<Result<_, _>>()?;
        let mut config = base.clone();
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        config.created = Some(created.clone());
        config.author = opts.author.clone().or(config.author);
        config.config = run;
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(created),
            created_by: Some(c.config.args().join(" ")),
            author: opts.author.clone(),
            comment: opts.message.clone(),
            empty_layer: false,
        });
        config.extra.remove("comment");
        if let Some(m) = &opts.message {
            config
                .extra
                .insert("comment".into(), serde_json::Value::String(m.clone()));
        }
        config
            .extra
            .insert("container".into(), serde_json::Value::String(c.id.clone()));
        layers.push(layer);
        let id = self.store().put_image(&NewImage {
            config: &config.to_vec(),
            layers: &layers,
            parent: Some(base_id),
            manifest_digest: None,
            tags: &tags,
            repo_digests: &[],
        })?;
        self.committed(&c.id, &id, opts.message.as_deref(), &tags);
        Ok(id)
    }
}

/// The image config of a commit: the container's settings on the image's.
fn run_config_of(c: &super::Config, base: &RunConfig) -> RunConfig {
    let mut run = base.clone();
    run.env = Some(c.env.clone()).filter(|e| !e.is_empty());
    run.cmd = c.cmd.clone();
    run.entrypoint = c.entrypoint.clone();
    run.working_dir = c.working_dir.clone();
    run.user = c.user.clone();
    run.labels = Some(c.labels.clone()).filter(|l| !l.is_empty());
    if let Some(s) = &c.stop_signal {
        run.stop_signal = s.clone();
    }
    run
}
