//! The sockets and the single-threaded poll loop that drives them.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::answer::{self, Action, Transport};
use super::forward::{Client, Forward, Progress, Upstreams, MAX_MESSAGE};
use super::tcp::Connection;
use super::Records;

/// How long one upstream gets before the next is tried. glibc's stub resolver waits 5 s before
/// it repeats a query, so two upstreams can fail within one client attempt.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// `keep_going` is asked this often (the contract is at least once per second).
const KEEP_GOING_INTERVAL: Duration = Duration::from_millis(500);

/// Each forward holds a socket; the cap keeps a flood of unknown names inside the default
/// 1024-descriptor limit. Past it, queries get SERVFAIL at once.
const MAX_FORWARDS: usize = 512;

/// TCP clients beyond this are disconnected on accept.
const MAX_TCP_CLIENTS: usize = 128;

/// Datagrams or connections taken from one socket per wake-up, so a flood on one cannot starve
/// the others.
const BATCH: usize = 64;

/// Attempts at finding a port free for both UDP and TCP when asked for port 0.
const EPHEMERAL_PORT_ATTEMPTS: usize = 16;

/// A DNS server for one network: a UDP socket and a TCP listener on the same address.
pub struct DnsServer {
    udp: UdpSocket,
    tcp: TcpListener,
    /// Where both sockets listen: never an upstream, or a query would loop back to us.
    bound: SocketAddr,
    upstreams: Upstreams,
}

impl DnsServer {
    /// Binds UDP and TCP on `listen` (port 0 picks one free for both; see `local_addr`).
    /// Upstreams equal to the listen address are dropped so a query cannot loop back to us.
    pub fn bind(listen: SocketAddr, upstreams: Vec<SocketAddr>) -> io::Result<DnsServer> {
        let (udp, tcp) = bind_both(listen)?;
        let bound = udp.local_addr()?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let addresses = upstreams
            .into_iter()
            .filter(|upstream| *upstream != bound && *upstream != listen)
            .collect();
        Ok(DnsServer {
            udp,
            tcp,
            bound,
            upstreams: Upstreams {
                addresses,
                timeout: DEFAULT_UPSTREAM_TIMEOUT,
            },
        })
    }

    /// The address both sockets are bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// The upstreams queries are forwarded to, in the order they are tried.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams.addresses
    }

    /// How long each upstream gets to answer before the next is tried
    /// (`DEFAULT_UPSTREAM_TIMEOUT` unless changed).
    pub fn set_upstream_timeout(&mut self, timeout: Duration) {
        self.upstreams.timeout = timeout;
    }

    /// The upstreams for a query from `source`: the ones [`Records::upstreams_for`] names for
    /// it (minus this server itself), or the server's own.
    fn upstreams_for(&self, records: &impl Records, source: Option<IpAddr>) -> Upstreams {
        match source.and_then(|ip| records.upstreams_for(ip)) {
            Some(addresses) => Upstreams {
                addresses: addresses
                    .into_iter()
                    .filter(|upstream| *upstream != self.bound)
                    .collect(),
                timeout: self.upstreams.timeout,
            },
            None => self.upstreams.clone(),
        }
    }

    /// Blocking loop; calls `keep_going()` at least once per second and returns Ok when it says
    /// false. Errors of single clients or upstreams are logged and survived; only a failing
    /// `poll` itself ends the loop with an error.
    pub fn serve(
        &self,
        records: &mut impl Records,
        mut keep_going: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let mut session = Session {
            server: self,
            clients: HashMap::new(),
            forwards: HashMap::new(),
            next_key: 0,
            scratch: vec![0u8; MAX_MESSAGE],
        };
        let mut next_check = Instant::now();
        loop {
            if Instant::now() >= next_check {
                if !keep_going() {
                    return Ok(());
                }
                next_check = Instant::now() + KEEP_GOING_INTERVAL;
            }
            match session.wait(next_check)? {
                Some(ready) => session.dispatch(&ready, records),
                // A signal: its handler may have told keep_going to stop.
                None => next_check = Instant::now(),
            }
            session.expire(Instant::now());
        }
    }
}

fn bind_both(listen: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let attempts = if listen.port() == 0 {
        EPHEMERAL_PORT_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(listen)?;
        match TcpListener::bind(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| ErrorKind::AddrInUse.into()))
}

/// What a poll entry stands for.
#[derive(Clone, Copy)]
enum Source {
    Udp,
    Listener,
    Client(u64),
    Forward(u64),
}

/// The mutable state of one `serve` call.
struct Session<'s> {
    server: &'s DnsServer,
    clients: HashMap<u64, Connection>,
    forwards: HashMap<u64, Forward>,
    next_key: u64,
    scratch: Vec<u8>,
}

impl Session<'_> {
    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Waits until a socket is ready or the earliest deadline (at the latest `wake`); `None` when
    /// a signal interrupted the wait.
    fn wait(&self, wake: Instant) -> io::Result<Option<Vec<(Source, PollFlags)>>> {
        let mut sources = vec![Source::Udp, Source::Listener];
        let mut fds = vec![
            PollFd::new(self.server.udp.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.server.tcp.as_fd(), PollFlags::POLLIN),
        ];
        let mut wake = wake;
        for (&key, client) in &self.clients {
            let (read, write) = client.interest();
            let mut flags = PollFlags::empty();
            flags.set(PollFlags::POLLIN, read);
            flags.set(PollFlags::POLLOUT, write);
            if !flags.is_empty() {
                sources.push(Source::Client(key));
                fds.push(PollFd::new(client.stream.as_fd(), flags));
            }
            if client.awaiting_upstream == 0 {
                wake = wake.min(client.idle_deadline);
            }
        }
        for (&key, forward) in &self.forwards {
            if let Some((fd, sending)) = forward.poll_target() {
                let flags = if sending {
                    PollFlags::POLLOUT
                } else {
                    PollFlags::POLLIN
                };
                sources.push(Source::Forward(key));
                fds.push(PollFd::new(fd, flags));
            }
            wake = wake.min(forward.deadline);
        }
        match poll(&mut fds, timeout_until(wake)) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        }
        let ready = sources
            .into_iter()
            .zip(&fds)
            .filter_map(|(source, fd)| {
                let events = fd.revents()?;
                (!events.is_empty()).then_some((source, events))
            })
            .collect();
        Ok(Some(ready))
    }

    fn dispatch(&mut self, ready: &[(Source, PollFlags)], records: &mut impl Records) {
        let now = Instant::now();
        for &(source, events) in ready {
            match source {
                Source::Udp => self.receive_datagrams(records, now),
                Source::Listener => self.accept_clients(now),
                Source::Client(key) => self.serve_client(key, events, records, now),
                Source::Forward(key) => {
                    let Some(forward) = self.forwards.get_mut(&key) else {
                        continue;
                    };
                    let progress = forward.on_ready(&mut self.scratch, now);
                    self.settle(key, progress, now);
                }
            }
        }
    }

    fn receive_datagrams(&mut self, records: &mut impl Records, now: Instant) {
        let mut buffer = std::mem::take(&mut self.scratch);
        for _ in 0..BATCH {
            match self.server.udp.recv_from(&mut buffer) {
                Ok((n, peer)) => {
                    self.handle(&buffer[..n], Client::Udp(peer), records, now);
                }
                Err(error) => {
                    if error.kind() != ErrorKind::WouldBlock {
                        tracing::debug!(%error, "receiving a UDP query failed");
                    }
                    break;
                }
            }
        }
        self.scratch = buffer;
    }

    fn accept_clients(&mut self, now: Instant) {
        for _ in 0..BATCH {
            let (stream, peer) = match self.server.tcp.accept() {
                Ok(accepted) => accepted,
                Err(error) => {
                    if error.kind() != ErrorKind::WouldBlock {
                        tracing::debug!(%error, "accepting a TCP client failed");
                    }
                    return;
                }
            };
            if self.clients.len() >= MAX_TCP_CLIENTS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let key = self.key();
            self.clients.insert(key, Connection::new(stream, peer, now));
        }
    }

    fn serve_client(
        &mut self,
        key: u64,
        events: PollFlags,
        records: &mut impl Records,
        now: Instant,
    ) {
        let Some(client) = self.clients.get_mut(&key) else {
            return;
        };
        let mut result = Ok(Vec::new());
        if events.intersects(PollFlags::POLLOUT) {
            result = client.flush().map(|()| Vec::new());
        }
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if result.is_ok() && events.intersects(readable) {
            result = client.receive(now);
        }
        match result {
            Ok(queries) => {
                for query in queries {
                    self.handle(&query, Client::Tcp(key), records, now);
                }
            }
            Err(error) => {
                tracing::debug!(%error, "dropping TCP client");
                self.clients.remove(&key);
                return;
            }
        }
        if self.clients.get(&key).is_some_and(Connection::finished) {
            self.clients.remove(&key);
        }
    }

    fn handle(&mut self, packet: &[u8], client: Client, records: &mut impl Records, now: Instant) {
        let transport = match client {
            Client::Udp(_) => Transport::Udp,
            Client::Tcp(_) => Transport::Tcp,
        };
        match answer::handle(packet, records, transport) {
            Action::Reply(bytes) => self.reply(client, &bytes, now),
            Action::Drop => {}
            Action::Forward(request) => {
                if self.forwards.len() >= MAX_FORWARDS {
                    if let Some(bytes) = answer::server_failure(&request) {
                        self.reply(client, &bytes, now);
                    }
                    return;
                }
                let source = match client {
                    Client::Udp(peer) => Some(peer.ip()),
                    Client::Tcp(key) => self.clients.get(&key).map(|c| c.peer.ip()),
                };
                let upstreams = self.server.upstreams_for(records, source);
                let (forward, progress) = Forward::start(packet, request, client, upstreams, now);
                let key = self.key();
                if let Client::Tcp(client_key) = client {
                    if let Some(connection) = self.clients.get_mut(&client_key) {
                        connection.awaiting_upstream += 1;
                    }
                }
                self.forwards.insert(key, forward);
                self.settle(key, progress, now);
            }
        }
    }

    /// Delivers a finished forward's reply and forgets it.
    fn settle(&mut self, key: u64, progress: Progress, now: Instant) {
        let Progress::Done(reply) = progress else {
            return;
        };
        let Some(forward) = self.forwards.remove(&key) else {
            return;
        };
        if let Client::Tcp(client_key) = forward.client {
            if let Some(connection) = self.clients.get_mut(&client_key) {
                connection.awaiting_upstream -= 1;
            }
        }
        if let Some(bytes) = reply {
            self.reply(forward.client, &bytes, now);
        }
        if let Client::Tcp(client_key) = forward.client {
            if self
                .clients
                .get(&client_key)
                .is_some_and(Connection::finished)
            {
                self.clients.remove(&client_key);
            }
        }
    }

    fn reply(&mut self, client: Client, bytes: &[u8], now: Instant) {
        match client {
            Client::Udp(peer) => {
                if let Err(error) = self.server.udp.send_to(bytes, peer) {
                    tracing::debug!(%peer, %error, "sending a UDP reply failed");
                }
            }
            Client::Tcp(key) => {
                let Some(connection) = self.clients.get_mut(&key) else {
                    return;
                };
                if let Err(error) = connection.send(bytes, now) {
                    tracing::debug!(%error, "dropping TCP client");
                    self.clients.remove(&key);
                }
            }
        }
    }

    /// Moves timed-out forwards on to their next upstream and disconnects idle TCP clients.
    fn expire(&mut self, now: Instant) {
        let overdue: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, forward)| now >= forward.deadline)
            .map(|(&key, _)| key)
            .collect();
        for key in overdue {
            if let Some(forward) = self.forwards.get_mut(&key) {
                let progress = forward.on_timeout(now);
                self.settle(key, progress, now);
            }
        }
        self.clients.retain(|_, client| !client.idle(now));
    }
}

/// Milliseconds until `wake`, rounded up so the loop does not spin just before a deadline.
fn timeout_until(wake: Instant) -> PollTimeout {
    let remaining = wake.saturating_duration_since(Instant::now());
    let millis = remaining.as_micros().div_ceil(1000);
    PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
}
