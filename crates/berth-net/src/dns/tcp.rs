//! DNS over TCP: every message is preceded by its length as a big-endian u16 (RFC 1035 §4.2.2,
//! RFC 7766). hickory-proto's own stream framing lives in its async networking crate, which would
//! bring tokio into this tiny process, so the two-byte prefix is handled here.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const LENGTH_PREFIX: usize = 2;

/// A client that sends nothing and reads nothing for this long is disconnected (RFC 7766 §6.2.3
/// suggests seconds, not minutes).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Replies queued for a client that stops reading are capped so it cannot make us buffer without
/// bound.
const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// Prefixes `message` with its length; `None` if it cannot be framed (over 64 KiB).
pub(crate) fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(message.len()).ok()?;
    let mut framed = Vec::with_capacity(LENGTH_PREFIX + message.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    Some(framed)
}

/// Removes the first complete message from `buffer`, if one has fully arrived.
pub(crate) fn take_message(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let prefix: [u8; LENGTH_PREFIX] = buffer.get(..LENGTH_PREFIX)?.try_into().ok()?;
    let end = LENGTH_PREFIX + usize::from(u16::from_be_bytes(prefix));
    if buffer.len() < end {
        return None;
    }
    let message = buffer[LENGTH_PREFIX..end].to_vec();
    buffer.drain(..end);
    Some(message)
}

/// Reads what `stream` has without blocking; `Ok(true)` once the peer closed its side.
pub(crate) fn read_available(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes as much of `pending` as the socket takes without blocking and removes it.
pub(crate) fn write_available(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<()> {
    while !pending.is_empty() {
        match stream.write(pending) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One connected client.
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    /// Who connected: the container whose upstreams its queries go to.
    pub(crate) peer: SocketAddr,
    received: Vec<u8>,
    pub(crate) unsent: Vec<u8>,
    peer_closed: bool,
    pub(crate) idle_deadline: Instant,
    /// Queries of this client still waiting for an upstream; it is kept open for them even after
    /// it half-closed or went quiet.
    pub(crate) awaiting_upstream: usize,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, peer: SocketAddr, now: Instant) -> Connection {
        Connection {
            stream,
            peer,
            received: Vec::new(),
            unsent: Vec::new(),
            peer_closed: false,
            idle_deadline: now + IDLE_TIMEOUT,
            awaiting_upstream: 0,
        }
    }

    /// Reads what arrived and returns the complete queries in it.
    pub(crate) fn receive(&mut self, now: Instant) -> io::Result<Vec<Vec<u8>>> {
        self.peer_closed = read_available(&mut self.stream, &mut self.received)?;
        self.idle_deadline = now + IDLE_TIMEOUT;
        let mut queries = Vec::new();
        while let Some(query) = take_message(&mut self.received) {
            queries.push(query);
        }
        Ok(queries)
    }

    /// Queues one reply and sends what the socket takes now.
    pub(crate) fn send(&mut self, message: &[u8], now: Instant) -> io::Result<()> {
        let framed = frame(message).ok_or(ErrorKind::InvalidData)?;
        if self.unsent.len() + framed.len() > MAX_QUEUED_BYTES {
            return Err(io::Error::new(
                ErrorKind::OutOfMemory,
                "client does not read its replies",
            ));
        }
        self.unsent.extend_from_slice(&framed);
        self.idle_deadline = now + IDLE_TIMEOUT;
        self.flush()
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        write_available(&mut self.stream, &mut self.unsent)
    }

    /// The client hung up and everything it is owed has been written.
    pub(crate) fn finished(&self) -> bool {
        self.peer_closed && self.unsent.is_empty() && self.awaiting_upstream == 0
    }

    /// What to wait for: more queries until the client hangs up, writability while replies are
    /// queued. A half-closed socket stays readable forever, so it must not be polled for input.
    pub(crate) fn interest(&self) -> (bool, bool) {
        (!self.peer_closed, !self.unsent.is_empty())
    }

    pub(crate) fn idle(&self, now: Instant) -> bool {
        self.awaiting_upstream == 0 && now >= self.idle_deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_the_whole_message() {
        let mut buffer = frame(b"hello").unwrap();
        buffer.extend(frame(b"").unwrap());
        buffer.extend_from_slice(&[0, 9, b'p']);
        assert_eq!(take_message(&mut buffer).as_deref(), Some(&b"hello"[..]));
        assert_eq!(take_message(&mut buffer).as_deref(), Some(&b""[..]));
        assert_eq!(take_message(&mut buffer), None);
        assert_eq!(buffer, [0, 9, b'p']);
        assert_eq!(take_message(&mut vec![7]), None);
        assert!(frame(&vec![0; 70_000]).is_none());
    }
}
