//! Layers made by `berth build`: a directory that is already in overlay form (an overlay upper
//! dir after a RUN, or a tree a COPY wrote) becomes a layer by packing it once into its blob and
//! renaming the directory itself into `layers/`, with no second unpack.
//!
//! Crash safety follows `layers.rs`: the blob is hashed as it is written and renamed into place
//! by [`BlobWriter::commit`](super::BlobWriter::commit); the directory is renamed into `layers/`
//! and its row inserted inside one write transaction, after the filesystem was synced.

use std::fs;
use std::path::Path;

use rusqlite::{params, OptionalExtension};

use super::layers::MEDIA_TYPE_LAYER_TAR;
use super::{io_err, remove_any, LayerInfo, Result, Store, StoreError};
use crate::digest::{ChainId, DiffId, Digest};
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
            filter: None,
        };
        layer::pack_diff_with(dir, &mut blob_writer, &opts)?;
        let blob_size = blob_writer.written();
        let blob_digest = blob_writer.commit(None)?;
        let diff_id = DiffId(blob_digest.clone());
        let chain_id = match parent {
            None => ChainId(diff_id.0.clone()),
            Some(parent) => ChainId(Digest::of(format!("{parent} {diff_id}").as_bytes())),
        };
        let size = content_size(dir);

        sync_filesystem(dir)?;
        let tx = self.db().write()?;
        let recorded: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if recorded.is_none() {
            let target = self.layer_dir(&chain_id);
            remove_any(&target);
            fs::rename(dir, &target).map_err(io_err("rename layer into", &target))?;
            tx.execute(
                "INSERT INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
                params![
                    chain_id.to_string(),
                    diff_id.to_string(),
                    parent.map(|p| p.to_string()),
                    size as i64
                ],
            )?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO layer_blobs (digest, diff_id, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            params![blob_digest.to_string(), diff_id.to_string(), MEDIA_TYPE_LAYER_TAR, blob_size as i64],
        )?;
        tx.commit()?;
        if recorded.is_some() {
            remove_any(dir);
        }
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

fn sync_filesystem(path: &Path) -> Result<()> {
    let dir = fs::File::open(path).map_err(io_err("open", path))?;
    rustix::fs::syncfs(&dir).map_err(|e| StoreError::Io {
        action: "sync filesystem of",
        path: path.to_path_buf(),
        source: e.into(),
    })
}
