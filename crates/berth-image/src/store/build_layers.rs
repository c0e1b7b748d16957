//! Layers made by `berth build`: a directory that is already in overlay form (an overlay upper
//! dir after a RUN, or a tree a COPY wrote) becomes a layer by packing it once into its blob and
//! renaming the directory itself into `layers/`, with no second unpack.
//!
//! Crash safety is `layers.rs`'s: the blob is hashed as it is written and renamed into place by
//! [`BlobWriter::commit`](super::BlobWriter::commit), then `Store::record_layer` moves the
//! directory into `layers/` and records it.

use std::fs;
use std::path::Path;

use rusqlite::OptionalExtension;

use super::layers::{RecordedLayer, MEDIA_TYPE_LAYER_TAR};
use super::{LayerInfo, Result, Store, StoreError};
use crate::digest::{ChainId, DiffId};
use crate::layer::{self, PackOptions};

impl Store {
    /// Registers `dir` (under this store's `tmp/`, in overlay form: whiteouts as 0:0 character
    /// devices) as the layer on top of `parent`. The diff is packed uncompressed into the blob
    /// (so the blob digest is the diff ID), mtimes clamped to `clamp_mtime` when given. The
    /// directory is moved into `layers/` (or removed when that layer already exists); on error
    /// it is left for the caller to remove.
    pub fn add_layer_dir(
        &self,
        parent: Option<&ChainId>,
        dir: &Path,
        clamp_mtime: Option<i64>,
    ) -> Result<LayerInfo> {
        let mut blob_writer = self.blob_writer()?;
        let opts = PackOptions {
            clamp_mtime,
            ..PackOptions::default()
        };
        layer::pack_diff_with(dir, &mut blob_writer, &opts)?;
        let blob_size = blob_writer.written();
        let blob_digest = blob_writer.commit(None)?;
        let diff_id = DiffId(blob_digest.clone());
        let size = content_size(dir);
        let chain_id = self.record_layer(&RecordedLayer {
            dir,
            parent,
            diff_id: &diff_id,
            size,
            blob_digest: &blob_digest,
            blob_size,
            media_type: MEDIA_TYPE_LAYER_TAR,
        })?;
        Ok(LayerInfo {
            chain_id,
            diff_id,
            size,
            blob_digest,
            blob_size,
            media_type: MEDIA_TYPE_LAYER_TAR.to_string(),
        })
    }

    /// The record of a stored layer, with the blob it is kept as.
    pub fn layer_info(&self, chain_id: &ChainId) -> Result<LayerInfo> {
        let (diff_id, size): (String, i64) = self
            .db()
            .conn()
            .query_row(
                "SELECT diff_id, size FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::LayerNotFound(chain_id.to_string()))?;
        let diff_id = DiffId(diff_id.parse()?);
        let (blob_digest, media_type, blob_size) = self
            .layer_blob(&diff_id)?
            .ok_or_else(|| StoreError::LayerNotFound(chain_id.to_string()))?;
        Ok(LayerInfo {
            chain_id: chain_id.clone(),
            diff_id,
            size: size as u64,
            blob_digest,
            blob_size,
            media_type,
        })
    }
}

/// Bytes of regular-file content under `dir` (the `size` column, as `add_layer` records it).
fn content_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => total += entry.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}
