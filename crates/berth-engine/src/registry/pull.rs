//! `pull`: manifest (or index → platform manifest), config, then the missing layers, streamed
//! straight into the store (download, hash, decompress and unpack in one pass per layer).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use berth_image::config::ImageConfig;
use berth_image::reference::Reference;
use berth_image::store::{LayerInfo, LayerSource, NewImage};
use berth_image::{ChainId, Digest};
use berth_registry::manifest::{Descriptor, DOCKER_LAYER_FOREIGN};
use berth_registry::{BlobReader, Manifest, Platform, Registry, RegistryError};

use super::spool::Spool;
use super::{
    parse, registry_for, short, LayerStatus, Observer, Result, TransferError, TransferEvent,
    PARALLEL_TRANSFERS,
};
use crate::Engine;

/// Largest config blob accepted.
const MAX_CONFIG: u64 = 32 << 20;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform os/arch[/variant]`; the host's platform when `None`.
    pub platform: Option<String>,
    /// `-a/--all-tags`.
    pub all_tags: bool,
}

/// `--pull` for `run`, `create` and `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = crate::EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" | "true" => Ok(PullPolicy::Always),
            "never" | "false" => Ok(PullPolicy::Never),
            other => Err(crate::EngineError::InvalidArgument(format!(
                "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
            ))),
        }
    }
}

/// What one pulled reference became.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The reference pulled, normalised, with its tag or digest.
    pub reference: Reference,
    pub image_id: Digest,
    /// The digest the reference resolved to (an index's when it was one): the RepoDigest.
    pub digest: Digest,
    /// Whether anything changed: layers downloaded or the name moved (Docker's "Downloaded
    /// newer image" versus "Image is up to date").
    pub updated: bool,
    pub layers_downloaded: usize,
}

impl Engine {
    /// `pull NAME[:TAG|@DIGEST]`, or every tag of NAME with `all_tags`.
    pub fn pull(
        &self,
        name: &str,
        options: &PullOptions,
        observer: Observer<'_>,
    ) -> Result<Vec<PullReport>> {
        let reference = parse(name)?;
        let platform = match &options.platform {
            Some(p) => Some(Platform::parse(p)?),
            None => None,
        };
        let registry = registry_for(reference.domain())?;
        if options.all_tags {
            if !reference.is_name_only() {
                return Err(TransferError::Message(
                    "tag can't be used with --all-tags/-a".into(),
                ));
            }
            let mut tags = registry
                .tags(reference.path())
                .map_err(|e| access_denied(&reference, e))?;
            tags.sort();
            let mut out = Vec::new();
            for tag in tags {
                let tagged = reference
                    .with_tag(&tag)
                    .map_err(|e| TransferError::Message(e.to_string()))?;
                out.push(self.pull_one(&registry, &tagged, platform.as_ref(), observer)?);
            }
            return Ok(out);
        }
        let reference = reference.with_default_tag();
        Ok(vec![self.pull_one(
            &registry,
            &reference,
            platform.as_ref(),
            observer,
        )?])
    }

    /// Pulls one tag or digest reference.
    pub fn pull_one(
        &self,
        registry: &Registry,
        reference: &Reference,
        platform: Option<&Platform>,
        observer: Observer<'_>,
    ) -> Result<PullReport> {
        let store = self.store();
        let repo = reference.path();
        let tag_or_digest = match reference.digest() {
            Some(d) => d.to_string(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        observer(&TransferEvent::Pulling {
            tag_or_digest: tag_or_digest.clone(),
            repository: repo.to_string(),
        });

        let (bytes, content_type, digest) = registry
            .get_manifest(repo, &tag_or_digest)
            .map_err(|e| access_denied(reference, e))?;
        let repo_digest = digest.clone();
        let mut index_blob = None;
        let (manifest_bytes, manifest_digest, manifest) =
            match Manifest::parse(&bytes, content_type.as_deref())? {
                Manifest::Image(m) => (bytes, digest, m),
                Manifest::Index(index) => {
                    let want = platform.cloned().unwrap_or_else(Platform::host);
                    let entry = index.select(&want)?;
                    let (child, child_type, child_digest) =
                        registry.get_manifest(repo, &entry.digest.to_string())?;
                    let Manifest::Image(m) =
                        Manifest::parse(&child, child_type.as_deref().or(Some(&entry.media_type)))?
                    else {
                        return Err(RegistryError::InvalidManifest(
                            "an index entry is itself an index".into(),
                        )
                        .into());
                    };
                    index_blob = Some((bytes, digest));
                    (child, child_digest, m)
                }
            };

        // The config: reuse ours when the image is already in the store.
        let config_digest = manifest.config.digest.clone();
        let raw_config = match store.image_config(&config_digest) {
            Ok((raw, _)) => raw,
            Err(_) => registry.get_blob_bytes(repo, &config_digest, MAX_CONFIG)?,
        };
        let config = ImageConfig::from_slice(&raw_config).map_err(|e| {
            TransferError::Message(format!("invalid image config {config_digest}: {e}"))
        })?;
        if let Some(want) = platform {
            let have = Platform {
                os: config.os.clone(),
                architecture: config.architecture.clone(),
                variant: config.variant.clone(),
                os_version: None,
            };
            if !want.matches(&have) {
                return Err(TransferError::Message(format!(
                    "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {have}",
                    reference.familiar_string()
                )));
            }
        }
        let layers: Vec<&Descriptor> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type != DOCKER_LAYER_FOREIGN)
            .collect();
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != layers.len() {
            return Err(RegistryError::InvalidManifest(format!(
                "manifest has {} layers but the image config lists {} diff IDs",
                layers.len(),
                diff_ids.len()
            ))
            .into());
        }
        let chain = ChainId::chain(diff_ids);
        let mut missing = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let id = short(&layer.digest);
            if store.has_layer(&chain[i])? {
                observer(&TransferEvent::Layer {
                    id,
                    status: LayerStatus::AlreadyExists,
                });
            } else {
                observer(&TransferEvent::Layer {
                    id,
                    status: LayerStatus::PullingFsLayer,
                });
                missing.push(i);
            }
        }
        download_layers(
            self, registry, repo, &layers, diff_ids, &chain, &missing, observer,
        )?;

        let mut infos = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            infos.push(LayerInfo {
                chain_id: chain[i].clone(),
                diff_id: diff_ids[i].clone(),
                size: store.layer_size(&chain[i])?,
                blob_digest: layer.digest.clone(),
                blob_size: layer.size,
                media_type: layer.media_type.clone(),
            });
        }
        // Manifests are kept exactly as served (verified above), so a later push can reuse them.
        for (blob, digest) in [(&manifest_bytes, &manifest_digest)]
            .into_iter()
            .chain(index_blob.as_ref().map(|(b, d)| (b, d)))
        {
            if !store.has_blob(digest) {
                store.put_blob(blob, Some(digest))?;
            }
        }
        let previous = match reference.digest() {
            Some(_) => store.resolve(&reference.to_string()).ok(),
            None => store.lookup_tag(reference)?,
        };
        let tags: Vec<Reference> = if reference.digest().is_none() {
            vec![reference.clone()]
        } else {
            Vec::new()
        };
        let repo_digests = vec![format!("{}@{}", reference.name(), repo_digest)];
        let image_id = store.put_image(&NewImage {
            config: &raw_config,
            layers: &infos,
            parent: None,
            manifest_digest: Some(manifest_digest),
            tags: &tags,
            repo_digests: &repo_digests,
        })?;
        self.image_event(
            "pull",
            &reference.familiar_string(),
            &reference.familiar_string(),
        );
        Ok(PullReport {
            reference: reference.clone(),
            updated: !missing.is_empty() || previous.as_ref() != Some(&image_id),
            image_id,
            digest: repo_digest,
            layers_downloaded: missing.len(),
        })
    }
}

/// Downloads the `missing` layers with up to [`PARALLEL_TRANSFERS`] connections and adds them
/// to the store in order, each while it is still arriving.
#[allow(clippy::too_many_arguments)]
fn download_layers(
    engine: &Engine,
    registry: &Registry,
    repo: &str,
    layers: &[&Descriptor],
    diff_ids: &[berth_image::DiffId],
    chain: &[ChainId],
    missing: &[usize],
    observer: Observer<'_>,
) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let store = engine.store();
    let spools: Vec<Spool> = missing
        .iter()
        .map(|&i| Spool::create(store.temp_path(&format!("pull-{}", short(&layers[i].digest)))))
        .collect::<std::io::Result<_>>()
        .map_err(|e| TransferError::Message(format!("failed to create download file: {e}")))?;
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_TRANSFERS.min(missing.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= missing.len() || abort.load(Ordering::Relaxed) {
                    break;
                }
                let layer = layers[missing[k]];
                let id = short(&layer.digest);
                let total = layer.size;
                let mut last = 0u64;
                let reader = BlobReader::open(registry, repo, &layer.digest, layer.size);
                match reader {
                    Ok(reader) => {
                        let id2 = id.clone();
                        let mut reader = reader.on_progress(move |current| {
                            if current - last >= 512 * 1024 || current == total {
                                last = current;
                                observer(&TransferEvent::Progress {
                                    id: id2.clone(),
                                    status: LayerStatus::Downloading,
                                    current,
                                    total,
                                });
                            }
                        });
                        if !spools[k].fill(&mut reader, &abort) {
                            continue;
                        }
                        observer(&TransferEvent::Layer {
                            id: id.clone(),
                            status: LayerStatus::VerifyingChecksum,
                        });
                        observer(&TransferEvent::Layer {
                            id,
                            status: LayerStatus::DownloadComplete,
                        });
                    }
                    Err(e) => spools[k].finish(Some(e.to_string())),
                }
            });
        }
        let result = (|| -> Result<()> {
            for (k, &i) in missing.iter().enumerate() {
                let layer = layers[i];
                let reader = spools[k]
                    .reader()
                    .map_err(|e| TransferError::Message(format!("failed to read download: {e}")))?;
                let parent = if i == 0 { None } else { Some(&chain[i - 1]) };
                let source = LayerSource {
                    blob_digest: Some(layer.digest.clone()),
                    diff_id: Some(diff_ids[i].clone()),
                    media_type: Some(layer.media_type.clone()),
                };
                observer(&TransferEvent::Layer {
                    id: short(&layer.digest),
                    status: LayerStatus::Extracting,
                });
                if let Err(err) = store.add_spooled_layer(parent, reader, spools[k].path(), &source)
                {
                    // A corrupted download usually fails decompression before the digest check;
                    // hash what arrived to say which it was.
                    if let Ok(actual) = spools[k].wait_and_hash() {
                        if actual != layer.digest {
                            return Err(TransferError::Message(format!(
                                "filesystem layer verification failed for digest {}: got {actual}",
                                layer.digest
                            )));
                        }
                    }
                    return Err(layer_error(&layer.digest, err));
                }
                observer(&TransferEvent::Layer {
                    id: short(&layer.digest),
                    status: LayerStatus::PullComplete,
                });
            }
            Ok(())
        })();
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        result
    })
}

fn layer_error(digest: &Digest, err: berth_image::store::StoreError) -> TransferError {
    use berth_image::store::StoreError;
    match err {
        StoreError::DigestMismatch { expected, actual, what } => TransferError::Message(format!(
            "failed to register layer {digest}: {what} verification failed: expected {expected}, got {actual}"
        )),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            TransferError::Message(format!("failed to register layer {digest}: {text}"))
        }
    }
}

/// Docker's wording for a repository or tag the registry does not give us.
fn access_denied(reference: &Reference, err: RegistryError) -> TransferError {
    match err {
        RegistryError::Unauthorized(detail) => TransferError::Message(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {detail}",
            reference.familiar_name()
        )),
        RegistryError::NotFound(detail) => TransferError::Registry(RegistryError::NotFound(format!(
            "manifest for {} not found: {}",
            reference.familiar_string(),
            detail.split(" not found: ").last().unwrap_or(&detail)
        ))),
        other => other.into(),
    }
}

impl Engine {
    /// The image `name` names, pulled first as `policy` says: what `run`, `create` and build
    /// `FROM` call. With `missing`, a local image is used as is (if `platform` is given it must
    /// match); `always` pulls every time; `never` fails when the image is not local.
    pub fn ensure_image(
        &self,
        name: &str,
        policy: PullPolicy,
        platform: Option<&str>,
        observer: Observer<'_>,
    ) -> Result<Digest> {
        let local = self.store().resolve(name).ok();
        let wanted = platform.map(Platform::parse).transpose()?;
        let local_fits = |id: &Digest| -> bool {
            let Some(want) = &wanted else { return true };
            self.store().image_config(id).is_ok_and(|(_, c)| {
                want.matches(&Platform {
                    os: c.os,
                    architecture: c.architecture,
                    variant: c.variant,
                    os_version: None,
                })
            })
        };
        match (policy, local) {
            (PullPolicy::Never, Some(id)) => Ok(id),
            (PullPolicy::Never, None) => {
                Err(crate::EngineError::NotFound(format!("No such image: {name}")).into())
            }
            (PullPolicy::Missing, Some(id)) if local_fits(&id) => Ok(id),
            _ => {
                let options = PullOptions {
                    platform: platform.map(str::to_string),
                    all_tags: false,
                };
                let report = self.pull(name, &options, observer)?;
                Ok(report.into_iter().next().expect("one report").image_id)
            }
        }
    }
}
