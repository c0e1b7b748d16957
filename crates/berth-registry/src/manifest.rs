//! Manifests and indexes: OCI image manifest/index and Docker schema2 manifest/manifest list.
//!
//! Only the fields berth reads are modelled; manifests are always kept and pushed as the exact
//! bytes they arrived as, because their digest is computed over those bytes. Small serde types
//! are used rather than `oci-spec`'s because Docker's media types and unknown fields must pass
//! through untouched.

use std::collections::BTreeMap;

use berth_image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};
use crate::platform::Platform;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Every manifest type berth understands, for `Accept`.
pub const ACCEPT: &[&str] = &[
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image manifest (OCI or Docker schema2; the shapes are the same).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest of either kind.
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

impl Manifest {
    /// Parses manifest bytes, using the `Content-Type` the registry sent when the document does
    /// not name its own media type.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
            config: Option<serde_json::Value>,
        }
        let invalid = |e: serde_json::Error| RegistryError::InvalidManifest(e.to_string());
        let probe: Probe = serde_json::from_slice(bytes).map_err(invalid)?;
        if probe.schema_version != Some(2) {
            return Err(RegistryError::InvalidManifest(format!(
                "unsupported schema version {:?} (schema1 manifests are not supported)",
                probe.schema_version
            )));
        }
        let kind = probe
            .media_type
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()));
        let is_index = match kind.as_deref() {
            Some(OCI_INDEX) | Some(DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
            _ => probe.manifests.is_some() && probe.config.is_none(),
        };
        if is_index {
            Ok(Manifest::Index(
                serde_json::from_slice(bytes).map_err(invalid)?,
            ))
        } else {
            Ok(Manifest::Image(
                serde_json::from_slice(bytes).map_err(invalid)?,
            ))
        }
    }
}

impl ImageIndex {
    /// The entry for `want` (Docker/containerd order: the first exact match wins).
    pub fn select(&self, want: &Platform) -> Result<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| d.media_type != OCI_INDEX && d.media_type != DOCKER_MANIFEST_LIST)
            .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
            .ok_or_else(|| RegistryError::NoMatchingPlatform {
                wanted: want.to_string(),
            })
    }
}

/// The manifest media type that matches a layer media type family: Docker's for Docker media
/// types, OCI's otherwise.
pub fn is_docker_media_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

/// Verifies that `bytes` hash to `expected`.
pub fn verify(what: &str, bytes: &[u8], expected: &Digest) -> Result<()> {
    let actual = Digest::of(bytes);
    if actual != *expected {
        return Err(RegistryError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_indexes_from_manifests() {
        let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1,"platform":{"os":"linux","architecture":"arm64"}}]}"#;
        let Manifest::Index(index) = Manifest::parse(index, Some(OCI_INDEX)).unwrap() else {
            panic!("expected an index")
        };
        assert!(index
            .select(&Platform::parse("linux/arm64").unwrap())
            .is_ok());
        assert!(index
            .select(&Platform::parse("linux/amd64").unwrap())
            .is_err());
        let schema1 = br#"{"schemaVersion":1}"#;
        assert!(Manifest::parse(schema1, None).is_err());
    }
}
