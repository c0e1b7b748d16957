//! A download spooled to a file that its consumer reads while it is still being written.
//!
//! Layers download in parallel but must be unpacked in order (each sits on its parent). Each
//! download writes into its own spool file under the store's `tmp/`; the consumer follows the
//! file like `tail -f`, so layer N is unpacked while it is still arriving and layers N+1… keep
//! downloading meanwhile, without holding them in memory. Once verified, the spool file itself
//! becomes the stored blob (`Store::add_spooled_layer`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use berth_image::layer::start_writeback;

/// Bytes written between two write-back starts.
const WRITEBACK_STEP: u64 = 1 << 20;

#[derive(Default)]
struct State {
    written: u64,
    done: bool,
    error: Option<String>,
}

/// One spooled download shared by its writer and its reader.
pub struct Spool {
    path: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

impl Spool {
    /// Creates the (empty) spool file at `path`.
    pub fn create(path: PathBuf) -> io::Result<Spool> {
        File::create(&path)?;
        Ok(Spool {
            path,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    /// Copies `source` into the spool, publishing progress after every chunk. Stops early when
    /// `abort` is set. Returns whether the whole source was copied.
    pub fn fill(&self, source: &mut dyn Read, abort: &AtomicBool) -> bool {
        let result = (|| -> io::Result<()> {
            let mut file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
            let mut buf = vec![0u8; 256 * 1024];
            let (mut offset, mut written_back) = (0u64, 0u64);
            loop {
                if abort.load(Ordering::Relaxed) {
                    return Err(io::Error::other("aborted"));
                }
                let n = match source.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                file.write_all(&buf[..n])?;
                offset += n as u64;
                // The spool becomes the stored blob: written back a MiB at a time as it
                // arrives, its final fdatasync has little left to do.
                if offset - written_back >= WRITEBACK_STEP {
                    start_writeback(file.as_fd(), written_back, offset - written_back);
                    written_back = offset;
                }
                let mut state = self.state.lock().expect("lock");
                state.written += n as u64;
                drop(state);
                self.changed.notify_all();
            }
        })();
        let ok = result.is_ok();
        self.finish(result.err().map(|e| e.to_string()));
        ok
    }

    /// The file the download is written to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Marks the download finished (with an error message if it failed).
    pub fn finish(&self, error: Option<String>) {
        let mut state = self.state.lock().expect("lock");
        state.done = true;
        state.error = error;
        drop(state);
        self.changed.notify_all();
    }

    /// Waits for the download to end and hashes everything it wrote: used after a failed unpack
    /// to tell a corrupted download from a bad layer.
    pub fn wait_and_hash(&self) -> io::Result<berth_image::Digest> {
        let mut state = self.state.lock().expect("lock");
        while !state.done {
            state = self.changed.wait(state).expect("lock");
        }
        drop(state);
        let mut reader = berth_image::digest::DigestReader::new(File::open(&self.path)?);
        io::copy(&mut reader, &mut io::sink())?;
        Ok(reader.finish().1)
    }

    /// A reader that follows the file as it grows.
    pub fn reader(&self) -> io::Result<SpoolReader<'_>> {
        Ok(SpoolReader {
            spool: self,
            file: File::open(&self.path)?,
            pos: 0,
        })
    }
}

impl Drop for Spool {
    /// Removes the download unless the store adopted it as a blob.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads a [`Spool`] up to what has been written, waiting for more until the writer is done.
pub struct SpoolReader<'s> {
    spool: &'s Spool,
    file: File,
    pos: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = {
            let mut state = self.spool.state.lock().expect("lock");
            loop {
                if state.written > self.pos {
                    break state.written - self.pos;
                }
                if state.done {
                    return match &state.error {
                        Some(e) => Err(io::Error::other(e.clone())),
                        None => Ok(0),
                    };
                }
                state = self.spool.changed.wait(state).expect("lock");
            }
        };
        let want = buf.len().min(available as usize);
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}
