//! Queries the records do not know, relayed to the host's resolvers one upstream at a time.
//!
//! Each forwarded query gets its own non-blocking socket, connected to the upstream being tried,
//! so the kernel discards datagrams from anyone else and the random source port plus a fresh
//! random query id make a spoofed reply hard to land. The socket sits in the server's poll set
//! beside the listening sockets: a slow upstream delays only the client that asked.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, Message, MessageType, ResponseCode};
use hickory_proto::serialize::binary::BinDecodable;
use nix::errno::Errno;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::answer::server_failure;
use super::tcp;

/// Largest DNS message over UDP (and over TCP, given the two-byte length prefix).
pub(crate) const MAX_MESSAGE: usize = 65_535;

/// Where a reply must go back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    Udp(SocketAddr),
    Tcp(u64),
}

/// The resolvers a query goes to, in order, and how long each gets to answer.
#[derive(Clone)]
pub(crate) struct Upstreams {
    pub(crate) addresses: Vec<SocketAddr>,
    pub(crate) timeout: Duration,
}

/// How a forwarded query stands after some event.
pub(crate) enum Progress {
    Waiting,
    /// Finished: these bytes (if any could be built) go to the client.
    Done(Option<Vec<u8>>),
}

enum Link {
    /// Not yet sent, or every upstream failed.
    Idle,
    Udp(UdpSocket),
    /// The upstream truncated its UDP reply for a TCP client: the same question again over TCP.
    Tcp {
        stream: TcpStream,
        unsent: Vec<u8>,
        received: Vec<u8>,
    },
}

pub(crate) struct Forward {
    pub(crate) client: Client,
    request: Message,
    /// The client's packet with `upstream_id` in place of its own id.
    query: Vec<u8>,
    upstream_id: u16,
    /// The resolvers chosen for this client.
    upstreams: Upstreams,
    /// Index of the upstream being tried.
    upstream: usize,
    link: Link,
    pub(crate) deadline: Instant,
    /// A SERVFAIL or REFUSED from an earlier upstream: relayed if no later one does better.
    fallback: Option<Vec<u8>>,
}

impl Forward {
    /// Sends `packet` (the client's query, parsed as `request`) to the first upstream that
    /// takes it.
    pub(crate) fn start(
        packet: &[u8],
        request: Message,
        client: Client,
        upstreams: Upstreams,
        now: Instant,
    ) -> (Forward, Progress) {
        let upstream_id = rand::random::<u16>();
        let mut query = packet.to_vec();
        set_message_id(&mut query, upstream_id);
        let mut forward = Forward {
            client,
            request,
            query,
            upstream_id,
            upstreams,
            upstream: 0,
            link: Link::Idle,
            deadline: now,
            fallback: None,
        };
        let progress = forward.try_from(0, now);
        (forward, progress)
    }

    /// The socket to poll and whether to wait for writability (a TCP connect or send in flight)
    /// rather than readability.
    pub(crate) fn poll_target(&self) -> Option<(BorrowedFd<'_>, bool)> {
        match &self.link {
            Link::Idle => None,
            Link::Udp(socket) => Some((socket.as_fd(), false)),
            Link::Tcp { stream, unsent, .. } => Some((stream.as_fd(), !unsent.is_empty())),
        }
    }

    /// The socket is ready: read the reply (or finish sending over TCP).
    pub(crate) fn on_ready(&mut self, scratch: &mut [u8], now: Instant) -> Progress {
        match self.receive(scratch) {
            Ok(Some(reply)) => self.judge(reply, now),
            Ok(None) => Progress::Waiting,
            Err(error) => {
                let upstream = self.upstreams.addresses.get(self.upstream);
                tracing::debug!(?upstream, %error, "upstream failed");
                self.try_from(self.upstream + 1, now)
            }
        }
    }

    /// The current upstream took too long: move on to the next.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Progress {
        let upstream = self.upstreams.addresses.get(self.upstream);
        tracing::debug!(?upstream, "upstream timed out");
        self.try_from(self.upstream + 1, now)
    }

    /// A reply from the current upstream if one has fully arrived; an error means this upstream
    /// is of no further use.
    fn receive(&mut self, scratch: &mut [u8]) -> io::Result<Option<Vec<u8>>> {
        match &mut self.link {
            Link::Idle => Ok(None),
            Link::Udp(socket) => loop {
                match socket.recv(scratch) {
                    Ok(n) => {
                        if is_reply_to(&scratch[..n], self.upstream_id) {
                            return Ok(Some(scratch[..n].to_vec()));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
            Link::Tcp {
                stream,
                unsent,
                received,
            } => {
                if let Some(error) = stream.take_error()? {
                    return Err(error);
                }
                tcp::write_available(stream, unsent)?;
                if !unsent.is_empty() {
                    return Ok(None);
                }
                let closed = tcp::read_available(stream, received)?;
                match tcp::take_message(received) {
                    Some(reply) if is_reply_to(&reply, self.upstream_id) => Ok(Some(reply)),
                    Some(_) => Err(io::Error::new(
                        ErrorKind::InvalidData,
                        "reply to another query",
                    )),
                    None if closed => Err(ErrorKind::UnexpectedEof.into()),
                    None => Ok(None),
                }
            }
        }
    }

    /// Relays a good reply, retries a truncated one over TCP, and moves on from an upstream that
    /// says it cannot help.
    fn judge(&mut self, reply: Vec<u8>, now: Instant) -> Progress {
        let Ok(header) = Header::from_bytes(&reply) else {
            return self.try_from(self.upstream + 1, now);
        };
        let over_udp = matches!(self.link, Link::Udp(_));
        if header.metadata.truncation && over_udp && matches!(self.client, Client::Tcp(_)) {
            return match self.open_tcp(self.upstreams.addresses[self.upstream]) {
                Ok(link) => {
                    self.link = link;
                    self.deadline = now + self.upstreams.timeout;
                    Progress::Waiting
                }
                Err(_) => self.give_up_on_this(reply, now),
            };
        }
        match header.metadata.response_code {
            ResponseCode::ServFail | ResponseCode::Refused => self.give_up_on_this(reply, now),
            _ => self.finish(Some(reply)),
        }
    }

    fn give_up_on_this(&mut self, reply: Vec<u8>, now: Instant) -> Progress {
        self.fallback = Some(reply);
        self.try_from(self.upstream + 1, now)
    }

    /// Sends the query to upstream `first` or, failing that, the ones after it.
    fn try_from(&mut self, first: usize, now: Instant) -> Progress {
        self.link = Link::Idle;
        for index in first..self.upstreams.addresses.len() {
            let address = self.upstreams.addresses[index];
            match self.send_udp(address) {
                Ok(socket) => {
                    self.upstream = index;
                    self.link = Link::Udp(socket);
                    self.deadline = now + self.upstreams.timeout;
                    return Progress::Waiting;
                }
                Err(error) => tracing::debug!(upstream = %address, %error, "cannot reach upstream"),
            }
        }
        let fallback = self.fallback.take();
        self.finish(fallback)
    }

    fn finish(&mut self, reply: Option<Vec<u8>>) -> Progress {
        self.link = Link::Idle;
        let reply = match reply {
            Some(mut reply) => {
                set_message_id(&mut reply, self.request.metadata.id);
                Some(reply)
            }
            None => server_failure(&self.request),
        };
        Progress::Done(reply)
    }

    fn send_udp(&self, upstream: SocketAddr) -> io::Result<UdpSocket> {
        let any: SocketAddr = match upstream {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any)?;
        socket.set_nonblocking(true)?;
        socket.connect(upstream)?;
        socket.send(&self.query)?;
        Ok(socket)
    }

    /// Starts a non-blocking connect; the query is written once the socket turns writable. std
    /// has no non-blocking connect, hence nix.
    fn open_tcp(&self, upstream: SocketAddr) -> io::Result<Link> {
        let family = match upstream {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = socket(family, SockType::Stream, flags, None)?;
        match connect(fd.as_raw_fd(), &SockaddrStorage::from(upstream)) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(errno) => return Err(errno.into()),
        }
        let unsent = tcp::frame(&self.query).ok_or(ErrorKind::InvalidData)?;
        Ok(Link::Tcp {
            stream: TcpStream::from(fd),
            unsent,
            received: Vec::new(),
        })
    }
}

/// A response carrying the id we sent; anything else on the socket is ignored.
fn is_reply_to(packet: &[u8], upstream_id: u16) -> bool {
    Header::from_bytes(packet).is_ok_and(|header| {
        header.metadata.id == upstream_id && header.metadata.message_type == MessageType::Response
    })
}

/// Rewrites the id of an encoded message in place: re-encoding the whole upstream reply through
/// hickory would cost time and could alter records we do not understand.
fn set_message_id(message: &mut [u8], id: u16) {
    if let Some(slot) = message.get_mut(..2) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
}
