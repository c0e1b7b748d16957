//! Parallel gzip for pushing uncompressed layers (imported images keep their tar as is).
//!
//! The tar is cut into fixed-size chunks, each compressed as its own gzip member on its own
//! thread, and the members are written out in order: a multi-member gzip file, which gzip, Go's
//! `compress/gzip` (Docker, containerd, the registry) and flate2's `MultiGzDecoder` all read as
//! one stream — pigz's approach. BestSpeed, as Docker uses when it compresses layers for push.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::Mutex;

use flate2::write::GzEncoder;

/// Uncompressed bytes per gzip member: large enough that the ratio matches one stream.
const CHUNK: usize = 4 << 20;

/// Compresses everything from `input` into `output`; returns the bytes written.
pub fn gzip_parallel(
    input: &mut (dyn Read + Send),
    output: &mut dyn Write,
    threads: usize,
) -> io::Result<u64> {
    let threads = threads.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(usize, io::Result<Vec<u8>>)>(threads * 2);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || loop {
                let next = work_rx.lock().expect("lock").recv();
                let Ok((index, chunk)) = next else { break };
                let mut encoder = GzEncoder::new(
                    Vec::with_capacity(chunk.len() / 2),
                    flate2::Compression::fast(),
                );
                let result = encoder.write_all(&chunk).and_then(|_| encoder.finish());
                if done_tx.send((index, result)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        // The writer runs here; the reader on its own thread feeds the workers.
        let reader = scope.spawn(move || -> io::Result<()> {
            let mut index = 0;
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    match input.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if filled == 0 && index > 0 {
                    return Ok(());
                }
                chunk.truncate(filled);
                if work_tx.send((index, chunk)).is_err() {
                    return Ok(());
                }
                index += 1;
                if filled < CHUNK {
                    return Ok(());
                }
            }
        });
        let mut pending = BTreeMap::new();
        let mut next = 0;
        let mut written = 0u64;
        let mut failure = None;
        for (index, result) in done_rx.iter() {
            match result {
                Ok(bytes) => {
                    pending.insert(index, bytes);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
            while let Some(bytes) = pending.remove(&next) {
                if failure.is_none() {
                    if let Err(e) = output.write_all(&bytes) {
                        failure = Some(e);
                    }
                    written += bytes.len() as u64;
                }
                next += 1;
            }
        }
        reader.join().expect("reader thread")?;
        match failure {
            Some(e) => Err(e),
            None => Ok(written),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_decodes_to_the_input() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 12345))
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        let mut out = Vec::new();
        gzip_parallel(&mut &data[..], &mut out, 2).unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let mut empty = Vec::new();
        gzip_parallel(&mut &b""[..], &mut empty, 2).unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
