//! Unpacked layers under `layers/<chain id hex>/`, each usable directly as an overlayfs lower dir.
//!
//! A layer arrives as a blob stream (compressed or not). One pass over it stores the blob,
//! hashes it, decompresses it, hashes the tar (the diff ID) and unpacks it, so a layer is read
//! exactly once however it arrives.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::{io_err, remove_any, Result, Store, StoreError};
use crate::digest::{ChainId, DiffId, Digest};
use crate::layer::{self, Compression, TeeHasher, UnpackOptions};

/// What the caller knows about an incoming layer blob; known digests are verified.
#[derive(Debug, Clone, Default)]
pub struct LayerSource {
    /// Digest of the blob as it arrives (a manifest's layer descriptor).
    pub blob_digest: Option<Digest>,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Option<DiffId>,
    /// Media type to record for the blob; derived from its compression when `None`.
    pub media_type: Option<String>,
}

/// A layer in the store.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub chain_id: ChainId,
    pub diff_id: DiffId,
    /// Bytes of file content once unpacked.
    pub size: u64,
    /// The blob this layer arrived as.
    pub blob_digest: Digest,
    pub blob_size: u64,
    pub media_type: String,
}

pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

impl Store {
    /// The directory of an unpacked layer.
    pub fn layer_dir(&self, chain_id: &ChainId) -> PathBuf {
        self.root().join("layers").join(chain_id.hex())
    }

    /// Whether the layer is recorded (and therefore complete) in the store.
    pub fn has_layer(&self, chain_id: &ChainId) -> Result<bool> {
        let found: Option<i64> = self
            .db()
            .conn()
            .query_row(
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Unpacked size of a stored layer.
    pub fn layer_size(&self, chain_id: &ChainId) -> Result<u64> {
        self.db()
            .conn()
            .query_row(
                "SELECT size FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64)
            .ok_or_else(|| StoreError::LayerNotFound(chain_id.to_string()))
    }

    /// A stored blob holding the tar of `diff_id`, with its media type, if the store has one.
    pub fn layer_blob(&self, diff_id: &DiffId) -> Result<Option<(Digest, String, u64)>> {
        let row: Option<(String, String, i64)> = self
            .db()
            .conn()
            .query_row(
                "SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ?1
                 ORDER BY media_type = ?2 DESC LIMIT 1",
                params![diff_id.to_string(), MEDIA_TYPE_LAYER_GZIP],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            Some((digest, media_type, size)) => {
                Ok(Some((digest.parse()?, media_type, size as u64)))
            }
            None => Ok(None),
        }
    }

    /// Stores and unpacks one layer blob on top of `parent`, verifying every digest the caller
    /// knows. On any error nothing of the layer is left in the store.
    pub fn add_layer(
        &self,
        parent: Option<&ChainId>,
        blob: impl Read,
        source: &LayerSource,
    ) -> Result<LayerInfo> {
        let blob_tmp = self.temp_path("blob");
        let blob_file = fs::File::create(&blob_tmp).map_err(io_err("create", &blob_tmp))?;
        let _blob_guard = TempFile(blob_tmp.clone());
        // The blob is written and hashed on a second core while this one unpacks.
        let mut blob = TeeHasher::with_sink(blob, blob_file);
        let unpacked = self.unpack_layer(&mut blob)?;
        let (blob_digest, blob_file) = blob.finish_with_sink();
        let blob_file = blob_file.map_err(io_err("write blob", &blob_tmp))?;
        self.finish_layer(parent, source, unpacked, &blob_tmp, blob_file, blob_digest)
    }

    /// [`Store::add_layer`] for a blob that is already being written to the file `spooled`
    /// under `tmp/` (a download), which `blob` reads as it grows: once every digest checks
    /// out, that file itself becomes the stored blob, so the bytes are written once and no
    /// second copy is deleted afterwards. On any error the layer leaves nothing in the store
    /// (the file stays the caller's).
    pub fn add_spooled_layer(
        &self,
        parent: Option<&ChainId>,
        blob: impl Read,
        spooled: &Path,
        source: &LayerSource,
    ) -> Result<LayerInfo> {
        let mut blob = TeeHasher::new(blob);
        let unpacked = self.unpack_layer(&mut blob)?;
        let blob_digest = blob.finish();
        let blob_file = fs::File::open(spooled).map_err(io_err("open", spooled))?;
        self.finish_layer(parent, source, unpacked, spooled, blob_file, blob_digest)
    }

    /// Unpacks a layer blob (compressed or not) into a new directory under `tmp/` and reads the
    /// blob to its end.
    fn unpack_layer(&self, blob: &mut impl Read) -> Result<Unpacked> {
        let head = read_head(blob).map_err(io_err("read layer", Path::new("<stream>")))?;
        let compression = Compression::detect(&head);

        let tmp = self.temp_path("layer");
        fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
        let dir = TempDir(tmp.clone());

        let options = UnpackOptions::default();
        let mut whole = io::Cursor::new(head).chain(blob);
        let (stats, tar_digest) = if compression == Compression::None {
            // An uncompressed blob is its own tar: one hash serves as both digests.
            (layer::unpack(&mut whole, &tmp, &options)?, None)
        } else {
            let decoder =
                layer::decompressed(&mut whole).map_err(io_err("decompress layer", &tmp))?;
            let (stats, diff_id) = layer::unpack_with_diff_id(decoder, &tmp, &options)?;
            (stats, Some(diff_id.0))
        };
        // Whatever follows the tar or the compressed stream is still part of the blob.
        io::copy(&mut whole, &mut io::sink()).map_err(io_err("read layer", &tmp))?;
        Ok(Unpacked {
            dir,
            bytes: stats.bytes,
            tar_digest,
            compression,
        })
    }

    /// Verifies the digests of an unpacked layer, moves its blob (`blob_tmp`, open as
    /// `blob_file`) into place and records the layer.
    fn finish_layer(
        &self,
        parent: Option<&ChainId>,
        source: &LayerSource,
        unpacked: Unpacked,
        blob_tmp: &Path,
        blob_file: fs::File,
        blob_digest: Digest,
    ) -> Result<LayerInfo> {
        let blob_size = blob_file
            .metadata()
            .map_err(io_err("stat", blob_tmp))?
            .len();
        self.adopt_blob(
            blob_tmp,
            blob_file,
            &blob_digest,
            source.blob_digest.as_ref(),
        )?;
        let diff_id = DiffId(unpacked.tar_digest.unwrap_or_else(|| blob_digest.clone()));
        if let Some(expected) = &source.diff_id {
            if *expected != diff_id {
                return Err(StoreError::DigestMismatch {
                    what: "layer diff ID".into(),
                    expected: expected.to_string(),
                    actual: diff_id.to_string(),
                });
            }
        }
        let media_type = source
            .media_type
            .clone()
            .unwrap_or_else(|| media_type_of(unpacked.compression).to_string());
        let chain_id = self.record_layer(&RecordedLayer {
            dir: &unpacked.dir.0,
            parent,
            diff_id: &diff_id,
            size: unpacked.bytes,
            blob_digest: &blob_digest,
            blob_size,
            media_type: &media_type,
        })?;
        drop(unpacked.dir);
        Ok(LayerInfo {
            chain_id,
            diff_id,
            size: unpacked.bytes,
            blob_digest,
            blob_size,
            media_type,
        })
    }

    /// Records a finished layer directory (under `tmp/`) and the blob it was packed as. This is
    /// the one place the crash-safety order lives: data synced first, then the directory renamed
    /// into `layers/` and its row inserted inside one write transaction, so a recorded layer is
    /// always complete. When the layer is already recorded, `dir` is removed instead.
    pub(super) fn record_layer(&self, layer: &RecordedLayer<'_>) -> Result<ChainId> {
        let chain_id = ChainId::child(layer.parent, layer.diff_id);
        sync_filesystem(layer.dir)?;
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
            // A directory without a row is what a killed writer left between rename and commit.
            remove_any(&target);
            fs::rename(layer.dir, &target).map_err(io_err("rename layer into", &target))?;
            tx.execute(
                "INSERT INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
                params![
                    chain_id.to_string(),
                    layer.diff_id.to_string(),
                    layer.parent.map(|p| p.to_string()),
                    layer.size as i64
                ],
            )?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO layer_blobs (digest, diff_id, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            params![
                layer.blob_digest.to_string(),
                layer.diff_id.to_string(),
                layer.media_type,
                layer.blob_size as i64
            ],
        )?;
        tx.commit()?;
        if recorded.is_some() {
            remove_any(layer.dir);
        }
        Ok(chain_id)
    }

    /// Removes every layer that no image references, directly or as an ancestor, and the blobs
    /// recorded for them. Returns the bytes of unpacked content freed.
    pub fn collect_garbage_layers(&self) -> Result<u64> {
        let tx = self.db().write()?;
        // The build cache (the engine's `build_cache` table, when builds have run) keeps the
        // layers of cached steps alive too, so a later build can still hit them.
        let build_cache: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'build_cache'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let cached = if build_cache.is_some() {
            "UNION SELECT chain_id FROM build_cache"
        } else {
            ""
        };
        tx.execute_batch(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS live_layers (chain_id TEXT PRIMARY KEY);
             DELETE FROM live_layers;
             WITH RECURSIVE live(chain_id) AS (
                 SELECT top_layer FROM images WHERE top_layer IS NOT NULL
                 {cached}
                 UNION SELECT layers.parent FROM layers JOIN live ON layers.chain_id = live.chain_id
                       WHERE layers.parent IS NOT NULL)
             INSERT OR IGNORE INTO live_layers SELECT chain_id FROM live;"
        ))?;
        let dead: Vec<(String, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT chain_id, size FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM live_layers)
                 ORDER BY length(chain_id)",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut freed = 0u64;
        // Children before parents so the foreign key on `parent` holds at every step.
        let mut remaining = dead;
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|(chain, size)| {
                let has_child: bool = tx
                    .query_row(
                        "SELECT 1 FROM layers WHERE parent = ?1",
                        [chain],
                        |_| Ok(()),
                    )
                    .optional()
                    .ok()
                    .flatten()
                    .is_some();
                if has_child {
                    return true;
                }
                if tx
                    .execute("DELETE FROM layers WHERE chain_id = ?1", [chain])
                    .is_ok()
                {
                    freed += *size as u64;
                    if let Ok(chain_id) = chain.parse::<ChainId>() {
                        remove_any(&self.layer_dir(&chain_id));
                    }
                }
                false
            });
            if remaining.len() == before {
                break;
            }
        }
        // Blobs of diffs that no longer have any unpacked layer are unreachable too.
        let orphan_blobs: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT digest FROM layer_blobs WHERE diff_id NOT IN (SELECT diff_id FROM layers)",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for digest in &orphan_blobs {
            tx.execute("DELETE FROM layer_blobs WHERE digest = ?1", [digest])?;
        }
        tx.commit()?;
        for digest in orphan_blobs {
            if let Ok(digest) = digest.parse::<Digest>() {
                remove_any(&self.blob_path(&digest));
            }
        }
        self.sweep_orphan_layer_dirs()?;
        Ok(freed)
    }

    /// Removes directories under `layers/` that have no row: what a writer killed between its
    /// rename and its commit leaves behind.
    fn sweep_orphan_layer_dirs(&self) -> Result<()> {
        let tx = self.db().write()?;
        let dir = self.root().join("layers");
        let entries = fs::read_dir(&dir).map_err(io_err("read", &dir))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let known: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM layers WHERE chain_id = ?1",
                    [format!("sha256:{name}")],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_none() {
                remove_any(&entry.path());
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Reads up to the longest magic number, tolerating short reads from pipes.
fn read_head(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; 6];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

fn media_type_of(compression: Compression) -> &'static str {
    match compression {
        Compression::Gzip => MEDIA_TYPE_LAYER_GZIP,
        Compression::Zstd => MEDIA_TYPE_LAYER_ZSTD,
        _ => MEDIA_TYPE_LAYER_TAR,
    }
}

/// A finished layer directory and its blob, as [`Store::record_layer`] takes them.
pub(super) struct RecordedLayer<'a> {
    pub dir: &'a Path,
    pub parent: Option<&'a ChainId>,
    pub diff_id: &'a DiffId,
    /// Bytes of regular-file content in `dir`.
    pub size: u64,
    pub blob_digest: &'a Digest,
    pub blob_size: u64,
    pub media_type: &'a str,
}

/// Flushes everything written on the filesystem that holds `path`.
fn sync_filesystem(path: &std::path::Path) -> Result<()> {
    let dir = fs::File::open(path).map_err(io_err("open", path))?;
    rustix::fs::syncfs(&dir).map_err(|e| StoreError::Io {
        action: "sync filesystem of",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Removes an unfinished blob file unless it was renamed into place.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A layer unpacked under `tmp/`, not yet verified or recorded.
struct Unpacked {
    dir: TempDir,
    /// Bytes of regular-file content.
    bytes: u64,
    /// Digest of the tar when the blob was compressed (else the blob's own digest is the diff ID).
    tar_digest: Option<Digest>,
    compression: Compression,
}

/// Removes an unfinished layer directory unless it was renamed into place.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_any(&self.0);
    }
}
