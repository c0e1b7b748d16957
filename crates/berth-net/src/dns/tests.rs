//! The server on real sockets: it runs on a thread bound to 127.0.0.1 on an ephemeral port and
//! is queried by real UDP and TCP clients; upstreams are real sockets on 127.0.0.1 too.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::tcp::{frame, take_message};
use super::{DnsServer, Records};

/// Generous: only reached when the server under test is broken.
const CLIENT_PATIENCE: Duration = Duration::from_secs(10);
const LOOPBACK_ANY_PORT: &str = "127.0.0.1:0";

#[derive(Default, Clone)]
pub(super) struct Table {
    a: HashMap<String, Vec<Ipv4Addr>>,
    ptr: HashMap<Ipv4Addr, String>,
    upstreams: HashMap<IpAddr, Vec<SocketAddr>>,
}

impl Table {
    pub(super) fn with(mut self, name: &str, ips: &[Ipv4Addr]) -> Table {
        self.a.insert(name.to_string(), ips.to_vec());
        for ip in ips {
            self.ptr
                .entry(*ip)
                .or_insert_with(|| format!("{name}.net1"));
        }
        self
    }

    /// Queries from `client` go to `upstreams` (a container's `--dns`).
    fn forwarding(mut self, client: IpAddr, upstreams: Vec<SocketAddr>) -> Table {
        self.upstreams.insert(client, upstreams);
        self
    }
}

impl Records for Table {
    fn lookup_a(&self, name: &str) -> Vec<Ipv4Addr> {
        self.a.get(name).cloned().unwrap_or_default()
    }

    fn lookup_ptr(&self, ip: Ipv4Addr) -> Option<String> {
        self.ptr.get(&ip).cloned()
    }

    fn upstreams_for(&self, client: IpAddr) -> Option<Vec<SocketAddr>> {
        self.upstreams.get(&client).cloned()
    }
}

pub(super) fn network_table() -> Table {
    Table::default()
        .with("web", &[Ipv4Addr::new(10, 89, 0, 2)])
        .with("db", &[Ipv4Addr::new(10, 89, 0, 3)])
        .with(
            "cache",
            &[Ipv4Addr::new(10, 89, 0, 4), Ipv4Addr::new(10, 89, 0, 5)],
        )
}

/// A server serving on its own thread until dropped.
struct Running {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start(mut records: Table, upstreams: Vec<SocketAddr>, timeout: Duration) -> Running {
        let mut server = DnsServer::bind(LOOPBACK_ANY_PORT.parse().unwrap(), upstreams).unwrap();
        server.set_upstream_timeout(timeout);
        let address = server.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            server.serve(&mut records, || !stop_flag.load(Ordering::Relaxed))
        });
        Running {
            address,
            stop,
            thread: Some(thread),
        }
    }

    fn with_upstreams(upstreams: Vec<SocketAddr>) -> Running {
        Running::start(network_table(), upstreams, Duration::from_millis(300))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let outcome = thread.join();
            if !thread::panicking() {
                outcome.unwrap().unwrap();
            }
        }
    }
}

pub(super) fn question(name: &str, record_type: RecordType) -> Message {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
    query
}

fn udp_client() -> UdpSocket {
    let socket = UdpSocket::bind(LOOPBACK_ANY_PORT).unwrap();
    socket.set_read_timeout(Some(CLIENT_PATIENCE)).unwrap();
    socket
}

fn exchange_udp(server: SocketAddr, packet: &[u8]) -> Message {
    let socket = udp_client();
    socket.send_to(packet, server).unwrap();
    let mut buffer = [0u8; 65_535];
    let n = socket.recv(&mut buffer).expect("no reply from the server");
    Message::from_vec(&buffer[..n]).expect("reply does not parse")
}

fn ask_udp(server: SocketAddr, query: &Message) -> Message {
    let reply = exchange_udp(server, &query.to_vec().unwrap());
    assert_eq!(reply.metadata.id, query.metadata.id);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    reply
}

fn ask_tcp(server: SocketAddr, queries: &[&Message]) -> Vec<Message> {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(CLIENT_PATIENCE)).unwrap();
    for query in queries {
        stream
            .write_all(&frame(&query.to_vec().unwrap()).unwrap())
            .unwrap();
    }
    let mut received = Vec::new();
    let mut replies = Vec::new();
    while replies.len() < queries.len() {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("no reply over TCP");
        assert!(n > 0, "server closed the connection early");
        received.extend_from_slice(&chunk[..n]);
        while let Some(message) = take_message(&mut received) {
            replies.push(Message::from_vec(&message).unwrap());
        }
    }
    replies
}

/// Names decoded from the wire are fully qualified, names parsed from text need not be.
fn assert_echoes_question(reply: &Message, query: &Message) {
    let [asked] = query.queries.as_slice() else {
        panic!("test queries carry one question");
    };
    let [echoed] = reply.queries.as_slice() else {
        panic!("reply echoes {:?}", reply.queries);
    };
    assert!(
        echoed.name().eq_ignore_root_case(asked.name()),
        "{echoed} for {asked}"
    );
    assert_eq!(echoed.query_type(), asked.query_type());
}

fn a_records(reply: &Message) -> Vec<Ipv4Addr> {
    reply
        .answers
        .iter()
        .filter_map(|record| match record.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect()
}

/// How a fake upstream behaves.
#[derive(Clone, Copy)]
enum Upstream {
    /// Answers every question with this address.
    Answers(Ipv4Addr),
    /// Says REFUSED to everything.
    Refuses,
    /// Over UDP answers truncated and empty; over TCP (same port) answers with this address.
    TruncatesUdp(Ipv4Addr),
}

/// A resolver on 127.0.0.1 that answers from a thread until dropped.
struct FakeUpstream {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeUpstream {
    fn start(behaviour: Upstream) -> FakeUpstream {
        let udp = UdpSocket::bind(LOOPBACK_ANY_PORT).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let address = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let flag = Arc::clone(&stop);
        threads.push(thread::spawn(move || {
            let mut buffer = [0u8; 65_535];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = udp.recv_from(&mut buffer) else {
                    continue;
                };
                let reply = upstream_reply(&buffer[..n], behaviour, false);
                udp.send_to(&reply, peer).unwrap();
            }
        }));
        if let Upstream::TruncatesUdp(_) = behaviour {
            let listener = TcpListener::bind(address).unwrap();
            listener.set_nonblocking(true).unwrap();
            let flag = Arc::clone(&stop);
            threads.push(thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = listener.accept() else {
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    let mut prefix = [0u8; 2];
                    stream.read_exact(&mut prefix).unwrap();
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                    stream.read_exact(&mut query).unwrap();
                    let reply = upstream_reply(&query, behaviour, true);
                    stream.write_all(&frame(&reply).unwrap()).unwrap();
                }
            }));
        }
        FakeUpstream {
            address,
            stop,
            threads,
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn upstream_reply(packet: &[u8], behaviour: Upstream, over_tcp: bool) -> Vec<u8> {
    let query = Message::from_vec(packet).unwrap();
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.iter().cloned());
    let name = query.queries[0].name().clone();
    match behaviour {
        Upstream::Answers(ip) => {
            reply.add_answer(Record::from_rdata(name, 30, RData::A(A(ip))));
        }
        Upstream::Refuses => reply.metadata.response_code = ResponseCode::Refused,
        Upstream::TruncatesUdp(ip) if over_tcp => {
            reply.add_answer(Record::from_rdata(name, 30, RData::A(A(ip))));
        }
        Upstream::TruncatesUdp(_) => reply.metadata.truncation = true,
    }
    reply.to_vec().unwrap()
}

/// A UDP port that is bound but never answers.
fn silent_upstream() -> UdpSocket {
    UdpSocket::bind(LOOPBACK_ANY_PORT).unwrap()
}

/// A UDP port nobody listens on: the kernel answers with port-unreachable.
fn closed_port() -> SocketAddr {
    UdpSocket::bind(LOOPBACK_ANY_PORT)
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn known_name_gets_an_authoritative_a_record() {
    let server = Running::with_upstreams(Vec::new());
    let reply = ask_udp(server.address, &question("web", RecordType::A));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(reply.metadata.recursion_available);
    assert_eq!(a_records(&reply), [Ipv4Addr::new(10, 89, 0, 2)]);
    assert_eq!(reply.answers[0].ttl, 600);
    assert_echoes_question(&reply, &question("web", RecordType::A));
}

#[test]
fn alias_of_several_containers_answers_every_address() {
    let server = Running::with_upstreams(Vec::new());
    let reply = ask_udp(server.address, &question("cache.", RecordType::A));
    assert_eq!(
        a_records(&reply),
        [Ipv4Addr::new(10, 89, 0, 4), Ipv4Addr::new(10, 89, 0, 5)]
    );
}

#[test]
fn names_match_case_insensitively_and_keep_the_asked_case() {
    let server = Running::with_upstreams(Vec::new());
    let reply = ask_udp(server.address, &question("WeB.", RecordType::A));
    assert_eq!(a_records(&reply), [Ipv4Addr::new(10, 89, 0, 2)]);
    assert_eq!(reply.answers[0].name.to_ascii(), "WeB.");
}

#[test]
fn aaaa_of_a_known_name_is_empty_noerror() {
    let upstream = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 1)));
    let server = Running::with_upstreams(vec![upstream.address]);
    let reply = ask_udp(server.address, &question("db", RecordType::AAAA));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(reply.answers.is_empty());
}

#[test]
fn ptr_of_a_container_address_names_it() {
    let server = Running::with_upstreams(Vec::new());
    let reply = ask_udp(
        server.address,
        &question("3.0.89.10.in-addr.arpa.", RecordType::PTR),
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let [record] = reply.answers.as_slice() else {
        panic!("expected one PTR record, got {:?}", reply.answers);
    };
    let RData::PTR(target) = &record.data else {
        panic!("expected PTR data, got {:?}", record.data);
    };
    assert_eq!(target.0.to_ascii(), "db.net1.");
}

#[test]
fn unknown_names_and_addresses_are_forwarded_with_the_client_id() {
    let upstream = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 7)));
    let server = Running::with_upstreams(vec![upstream.address]);
    // A search-domain suffix on a known name is not special: it is someone else's name.
    for name in ["example.org", "web.example.org", "WEB.lan."] {
        let query = question(name, RecordType::A);
        let reply = ask_udp(server.address, &query);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(!reply.metadata.authoritative, "{name} answered locally");
        assert_eq!(a_records(&reply), [Ipv4Addr::new(192, 0, 2, 7)]);
        assert_echoes_question(&reply, &query);
    }
    let reverse = question("9.2.0.192.in-addr.arpa.", RecordType::PTR);
    let reply = ask_udp(server.address, &reverse);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.metadata.authoritative);
}

#[test]
fn silent_upstream_ends_in_servfail() {
    let silent = silent_upstream();
    let server = Running::with_upstreams(vec![silent.local_addr().unwrap()]);
    let query = question("example.org", RecordType::A);
    let reply = ask_udp(server.address, &query);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_echoes_question(&reply, &query);
}

#[test]
fn no_upstream_at_all_is_servfail() {
    let server = Running::with_upstreams(Vec::new());
    let reply = ask_udp(server.address, &question("example.org", RecordType::A));
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn failing_upstreams_are_skipped_in_order() {
    let silent = silent_upstream();
    let refusing = FakeUpstream::start(Upstream::Refuses);
    let good = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 8)));
    let upstreams = vec![
        closed_port(),
        silent.local_addr().unwrap(),
        refusing.address,
        good.address,
    ];
    let server = Running::with_upstreams(upstreams);
    let reply = ask_udp(server.address, &question("example.org", RecordType::A));
    assert_eq!(a_records(&reply), [Ipv4Addr::new(192, 0, 2, 8)]);
}

#[test]
fn last_refusal_is_relayed_when_nobody_answers() {
    let refusing = FakeUpstream::start(Upstream::Refuses);
    let server = Running::with_upstreams(vec![refusing.address]);
    let reply = ask_udp(server.address, &question("example.org", RecordType::A));
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn a_pending_forward_does_not_hold_up_other_clients() {
    let silent = silent_upstream();
    // The forward stays pending for the whole test; the local answer must still arrive.
    let server = Running::start(
        network_table(),
        vec![silent.local_addr().unwrap()],
        Duration::from_secs(3600),
    );
    let stuck = udp_client();
    stuck
        .send_to(
            &question("example.org", RecordType::A).to_vec().unwrap(),
            server.address,
        )
        .unwrap();
    let reply = ask_udp(server.address, &question("web", RecordType::A));
    assert_eq!(a_records(&reply), [Ipv4Addr::new(10, 89, 0, 2)]);
    let reply = ask_tcp(server.address, &[&question("db", RecordType::A)]);
    assert_eq!(a_records(&reply[0]), [Ipv4Addr::new(10, 89, 0, 3)]);
}

#[test]
fn tcp_answers_pipelined_local_and_forwarded_queries() {
    let upstream = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 9)));
    let server = Running::with_upstreams(vec![upstream.address]);
    let local = question("web", RecordType::A);
    let remote = question("example.org", RecordType::A);
    let replies = ask_tcp(server.address, &[&local, &remote]);
    let by_id = |id: u16| replies.iter().find(|r| r.metadata.id == id).unwrap();
    assert_eq!(
        a_records(by_id(local.metadata.id)),
        [Ipv4Addr::new(10, 89, 0, 2)]
    );
    assert_eq!(
        a_records(by_id(remote.metadata.id)),
        [Ipv4Addr::new(192, 0, 2, 9)]
    );
}

#[test]
fn truncated_upstream_reply_is_fetched_over_tcp_for_tcp_clients() {
    let upstream = FakeUpstream::start(Upstream::TruncatesUdp(Ipv4Addr::new(192, 0, 2, 10)));
    let server = Running::with_upstreams(vec![upstream.address]);
    let query = question("big.example.org", RecordType::A);
    let replies = ask_tcp(server.address, &[&query]);
    assert!(!replies[0].metadata.truncation);
    assert_eq!(a_records(&replies[0]), [Ipv4Addr::new(192, 0, 2, 10)]);
    // A UDP client gets the truncated reply and retries over TCP itself.
    let reply = ask_udp(server.address, &query);
    assert!(reply.metadata.truncation);
}

#[test]
fn large_local_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let many: Vec<Ipv4Addr> = (1..=60).map(|i| Ipv4Addr::new(10, 89, 1, i)).collect();
    let server = Running::start(
        Table::default().with("swarm", &many),
        Vec::new(),
        Duration::from_millis(300),
    );
    let query = question("swarm", RecordType::A);
    let reply = ask_udp(server.address, &query);
    assert!(reply.metadata.truncation);
    let replies = ask_tcp(server.address, &[&query]);
    assert_eq!(a_records(&replies[0]), many);
}

#[test]
fn garbage_gets_formerr_or_silence_and_the_server_keeps_answering() {
    let server = Running::with_upstreams(Vec::new());
    let socket = udp_client();
    let valid = question("web", RecordType::A).to_vec().unwrap();
    let mut garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0xff; 3],
        vec![0xff; 512],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    garbage.extend((0..valid.len()).map(|len| valid[..len].to_vec()));
    for packet in &garbage {
        socket.send_to(packet, server.address).unwrap();
    }
    // A header announcing a question that is not there: FORMERR with the id kept.
    let reply = exchange_udp(server.address, &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(reply.metadata.id, 0x1234);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    // Garbage over TCP, including a frame cut short by a hang-up.
    for bytes in [&b"\x00\x05\xff\xff\xff\xff\xff"[..], b"\xff\xff\x00"] {
        let mut stream = TcpStream::connect(server.address).unwrap();
        stream.write_all(bytes).unwrap();
    }
    let reply = ask_udp(server.address, &question("web", RecordType::A));
    assert_eq!(a_records(&reply), [Ipv4Addr::new(10, 89, 0, 2)]);
}

#[test]
fn bind_refuses_to_forward_to_itself() {
    let server = DnsServer::bind(
        LOOPBACK_ANY_PORT.parse().unwrap(),
        vec![
            "127.0.0.1:0".parse().unwrap(),
            "192.0.2.53:53".parse().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(server.upstreams(), ["192.0.2.53:53".parse().unwrap()]);
    assert_ne!(server.local_addr().unwrap().port(), 0);
}

#[test]
fn tcp_client_that_half_closes_still_gets_its_forwarded_reply() {
    let upstream = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 11)));
    let server = Running::with_upstreams(vec![upstream.address]);
    let query = question("example.org", RecordType::A);
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream.set_read_timeout(Some(CLIENT_PATIENCE)).unwrap();
    stream
        .write_all(&frame(&query.to_vec().unwrap()).unwrap())
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).unwrap();
    let reply = take_message(&mut received).expect("a whole reply before the close");
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, query.metadata.id);
    assert_eq!(a_records(&reply), [Ipv4Addr::new(192, 0, 2, 11)]);
    assert!(received.is_empty());
}

#[test]
fn a_client_with_its_own_upstreams_is_forwarded_to_them() {
    let shared = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 20)));
    let own = FakeUpstream::start(Upstream::Answers(Ipv4Addr::new(192, 0, 2, 21)));
    let picky: IpAddr = "127.0.0.1".parse().unwrap();
    let server = Running::start(
        network_table().forwarding(picky, vec![closed_port(), own.address]),
        vec![shared.address],
        Duration::from_millis(300),
    );
    let query = question("example.org", RecordType::A);
    // From 127.0.0.1: its own upstreams, over UDP and TCP; local names stay local.
    assert_eq!(
        a_records(&ask_udp(server.address, &query)),
        [Ipv4Addr::new(192, 0, 2, 21)]
    );
    let local = question("web", RecordType::A);
    let replies = ask_tcp(server.address, &[&query, &local]);
    let by_id = |id: u16| replies.iter().find(|r| r.metadata.id == id).unwrap();
    assert_eq!(
        a_records(by_id(query.metadata.id)),
        [Ipv4Addr::new(192, 0, 2, 21)]
    );
    assert_eq!(
        a_records(by_id(local.metadata.id)),
        [Ipv4Addr::new(10, 89, 0, 2)]
    );
    // From another loopback address: the server's upstreams.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other.set_read_timeout(Some(CLIENT_PATIENCE)).unwrap();
    other
        .send_to(&query.to_vec().unwrap(), server.address)
        .unwrap();
    let mut buffer = [0u8; 65_535];
    let n = other.recv(&mut buffer).expect("no reply from the server");
    let reply = Message::from_vec(&buffer[..n]).unwrap();
    assert_eq!(a_records(&reply), [Ipv4Addr::new(192, 0, 2, 20)]);
}
