//! Layer compression: registries serve layers gzip- or zstd-compressed, `docker save` archives
//! and `import` inputs may be plain; the format is recognised by its magic bytes, as Docker does,
//! rather than trusted from a media type.

use std::fmt;
use std::io::{self, BufReader, Read};

/// Large enough that the decoders see few short reads from a network or pipe source.
const DECODER_BUFFER: usize = 256 * 1024;

/// A compression format recognised from a stream's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// The format whose magic number `head` starts with; `None` when it matches no known magic.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        })
    }
}

/// The longest magic number [`Compression::detect`] looks at.
const MAGIC_LEN: usize = 6;

/// Wraps `reader` so that reading yields the uncompressed stream: gzip (including multi-member
/// files, as `pigz` writes them) and zstd are decoded, anything else passes through unchanged.
/// bzip2 and xz are recognised but refused with an `Unsupported` error rather than being handed
/// on as if they were a tar.
pub fn decompressed<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = reader;
    // Read the magic bytes ourselves instead of peeking into a BufReader: one short read from a
    // pipe must not make a gzip stream look uncompressed.
    let mut head = [0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..filled];
    let compression = Compression::detect(head);
    let whole = io::Cursor::new(head.to_vec()).chain(reader);
    Ok(match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
            BufReader::with_capacity(DECODER_BUFFER, whole),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(
            BufReader::with_capacity(DECODER_BUFFER, whole),
        )?),
        Compression::Bzip2 | Compression::Xz => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{compression}-compressed layers are not supported (use gzip or zstd)"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        decompressed(r).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    /// Hands out one byte per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn plain_gzip_and_zstd_decode_to_the_same_bytes() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&data[..], 1).unwrap();

        assert_eq!(Compression::detect(&gz), Compression::Gzip);
        assert_eq!(Compression::detect(&zst), Compression::Zstd);
        assert_eq!(read_all(&data[..]), data);
        assert_eq!(read_all(&gz[..]), data);
        assert_eq!(read_all(&zst[..]), data);
        assert_eq!(read_all(Trickle(&gz)), data);
    }

    #[test]
    fn multi_member_gzip_and_tiny_inputs() {
        let mut two = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            two.extend(gz.finish().unwrap());
        }
        assert_eq!(read_all(&two[..]), b"hello world");
        assert_eq!(read_all(&b""[..]), b"");
        assert_eq!(read_all(&b"ab"[..]), b"ab");
    }

    #[test]
    fn xz_is_refused_with_a_clear_error() {
        let err = decompressed(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1][..])
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("xz-compressed"));
    }
}
