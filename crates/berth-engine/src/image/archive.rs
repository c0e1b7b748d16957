//! `save` and `load`: image tars that Docker and OCI tools read.
//!
//! `save` writes what Docker 25+ writes: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) plus the docker-archive `manifest.json` and `repositories` that point into
//! the same blobs, so `docker load`, `oci-image-tool` and skopeo all read it. `load` reads that,
//! older docker-archive tars (`<id>/layer.tar`) and plain OCI layouts, gzipped or not.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use berth_image::config::{host_architecture, ImageConfig};
use berth_image::layer::decompressed;
use berth_image::reference::Reference;
use berth_image::store::{LayerInfo, LayerSource, NewImage};
use berth_image::{ChainId, Digest};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::io_error;
use crate::{Engine, EngineError, Result};

const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MEDIA_TYPE_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What `load` reports for each image.
#[derive(Debug, Clone)]
pub enum LoadedImage {
    /// `Loaded image: busybox:latest`
    Tagged(String),
    /// `Loaded image ID: sha256:…`
    Untagged(Digest),
}

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(message.into())
}

impl Engine {
    /// Writes the named images as one tar to `out`.
    pub fn save_images(&self, names: &[String], out: &mut dyn Write) -> Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut written: std::collections::HashSet<Digest> = Default::default();
        let mut archive_manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut ids: Vec<Digest> = Vec::new();
        let mut tags_of: HashMap<Digest, Vec<Reference>> = HashMap::new();

        for name in names {
            let id = self.resolve_image(name)?;
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
            // A name saves that tag; an ID saves the image with all its tags, as Docker does.
            let reference = Reference::parse(name).ok().filter(|_| {
                !id.hex()
                    .starts_with(name.strip_prefix("sha256:").unwrap_or(name))
            });
            let entry = tags_of.entry(id.clone()).or_default();
            match reference {
                Some(r) if r.digest().is_none() => entry.push(r.with_default_tag()),
                Some(_) => {}
                None => {
                    for tag in self.store().image(&id)?.tags {
                        if let Ok(r) = Reference::parse(&tag) {
                            entry.push(r);
                        }
                    }
                }
            }
        }

        for id in &ids {
            let (raw_config, config) = self.store().image_config(id)?;
            let mut put = |tar: &mut tar::Builder<&mut dyn Write>,
                           digest: &Digest,
                           path: &Path|
             -> Result<()> {
                if written.insert(digest.clone()) {
                    let name = format!("blobs/sha256/{}", digest.hex());
                    tar.append_path_with_name(path, &name)
                        .map_err(io_error("write to the archive", path))?;
                }
                Ok(())
            };
            put(&mut tar, id, &self.store().blob_path(id))?;
            let mut layer_paths = Vec::new();
            let mut layer_descriptors = Vec::new();
            for diff_id in &config.rootfs.diff_ids {
                let (digest, media_type, size) = self
                    .store()
                    .layer_blob(diff_id)?
                    .ok_or_else(|| EngineError::NotFound(format!("no blob for layer {diff_id}")))?;
                put(&mut tar, &digest, &self.store().blob_path(&digest))?;
                layer_paths.push(format!("blobs/sha256/{}", digest.hex()));
                layer_descriptors.push(
                    json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size }),
                );
            }
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                "config": { "mediaType": MEDIA_TYPE_OCI_CONFIG, "digest": id.to_string(), "size": raw_config.len() },
                "layers": layer_descriptors,
            }))
            .expect("manifest serialises");
            let manifest_digest = Digest::of(&manifest);
            if written.insert(manifest_digest.clone()) {
                append_bytes(
                    &mut tar,
                    &format!("blobs/sha256/{}", manifest_digest.hex()),
                    &manifest,
                )?;
            }
            let tags = tags_of.remove(id).unwrap_or_default();
            let platform = json!({ "architecture": config.architecture, "os": config.os });
            if tags.is_empty() {
                index.push(json!({
                    "mediaType": MEDIA_TYPE_OCI_MANIFEST, "digest": manifest_digest.to_string(),
                    "size": manifest.len(), "platform": platform,
                }));
            }
            for tag in &tags {
                index.push(json!({
                    "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                    "digest": manifest_digest.to_string(),
                    "size": manifest.len(),
                    "platform": platform,
                    "annotations": {
                        "io.containerd.image.name": tag.to_string(),
                        "org.opencontainers.image.ref.name": tag.tag().unwrap_or("latest"),
                    }
                }));
                let top = ChainId::chain(&config.rootfs.diff_ids)
                    .last()
                    .map(|c| c.hex().to_string());
                if let Some(top) = top {
                    repositories
                        .entry(tag.familiar_name())
                        .or_default()
                        .insert(tag.tag().unwrap_or("latest").to_string(), top);
                }
            }
            let repo_tags: Vec<String> = tags.iter().map(Reference::familiar_string).collect();
            archive_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", id.hex()),
                "RepoTags": if repo_tags.is_empty() { Value::Null } else { json!(repo_tags) },
                "Layers": layer_paths,
            }));
        }
        let index =
            json!({ "schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": index });
        append_bytes(
            &mut tar,
            "index.json",
            &serde_json::to_vec(&index).expect("json"),
        )?;
        append_bytes(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&archive_manifest).expect("json"),
        )?;
        append_bytes(
            &mut tar,
            "oci-layout",
            br#"{"imageLayoutVersion": "1.0.0"}"#,
        )?;
        if !repositories.is_empty() {
            append_bytes(
                &mut tar,
                "repositories",
                &serde_json::to_vec(&repositories).expect("json"),
            )?;
        }
        tar.into_inner()
            .map_err(io_error("finish", Path::new("the archive")))?;
        ids.iter().for_each(|id| self.image_id_event("save", id));
        Ok(())
    }

    /// Loads every image of a docker-archive or OCI-layout tar (optionally gzip/zstd-compressed).
    pub fn load_images(&self, input: impl Read) -> Result<Vec<LoadedImage>> {
        let staging = Staging::new(self.store().temp_path("load"))?;
        let reader = decompressed(io::BufReader::with_capacity(1 << 20, input))
            .map_err(io_error("decompress", Path::new("the archive")))?;
        staging.unpack(reader)?;

        if staging.path("manifest.json").exists() {
            self.load_docker_archive(&staging)
        } else if staging.path("index.json").exists() {
            self.load_oci_layout(&staging)
        } else {
            Err(invalid(
                "invalid archive: neither manifest.json nor index.json found",
            ))
        }
    }

    fn load_docker_archive(&self, staging: &Staging) -> Result<Vec<LoadedImage>> {
        let text = staging.read("manifest.json")?;
        let manifests: Vec<ArchiveManifest> = serde_json::from_slice(&text)
            .map_err(|e| invalid(format!("invalid manifest.json: {e}")))?;
        let mut loaded = Vec::new();
        for manifest in manifests {
            let config = staging.read(&manifest.config)?;
            let expected = config_digest_from_path(&manifest.config);
            let mut tags = Vec::new();
            for tag in manifest.repo_tags.unwrap_or_default() {
                tags.push(super::parse_reference(&tag)?.with_default_tag());
            }
            let layers: Vec<(PathBuf, Option<Digest>, Option<String>)> = manifest
                .layers
                .iter()
                .map(|l| (staging.path(l), blob_digest_from_path(l), None))
                .collect();
            loaded.extend(self.load_one(&config, expected.as_ref(), &layers, &tags, None)?);
        }
        Ok(loaded)
    }

    fn load_oci_layout(&self, staging: &Staging) -> Result<Vec<LoadedImage>> {
        let index: Value = serde_json::from_slice(&staging.read("index.json")?)
            .map_err(|e| invalid(format!("invalid index.json: {e}")))?;
        let mut loaded = Vec::new();
        for descriptor in index["manifests"].as_array().cloned().unwrap_or_default() {
            let name = descriptor["annotations"]["io.containerd.image.name"]
                .as_str()
                .or_else(|| descriptor["annotations"]["org.opencontainers.image.ref.name"].as_str())
                .and_then(|n| Reference::parse(n).ok())
                .filter(|r| r.tag().is_some() || r.digest().is_none());
            let manifest_digest = descriptor_digest(&descriptor)?;
            let (manifest_digest, manifest) = self.resolve_platform(staging, manifest_digest)?;
            let config_digest = descriptor_digest(&manifest["config"])?;
            let config = staging.blob(&config_digest)?;
            let mut layers = Vec::new();
            for layer in manifest["layers"].as_array().cloned().unwrap_or_default() {
                let digest = descriptor_digest(&layer)?;
                layers.push((
                    staging.path(&format!("blobs/sha256/{}", digest.hex())),
                    Some(digest),
                    layer["mediaType"].as_str().map(str::to_string),
                ));
            }
            let tags: Vec<Reference> = name.into_iter().map(Reference::with_default_tag).collect();
            loaded.extend(self.load_one(
                &config,
                Some(&config_digest),
                &layers,
                &tags,
                Some(manifest_digest),
            )?);
        }
        Ok(loaded)
    }

    /// Follows an index to the manifest for this machine's platform.
    fn resolve_platform(&self, staging: &Staging, digest: Digest) -> Result<(Digest, Value)> {
        let bytes = staging.blob(&digest)?;
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("invalid manifest {digest}: {e}")))?;
        let media_type = doc["mediaType"].as_str().unwrap_or_default();
        if media_type == MEDIA_TYPE_OCI_INDEX
            || media_type == MEDIA_TYPE_DOCKER_LIST
            || doc.get("manifests").is_some()
        {
            let manifests = doc["manifests"].as_array().cloned().unwrap_or_default();
            let chosen = manifests
                .iter()
                .find(|m| {
                    m["platform"]["architecture"] == host_architecture()
                        && m["platform"]["os"] == "linux"
                })
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "no manifest for linux/{} in {digest}",
                        host_architecture()
                    ))
                })?;
            let next = descriptor_digest(chosen)?;
            if !staging
                .path(&format!("blobs/sha256/{}", next.hex()))
                .exists()
            {
                return Err(EngineError::NotFound(format!(
                    "manifest {next} is not in the archive"
                )));
            }
            return self.resolve_platform(staging, next);
        }
        if !(media_type.is_empty()
            || media_type == MEDIA_TYPE_OCI_MANIFEST
            || media_type == MEDIA_TYPE_DOCKER_MANIFEST)
        {
            return Err(invalid(format!(
                "unsupported manifest media type {media_type}"
            )));
        }
        Ok((digest, doc))
    }

    /// Stores one image's layers and config, verifying each against the config's diff IDs.
    fn load_one(
        &self,
        raw_config: &[u8],
        expected_config: Option<&Digest>,
        layers: &[(PathBuf, Option<Digest>, Option<String>)],
        tags: &[Reference],
        manifest_digest: Option<Digest>,
    ) -> Result<Vec<LoadedImage>> {
        let actual = Digest::of(raw_config);
        if let Some(expected) = expected_config {
            if *expected != actual {
                return Err(invalid(format!(
                    "config digest mismatch: expected {expected}, got {actual}"
                )));
            }
        }
        let config = ImageConfig::from_slice(raw_config)
            .map_err(|e| invalid(format!("invalid image config: {e}")))?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "image {actual} lists {} layers in its config but the archive has {}",
                config.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let chain = ChainId::chain(&config.rootfs.diff_ids);
        let mut stored: Vec<LayerInfo> = Vec::new();
        for (i, (path, blob_digest, media_type)) in layers.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| chain[p].clone());
            let diff_id = &config.rootfs.diff_ids[i];
            if self.store().has_layer(&chain[i])? {
                stored.push(self.store().layer_info(&chain[i])?);
                continue;
            }
            let file = File::open(path).map_err(io_error("open layer", path))?;
            let source = LayerSource {
                blob_digest: blob_digest.clone(),
                diff_id: Some(diff_id.clone()),
                media_type: media_type.clone(),
            };
            stored.push(self.store().add_layer(parent.as_ref(), file, &source)?);
        }
        let id = self.store().put_image(&NewImage {
            config: raw_config,
            layers: &stored,
            parent: None,
            manifest_digest,
            tags,
            repo_digests: &[],
        })?;
        self.image_id_event("load", &id);
        Ok(if tags.is_empty() {
            vec![LoadedImage::Untagged(id)]
        } else {
            tags.iter()
                .map(|t| LoadedImage::Tagged(t.familiar_string()))
                .collect()
        })
    }
}

fn append_bytes(tar: &mut tar::Builder<&mut dyn Write>, name: &str, data: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, data)
        .map_err(io_error("write to the archive", Path::new(name)))
}

fn descriptor_digest(descriptor: &Value) -> Result<Digest> {
    descriptor["digest"]
        .as_str()
        .ok_or_else(|| invalid("descriptor without a digest"))?
        .parse()
        .map_err(|e| invalid(format!("invalid descriptor digest: {e}")))
}

/// `blobs/sha256/<hex>` names its own digest; legacy `<id>/layer.tar` does not.
fn blob_digest_from_path(path: &str) -> Option<Digest> {
    path.strip_prefix("blobs/sha256/")
        .and_then(|hex| Digest::from_hex(hex).ok())
}

/// Legacy archives name the config `<hex>.json`; Docker 25+ `blobs/sha256/<hex>`.
fn config_digest_from_path(path: &str) -> Option<Digest> {
    blob_digest_from_path(path).or_else(|| {
        path.strip_suffix(".json")
            .and_then(|h| Digest::from_hex(h).ok())
    })
}

/// The archive's files, extracted under the store's `tmp/` and removed when done.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new(dir: PathBuf) -> Result<Staging> {
        fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        Ok(Staging { dir })
    }

    /// Extracts the regular files of the archive. Only plain relative paths are accepted: the
    /// archive is untrusted, and nothing in it may land outside the staging directory.
    fn unpack(&self, reader: impl Read) -> Result<()> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(io_error("read", Path::new("the archive")))?;
        for entry in entries {
            let mut entry = entry.map_err(io_error("read", Path::new("the archive")))?;
            let kind = entry.header().entry_type();
            let path = entry
                .path()
                .map_err(io_error("read", Path::new("the archive")))?
                .into_owned();
            if !path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(invalid(format!(
                    "invalid archive: unsafe path {}",
                    path.display()
                )));
            }
            let target = self.dir.join(&path);
            match kind {
                tar::EntryType::Directory => {
                    fs::create_dir_all(&target).map_err(io_error("create", &target))?
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent).map_err(io_error("create", parent))?;
                    }
                    let mut file = File::create(&target).map_err(io_error("create", &target))?;
                    io::copy(&mut entry, &mut file).map_err(io_error("write", &target))?;
                }
                // Legacy archives link identical layers to each other.
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let Some(link) = entry.link_name().ok().flatten() else {
                        continue;
                    };
                    let base = if kind == tar::EntryType::Symlink {
                        path.parent().unwrap_or(Path::new(""))
                    } else {
                        Path::new("")
                    };
                    let resolved = normalize(&base.join(link)).ok_or_else(|| {
                        invalid(format!("invalid archive: link {} escapes", path.display()))
                    })?;
                    let source = self.dir.join(resolved);
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent).map_err(io_error("create", parent))?;
                    }
                    fs::copy(&source, &target).map_err(io_error("copy linked file", &source))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn path(&self, relative: &str) -> PathBuf {
        match normalize(Path::new(relative)) {
            Some(clean) => self.dir.join(clean),
            None => self.dir.join("\0invalid"),
        }
    }

    fn read(&self, relative: &str) -> Result<Vec<u8>> {
        let path = self.path(relative);
        fs::read(&path).map_err(|_| invalid(format!("invalid archive: {relative} is missing")))
    }

    fn blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let bytes = self.read(&format!("blobs/sha256/{}", digest.hex()))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(invalid(format!(
                "digest mismatch for blob {digest}: got {actual}"
            )));
        }
        Ok(bytes)
    }
}

/// Resolves `.` and `..` lexically; `None` when the path climbs out of its root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
