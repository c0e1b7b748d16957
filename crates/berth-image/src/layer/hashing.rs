//! Hashing a stream on a second core while it is being consumed.
//!
//! Software SHA-256 runs at a few hundred MB/s here (no SHA extensions on this CPU), about as
//! slow as writing the unpacked files, so hashing a layer inline (`DigestReader`) nearly doubles
//! an import. [`TeeHasher`] hands each chunk it reads to a hashing thread instead and serves the
//! same bytes to its reader, so the two jobs overlap.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::digest::{Digest, DigestWriter};

/// Bytes read from the source per chunk.
const CHUNK: usize = 1 << 20;
/// Chunks in flight to the hasher; bounds memory at a few MiB when hashing falls behind.
const IN_FLIGHT: usize = 4;

struct Chunk {
    data: Vec<u8>,
    len: usize,
}

/// A reader that passes everything read from `inner` to a hashing thread, which also writes it
/// to a sink (the blob file, when a layer is stored as it is unpacked).
pub struct TeeHasher<R, W: Write + Send + 'static = io::Sink> {
    inner: R,
    current: Arc<Chunk>,
    pos: usize,
    to_hasher: Option<SyncSender<Arc<Chunk>>>,
    /// Chunks the hasher is done with, for reuse: allocating and zeroing a fresh MiB per chunk
    /// would cost more than the copy it saves.
    recycled: Receiver<Arc<Chunk>>,
    hasher: Option<JoinHandle<(Digest, io::Result<W>)>>,
}

impl<R: Read> TeeHasher<R> {
    pub fn new(inner: R) -> TeeHasher<R> {
        TeeHasher::with_sink(inner, io::sink())
    }
}

impl<R: Read, W: Write + Send + 'static> TeeHasher<R, W> {
    /// Hashes and writes to `sink` on the side thread. A write error is reported by
    /// [`TeeHasher::finish_with_sink`]; reading goes on so the stream is still consumed.
    pub fn with_sink(inner: R, sink: W) -> TeeHasher<R, W> {
        let (to_hasher, chunks) = mpsc::sync_channel::<Arc<Chunk>>(IN_FLIGHT);
        let (give_back, recycled) = mpsc::sync_channel::<Arc<Chunk>>(IN_FLIGHT + 2);
        let hasher = std::thread::Builder::new()
            .name("layer-hash".to_owned())
            .spawn(move || {
                let mut sink = Some(sink);
                let mut failure = None;
                let mut digest = DigestWriter::new(io::sink());
                for chunk in chunks {
                    let bytes = &chunk.data[..chunk.len];
                    let _ = digest.write_all(bytes);
                    if let Some(out) = sink.as_mut() {
                        if let Err(err) = out.write_all(bytes) {
                            failure = Some(err);
                            sink = None;
                        }
                    }
                    let _ = give_back.try_send(chunk);
                }
                let sink = match (sink, failure) {
                    (Some(mut out), None) => out.flush().map(|()| out),
                    (_, Some(err)) => Err(err),
                    (None, None) => Err(io::Error::other("sink lost")),
                };
                (digest.finish().1, sink)
            })
            .expect("spawning a thread only fails when the process is out of resources");
        TeeHasher {
            inner,
            current: Arc::new(Chunk {
                data: Vec::new(),
                len: 0,
            }),
            pos: 0,
            to_hasher: Some(to_hasher),
            recycled,
            hasher: Some(hasher),
        }
    }

    /// Waits for the hasher and returns the digest of everything read so far.
    pub fn finish(self) -> Digest {
        self.finish_with_sink().0
    }

    /// Waits for the hasher; returns the digest and the sink (or the error writing to it).
    pub fn finish_with_sink(mut self) -> (Digest, io::Result<W>) {
        drop(self.to_hasher.take());
        self.hasher
            .take()
            .expect("finish is called once")
            .join()
            .expect("the hashing thread does not panic")
    }

    fn next_buffer(&mut self) -> Vec<u8> {
        while let Ok(chunk) = self.recycled.try_recv() {
            if let Ok(chunk) = Arc::try_unwrap(chunk) {
                return chunk.data;
            }
        }
        vec![0; CHUNK]
    }
}

impl<R: Read, W: Write + Send + 'static> Read for TeeHasher<R, W> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len {
            // Let go of the finished chunk first, so the hasher's copy can be reused.
            self.current = Arc::new(Chunk {
                data: Vec::new(),
                len: 0,
            });
            // Keeps `pos == len` true at end of stream, so reading again after EOF is fine.
            self.pos = 0;
            let mut data = self.next_buffer();
            let len = loop {
                match self.inner.read(&mut data) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if len == 0 {
                return Ok(0);
            }
            self.current = Arc::new(Chunk { data, len });
            self.pos = 0;
            if let Some(tx) = &self.to_hasher {
                tx.send(self.current.clone())
                    .map_err(|_| io::Error::other("the layer hashing thread stopped"))?;
            }
        }
        let n = out.len().min(self.current.len - self.pos);
        out[..n].copy_from_slice(&self.current.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R, W: Write + Send + 'static> Drop for TeeHasher<R, W> {
    fn drop(&mut self) {
        // On an error path: let the thread see the closed channel and end.
        drop(self.to_hasher.take());
        if let Some(hasher) = self.hasher.take() {
            let _ = hasher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_and_bytes_pass_through() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut tee = TeeHasher::new(&data[..]);
        let mut out = Vec::new();
        // Odd read sizes to cross chunk boundaries.
        let mut buf = vec![0u8; 333_333];
        loop {
            let n = tee.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(tee.finish(), Digest::of(&data));
        assert_eq!(TeeHasher::new(&b""[..]).finish(), Digest::of(b""));
    }
}
