//! `push`: layers the registry lacks are mounted from a sibling repository or uploaded (up to
//! [`PARALLEL_TRANSFERS`] at a time), then the config, then the manifest under the tag.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use berth_image::reference::Reference;
use berth_image::store::{LayerInfo, NewImage};
use berth_image::{ChainId, Digest};
use berth_registry::manifest::{
    self, Descriptor, ImageManifest, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG,
    OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use berth_registry::{Body, Mount, Registry};

use super::{
    parse, registry_for, LayerStatus, Observer, Result, TransferError, TransferEvent,
    PARALLEL_TRANSFERS,
};
use crate::Engine;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// `-a/--all-tags`.
    pub all_tags: bool,
}

/// One pushed tag.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub reference: Reference,
    pub digest: Digest,
    pub size: u64,
}

/// A blob to make present in the target repository.
struct Upload {
    /// Progress id: the short diff ID, as Docker shows it.
    id: String,
    digest: Digest,
    size: u64,
    path: std::path::PathBuf,
}

impl Engine {
    /// `push NAME[:TAG]`, or every local tag of NAME with `all_tags`.
    pub fn push(
        &self,
        name: &str,
        options: &PushOptions,
        observer: Observer<'_>,
    ) -> Result<Vec<PushReport>> {
        let reference = parse(name)?;
        if reference.digest().is_some() {
            return Err(TransferError::Message(
                "cannot push a digest reference".into(),
            ));
        }
        let tags: Vec<Reference> = if options.all_tags {
            if reference.tag().is_some() {
                return Err(TransferError::Message(
                    "tag can't be used with --all-tags/-a".into(),
                ));
            }
            let mut tags: Vec<Reference> = self
                .store()
                .list_images()?
                .into_iter()
                .flat_map(|r| r.tags)
                .filter_map(|t| Reference::parse(&t).ok())
                .filter(|t| t.name() == reference.name())
                .collect();
            tags.sort();
            tags.dedup();
            tags
        } else {
            vec![reference.clone().with_default_tag()]
        };
        if tags.is_empty() || self.store().lookup_tag(&tags[0])?.is_none() {
            return Err(TransferError::Message(format!(
                "An image does not exist locally with the tag: {}",
                if options.all_tags {
                    reference.familiar_name()
                } else {
                    tags[0].familiar_string()
                }
            )));
        }
        observer(&TransferEvent::PushRefersTo {
            repository: reference.name(),
        });
        let registry = registry_for(reference.domain())?;
        let mut out = Vec::new();
        for tag in &tags {
            out.push(self.push_tag(&registry, tag, observer)?);
        }
        Ok(out)
    }

    fn push_tag(
        &self,
        registry: &Registry,
        tag: &Reference,
        observer: Observer<'_>,
    ) -> Result<PushReport> {
        let store = self.store();
        let id = store.lookup_tag(tag)?.ok_or_else(|| {
            TransferError::Message(format!(
                "An image does not exist locally with the tag: {}",
                tag.familiar_string()
            ))
        })?;
        let record = store.image(&id)?;
        let (raw_config, config) = store.image_config(&id)?;
        let repo = tag.path();
        let diff_ids = &config.rootfs.diff_ids;

        let mut layers = Vec::with_capacity(diff_ids.len());
        let mut uploads = Vec::with_capacity(diff_ids.len());
        for diff_id in diff_ids {
            let (mut digest, mut media_type, mut size) =
                store.layer_blob(diff_id)?.ok_or_else(|| {
                    TransferError::Message(format!("layer {diff_id} has no stored blob to push"))
                })?;
            if is_uncompressed(&media_type) && compression_enabled() {
                (digest, media_type, size) = gzip_layer(self, diff_id, &digest)?;
            }
            uploads.push(Upload {
                id: diff_id.hex()[..12].to_string(),
                path: store.blob_path(&digest),
                digest: digest.clone(),
                size,
            });
            layers.push(Descriptor {
                media_type,
                digest,
                size,
                platform: None,
                urls: Vec::new(),
                annotations: None,
            });
        }
        let (manifest_bytes, media_type) =
            reuse_manifest(self, &record.manifest_digest, &id, &layers)
                .unwrap_or_else(|| build_manifest(&id, raw_config.len() as u64, layers));

        // Sibling repositories on the same registry that are known to hold this image's blobs.
        let mut siblings: Vec<String> = record
            .tags
            .iter()
            .chain(record.repo_digests.iter())
            .filter_map(|n| Reference::parse(n).ok())
            .filter(|r| r.domain() == tag.domain() && r.path() != repo)
            .map(|r| r.path().to_string())
            .collect();
        siblings.sort();
        siblings.dedup();

        for upload in &uploads {
            observer(&TransferEvent::Layer {
                id: upload.id.clone(),
                status: LayerStatus::Preparing,
            });
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error: Mutex<Option<TransferError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_TRANSFERS.min(uploads.len()) {
                scope.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= uploads.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let upload = &uploads[k];
                    match push_blob(registry, repo, upload, &siblings, observer) {
                        Ok(status) => observer(&TransferEvent::Layer {
                            id: upload.id.clone(),
                            status,
                        }),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().expect("lock").get_or_insert(e);
                        }
                    }
                });
            }
        });
        if let Some(err) = first_error.into_inner().expect("lock") {
            return Err(err);
        }
        let config_path = store.temp_path("push-config");
        std::fs::write(&config_path, &raw_config).map_err(|e| {
            TransferError::Message(format!("failed to write {}: {e}", config_path.display()))
        })?;
        let config_upload = Upload {
            id: String::new(),
            digest: id.clone(),
            size: raw_config.len() as u64,
            path: config_path.clone(),
        };
        let result = push_blob(registry, repo, &config_upload, &[], &super::quiet);
        let _ = std::fs::remove_file(&config_path);
        result?;

        let tag_name = tag.tag().unwrap_or("latest");
        let digest = registry.put_manifest(repo, tag_name, &manifest_bytes, &media_type)?;
        let size = manifest_bytes.len() as u64;
        observer(&TransferEvent::Pushed {
            tag: tag_name.to_string(),
            digest: digest.to_string(),
            size,
        });

        // Record where the image now lives, so `images --digests` shows it.
        if !store.has_blob(&digest) {
            store.put_blob(&manifest_bytes, Some(&digest))?;
        }
        let chain = ChainId::chain(diff_ids);
        let mut infos = Vec::with_capacity(chain.len());
        for (i, c) in chain.iter().enumerate() {
            infos.push(LayerInfo {
                chain_id: c.clone(),
                diff_id: diff_ids[i].clone(),
                size: store.layer_size(c)?,
                blob_digest: uploads[i].digest.clone(),
                blob_size: uploads[i].size,
                media_type: String::new(),
            });
        }
        let repo_digests = vec![format!("{}@{}", tag.name(), digest)];
        store.put_image(&NewImage {
            config: &raw_config,
            layers: &infos,
            parent: record.parent.clone(),
            manifest_digest: Some(digest.clone()),
            tags: &[],
            repo_digests: &repo_digests,
        })?;
        self.image_event("push", &tag.familiar_string(), &tag.familiar_string());
        Ok(PushReport {
            reference: tag.clone(),
            digest,
            size,
        })
    }
}

/// Makes one blob present in `repo`: already there, mounted from a sibling, or uploaded.
fn push_blob(
    registry: &Registry,
    repo: &str,
    upload: &Upload,
    siblings: &[String],
    observer: Observer<'_>,
) -> Result<LayerStatus> {
    if registry.blob_exists(repo, &upload.digest)?.is_some() {
        return Ok(LayerStatus::LayerAlreadyExists);
    }
    // One mount attempt: a refused mount opens an upload session, which the upload then uses.
    let mut location = None;
    if let Some(from) = siblings.first() {
        match registry.mount_blob(repo, &upload.digest, from)? {
            Mount::Mounted => return Ok(LayerStatus::MountedFrom(from.clone())),
            Mount::Upload(url) => location = Some(url),
        }
    }
    if !upload.id.is_empty() {
        observer(&TransferEvent::Progress {
            id: upload.id.clone(),
            status: LayerStatus::Pushing,
            current: 0,
            total: upload.size,
        });
    }
    // A failed PUT consumes its session: retry with a fresh one.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let url = match location.take() {
            Some(url) => url,
            None => registry.start_upload(repo)?,
        };
        match registry.put_blob(
            repo,
            url,
            &upload.digest,
            &Body::File(&upload.path, upload.size),
        ) {
            Ok(()) => break,
            Err(e) if attempt < 3 && e.is_transient() => {
                tracing::info!(digest = %upload.digest, %e, "retrying upload");
                std::thread::sleep(std::time::Duration::from_millis(300 * attempt));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !upload.id.is_empty() {
        observer(&TransferEvent::Progress {
            id: upload.id.clone(),
            status: LayerStatus::Pushing,
            current: upload.size,
            total: upload.size,
        });
    }
    Ok(LayerStatus::Pushed)
}

/// The manifest the image arrived with, when it still describes exactly what we push: pushing
/// it unchanged keeps the image's digest identical across registries.
fn reuse_manifest(
    engine: &Engine,
    digest: &Option<Digest>,
    config: &Digest,
    layers: &[Descriptor],
) -> Option<(Vec<u8>, String)> {
    let digest = digest.as_ref()?;
    let bytes = engine.store().read_blob(digest).ok()?;
    manifest::verify("manifest", &bytes, digest).ok()?;
    let parsed: ImageManifest = serde_json::from_slice(&bytes).ok()?;
    let same_layers = parsed.layers.len() == layers.len()
        && parsed
            .layers
            .iter()
            .zip(layers)
            .all(|(a, b)| a.digest == b.digest);
    if parsed.config.digest != *config || !same_layers {
        return None;
    }
    let media_type = parsed
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    Some((bytes, media_type))
}

/// A new manifest: Docker schema2 when every layer is gzip (what Docker itself pushes, readable
/// by every client), OCI otherwise (zstd or uncompressed layers).
fn build_manifest(
    config: &Digest,
    config_size: u64,
    mut layers: Vec<Descriptor>,
) -> (Vec<u8>, String) {
    let all_gzip = layers
        .iter()
        .all(|l| l.media_type == OCI_LAYER_GZIP || l.media_type == DOCKER_LAYER_GZIP);
    let (manifest_type, config_type) = if all_gzip {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    for layer in &mut layers {
        layer.media_type = match (all_gzip, layer.media_type.as_str()) {
            (true, _) => DOCKER_LAYER_GZIP.to_string(),
            (false, DOCKER_LAYER_GZIP) => OCI_LAYER_GZIP.to_string(),
            (false, "application/vnd.docker.image.rootfs.diff.tar") => OCI_LAYER_TAR.to_string(),
            (false, t) if t == OCI_LAYER_ZSTD || t == OCI_LAYER_TAR || t == OCI_LAYER_GZIP => {
                t.to_string()
            }
            (false, _) => OCI_LAYER_TAR.to_string(),
        };
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_string()),
        config: Descriptor {
            media_type: config_type.to_string(),
            digest: config.clone(),
            size: config_size,
            platform: None,
            urls: Vec::new(),
            annotations: None,
        },
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    (bytes, manifest_type.to_string())
}

/// Environment variable choosing how uncompressed layers (imported images) are pushed:
/// `gzip` (the default, what Docker pushes) or `none` (the tar as is, valid OCI).
pub const PUSH_COMPRESSION_ENV: &str = "BERTH_PUSH_COMPRESSION";

fn compression_enabled() -> bool {
    std::env::var(PUSH_COMPRESSION_ENV).map_or(true, |v| v != "none")
}

fn is_uncompressed(media_type: &str) -> bool {
    media_type == OCI_LAYER_TAR || media_type == "application/vnd.docker.image.rootfs.diff.tar"
}

/// Compresses an uncompressed layer blob into a gzip blob in the store (in parallel, hashing as it
/// is written) and records it as another blob of the same diff ID, so the next push finds it
/// ready (and the registry's HEAD answers "Layer already exists").
fn gzip_layer(
    engine: &Engine,
    diff_id: &berth_image::DiffId,
    tar: &Digest,
) -> Result<(Digest, String, u64)> {
    let store = engine.store();
    let path = store.blob_path(tar);
    let file = std::fs::File::open(&path)
        .map_err(|e| TransferError::Message(format!("failed to open {}: {e}", path.display())))?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let mut writer = store.blob_writer()?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let size = super::compress::gzip_parallel(&mut input, &mut writer, threads)
        .map_err(|e| TransferError::Message(format!("failed to compress layer {diff_id}: {e}")))?;
    let digest = writer.commit(None)?;
    // The store has no public call to record an extra blob for a layer; the row is the one
    // `Store::add_layer` writes.
    store
        .db()
        .conn()
        .execute(
            "INSERT OR IGNORE INTO layer_blobs (digest, diff_id, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![digest.to_string(), diff_id.to_string(), OCI_LAYER_GZIP, size as i64],
        )
        .map_err(crate::EngineError::from)?;
    Ok((digest, OCI_LAYER_GZIP.to_string(), size))
}
