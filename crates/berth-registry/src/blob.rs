//! Streaming blob downloads that survive dropped connections.
//!
//! [`BlobReader`] is a `Read` over one blob. When the connection breaks (or ends early) it
//! reopens the blob with `Range: bytes=<offset>-` and carries on from where it was, so the
//! consumer (hashing, decompressing and unpacking in one pass) never sees the break. A registry
//! that ignores the range gets the already-read prefix skipped. The reader never yields more than
//! the descriptor's size; the digest itself is checked by whoever consumes the stream.

use std::io::{self, Read};

use berth_image::Digest;
use reqwest::blocking::Response;

use crate::client::Registry;

/// How many times one blob download may be resumed.
const MAX_RESUMES: u32 = 5;

/// A resumable reader over one blob.
pub struct BlobReader<'r> {
    registry: &'r Registry,
    repo: String,
    digest: Digest,
    size: u64,
    offset: u64,
    response: Option<Response>,
    resumes: u32,
    /// Bytes to discard after a reconnect the registry answered without honouring the range.
    skip: u64,
    on_progress: Option<Box<dyn FnMut(u64) + Send + 'r>>,
}

impl<'r> BlobReader<'r> {
    /// Opens the blob `digest` of `size` bytes in `repo`.
    pub fn open(
        registry: &'r Registry,
        repo: &str,
        digest: &Digest,
        size: u64,
    ) -> crate::Result<BlobReader<'r>> {
        let (response, _) = registry.open_blob(repo, digest, 0)?;
        Ok(BlobReader {
            registry,
            repo: repo.to_string(),
            digest: digest.clone(),
            size,
            offset: 0,
            response: Some(response),
            resumes: 0,
            skip: 0,
            on_progress: None,
        })
    }

    /// Calls `f` with the total bytes delivered after every read.
    pub fn on_progress(mut self, f: impl FnMut(u64) + Send + 'r) -> Self {
        self.on_progress = Some(Box::new(f));
        self
    }

    /// How many times the download was resumed.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    fn reconnect(&mut self, cause: io::Error) -> io::Result<()> {
        self.response = None;
        if self.resumes >= MAX_RESUMES {
            return Err(io::Error::new(
                cause.kind(),
                format!(
                    "blob {}: download failed after {} resumes: {cause}",
                    self.digest, self.resumes
                ),
            ));
        }
        self.resumes += 1;
        tracing::info!(digest = %self.digest, offset = self.offset, %cause, "resuming blob download");
        std::thread::sleep(std::time::Duration::from_millis(
            100 * u64::from(self.resumes),
        ));
        let (response, ranged) = self
            .registry
            .open_blob(&self.repo, &self.digest, self.offset)
            .map_err(|e| io::Error::other(format!("blob {}: resume failed: {e}", self.digest)))?;
        self.skip = if ranged { 0 } else { self.offset };
        self.response = Some(response);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.offset >= self.size && self.skip == 0 {
                // Everything announced has arrived; anything more is not part of the blob.
                let mut probe = [0u8; 1];
                return match self.response.as_mut().map(|r| r.read(&mut probe)) {
                    Some(Ok(n)) if n > 0 => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob {} is larger than its descriptor's {} bytes",
                            self.digest, self.size
                        ),
                    )),
                    _ => Ok(0),
                };
            }
            let Some(response) = self.response.as_mut() else {
                self.reconnect(io::Error::other("no connection"))?;
                continue;
            };
            let want = if self.skip > 0 {
                buf.len().min(self.skip as usize)
            } else {
                buf.len().min((self.size - self.offset) as usize)
            };
            match response.read(&mut buf[..want]) {
                Ok(0) => {
                    let cause = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection closed at byte {} of {}", self.offset, self.size),
                    );
                    self.reconnect(cause)?;
                }
                Ok(n) if self.skip > 0 => {
                    self.skip -= n as u64;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    if let Some(f) = self.on_progress.as_mut() {
                        f(self.offset);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.reconnect(e)?,
            }
        }
    }
}
