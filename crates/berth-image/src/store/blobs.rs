//! Content-addressed blobs under `blobs/sha256/<hex>`.
//!
//! A blob is written to `tmp/`, hashed as it streams, and renamed into place only after its digest
//! matched what the caller expected (containerd's `Writer.Commit(size, expected)` pattern), so a
//! file under `blobs/` is always complete and correct.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{io_err, Result, Store, StoreError};
use crate::digest::{Digest, DigestWriter};

impl Store {
    /// Where the blob with `digest` lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root().join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(io_err("read blob", &path))
    }

    /// Stores `data`, returning its digest. When `expected` is given a mismatch is an error and
    /// nothing is stored.
    pub fn put_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let mut writer = self.blob_writer()?;
        writer
            .write_all(data)
            .map_err(io_err("write blob", &writer.path))?;
        writer.commit(expected)
    }

    /// Starts streaming a new blob into the store.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>> {
        let path = self.temp_path("blob");
        let file = File::create(&path).map_err(io_err("create", &path))?;
        Ok(BlobWriter {
            store: self,
            inner: Some(DigestWriter::new(BufWriter::with_capacity(1 << 20, file))),
            path,
        })
    }
}

impl Store {
    /// Moves a fully written temporary file into place as the blob `digest` (already computed by
    /// the caller while writing), after checking it against `expected` and syncing it.
    pub(crate) fn adopt_blob(
        &self,
        tmp: &Path,
        file: File,
        digest: &Digest,
        expected: Option<&Digest>,
    ) -> Result<()> {
        if let Some(expected) = expected {
            if expected != digest {
                return Err(StoreError::DigestMismatch {
                    what: "blob".into(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        file.sync_data().map_err(io_err("sync", tmp))?;
        let target = self.blob_path(digest);
        fs::rename(tmp, &target).map_err(io_err("rename blob into", &target))
    }
}

/// A blob being written; dropped without [`BlobWriter::commit`] it leaves nothing behind.
pub struct BlobWriter<'s> {
    store: &'s Store,
    inner: Option<DigestWriter<BufWriter<File>>>,
    path: PathBuf,
}

impl BlobWriter<'_> {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map_or(0, |w| w.written())
    }

    /// Verifies the digest (when `expected` is given), syncs the data and renames the blob into
    /// place. Returns the digest of what was written.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let writer = self.inner.take().expect("commit consumes the writer");
        let (buffered, digest, _) = writer.finish();
        let file = buffered.into_inner().map_err(|e| StoreError::Io {
            action: "write blob",
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(StoreError::DigestMismatch {
                    what: "blob".into(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        file.sync_data().map_err(io_err("sync", &self.path))?;
        let target = self.store.blob_path(&digest);
        fs::rename(&self.path, &target).map_err(io_err("rename blob into", &target))?;
        Ok(digest)
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.as_mut().expect("writer is open").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.as_mut().expect("writer is open").flush()
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if self.inner.is_some() || Path::new(&self.path).exists() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
