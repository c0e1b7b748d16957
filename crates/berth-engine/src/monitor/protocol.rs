//! The attach protocol between a monitor and its clients (`run`, `start -a`, `attach`, `wait`,
//! `stop`, `kill`, `logs -f`), over the monitor's unix socket or the socket pair a starting CLI
//! hands it.
//!
//! Each frame is `kind: u8`, `length: u32` (big-endian) and `length` bytes of payload. A client
//! that sees the connection close without an [`Frame::Exit`] reads the container's state from
//! the database instead (the monitor had already finished).

use std::io::{self, Read, Write};

/// Largest payload accepted; larger frames are a protocol error.
pub const MAX_FRAME: usize = 1 << 20;

/// Client hello flags.
pub const HELLO_STDIN: u8 = 1;
pub const HELLO_OUTPUT: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    // Monitor → client.
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The container's process ended with this status (128+N for signal N).
    Exit(i32),
    /// The container runs, with this init pid.
    Started(i32),
    /// Starting failed: the exit status to report (125/126/127) and why.
    Error(i32, String),
    // Client → monitor.
    /// What the client wants: [`HELLO_STDIN`] | [`HELLO_OUTPUT`].
    Hello(u8),
    /// Input for the container; empty means end of input.
    Stdin(Vec<u8>),
    /// Terminal size: rows, columns.
    Resize(u16, u16),
    /// Send a signal; `manual` marks a user's `kill` (an `unless-stopped` container stays down).
    Signal {
        signal: i32,
        manual: bool,
    },
    /// `stop`: no restart from now on, and this signal to the process.
    Stop(i32),
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Stdout(_) => 1,
            Frame::Stderr(_) => 2,
            Frame::Exit(_) => 3,
            Frame::Started(_) => 4,
            Frame::Error(..) => 5,
            Frame::Hello(_) => 10,
            Frame::Stdin(_) => 11,
            Frame::Resize(..) => 12,
            Frame::Signal { .. } => 13,
            Frame::Stop(_) => 14,
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(self.kind());
        out.extend_from_slice(&[0; 4]);
        match self {
            Frame::Stdout(d) | Frame::Stderr(d) | Frame::Stdin(d) => out.extend_from_slice(d),
            Frame::Exit(c) | Frame::Started(c) | Frame::Stop(c) => {
                out.extend_from_slice(&c.to_be_bytes())
            }
            Frame::Error(c, m) => {
                out.extend_from_slice(&c.to_be_bytes());
                out.extend_from_slice(m.as_bytes());
            }
            Frame::Hello(f) => out.push(*f),
            Frame::Resize(r, c) => {
                out.extend_from_slice(&r.to_be_bytes());
                out.extend_from_slice(&c.to_be_bytes());
            }
            Frame::Signal { signal, manual } => {
                out.extend_from_slice(&signal.to_be_bytes());
                out.push(*manual as u8);
            }
        }
        let len = (out.len() - start - 5) as u32;
        out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    }

    /// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are needed,
    /// else the frame and how many bytes it used.
    pub fn decode(buf: &[u8]) -> io::Result<Option<(Frame, usize)>> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(bad("frame too large"));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        let p = &buf[5..5 + len];
        let int = |p: &[u8]| -> io::Result<i32> {
            p.get(..4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| bad("short frame"))
        };
        let frame = match buf[0] {
            1 => Frame::Stdout(p.to_vec()),
            2 => Frame::Stderr(p.to_vec()),
            3 => Frame::Exit(int(p)?),
            4 => Frame::Started(int(p)?),
            5 => Frame::Error(int(p)?, String::from_utf8_lossy(&p[4..]).into_owned()),
            10 => Frame::Hello(*p.first().ok_or_else(|| bad("short frame"))?),
            11 => Frame::Stdin(p.to_vec()),
            12 if p.len() >= 4 => Frame::Resize(
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ),
            13 if p.len() >= 5 => Frame::Signal {
                signal: int(p)?,
                manual: p[4] != 0,
            },
            14 => Frame::Stop(int(p)?),
            _ => return Err(bad("unknown frame")),
        };
        Ok(Some((frame, 5 + len)))
    }

    /// Writes one frame.
    pub fn send(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(16);
        self.encode(&mut buf);
        w.write_all(&buf)
    }

    /// Reads one whole frame (blocking); `Ok(None)` at end of stream.
    pub fn recv(r: &mut impl Read) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 5];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(bad("frame too large"));
        }
        let mut buf = vec![0u8; 5 + len];
        buf[..5].copy_from_slice(&head);
        match r.read_exact(&mut buf[5..]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(Frame::decode(&buf)?.map(|(f, _)| f))
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("attach protocol: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for frame in [
            Frame::Stdout(b"hi\n".to_vec()),
            Frame::Exit(137),
            Frame::Error(127, "not found".into()),
            Frame::Hello(HELLO_STDIN | HELLO_OUTPUT),
            Frame::Stdin(Vec::new()),
            Frame::Resize(24, 80),
            Frame::Signal {
                signal: 15,
                manual: true,
            },
            Frame::Stop(9),
        ] {
            let mut buf = Vec::new();
            frame.encode(&mut buf);
            assert_eq!(
                Frame::decode(&buf).unwrap(),
                Some((frame.clone(), buf.len()))
            );
            assert_eq!(Frame::decode(&buf[..buf.len() - 1]).unwrap(), None);
            assert_eq!(Frame::recv(&mut &buf[..]).unwrap(), Some(frame));
        }
    }
}
