//! Deciding what to do with one query: answer it from the network's records, hand it to the
//! upstream resolvers, or refuse it. Pure apart from the `Records` look-ups, so it is tested
//! without sockets.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinDecodable;

use super::Records;

/// Docker's embedded DNS answers with this TTL too; see the module docs for why it is harmless.
pub(crate) const LOCAL_TTL: u32 = 600;

/// The UDP payload size advertised in our own EDNS records: the DNS Flag Day 2020 value, which
/// fits an IPv6 packet on any link without fragmentation.
const ADVERTISED_UDP_PAYLOAD: u16 = 1232;

/// A header is all a FORMERR needs; anything shorter is not DNS at all.
const HEADER_LEN: usize = 12;

/// How the query reached us: over UDP the answer must fit the client's buffer, over TCP it
/// need not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// What the server does with one received packet.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send these bytes back to the client.
    Reply(Vec<u8>),
    /// The records do not know the name: relay the packet to the upstreams. The parsed query is
    /// kept to build the SERVFAIL if none of them answers.
    Forward(Message),
    /// Not worth an answer (a response sent to us, or bytes that are not DNS).
    Drop,
}

/// Decides the fate of `packet`; never panics, whatever the bytes.
pub(crate) fn handle(packet: &[u8], records: &mut impl Records, transport: Transport) -> Action {
    let request = match Message::from_vec(packet) {
        Ok(request) => request,
        Err(_) => return format_error(packet),
    };
    if request.metadata.message_type != MessageType::Query {
        return Action::Drop;
    }
    if request.metadata.op_code != OpCode::Query {
        return reply_code(&request, ResponseCode::NotImp);
    }
    let [query] = request.queries.as_slice() else {
        // RFC 9619: a query carries exactly one question.
        return reply_code(&request, ResponseCode::FormErr);
    };
    if query.query_class() != DNSClass::IN {
        return Action::Forward(request);
    }
    match local_answers(query, records) {
        Some(answers) => match encode_answer(&request, answers, transport) {
            Some(bytes) => Action::Reply(bytes),
            None => reply_code(&request, ResponseCode::ServFail),
        },
        None => Action::Forward(request),
    }
}

/// The SERVFAIL sent when no upstream answered `request`.
pub(crate) fn server_failure(request: &Message) -> Option<Vec<u8>> {
    match reply_code(request, ResponseCode::ServFail) {
        Action::Reply(bytes) => Some(bytes),
        _ => None,
    }
}

/// The lower-case name without its trailing dot: the form `Records` is asked about.
pub(crate) fn record_key(name: &Name) -> String {
    let mut key = name.to_ascii();
    if key.ends_with('.') {
        key.pop();
    }
    key.make_ascii_lowercase();
    key
}

/// `Some(answers)` when the records own the name (an empty list is NODATA), `None` when the
/// question belongs to the rest of the world.
fn local_answers(query: &Query, records: &mut impl Records) -> Option<Vec<Record>> {
    let name = query.name();
    if query.query_type() == RecordType::PTR {
        let ip = reverse_ipv4(name)?;
        let target = Name::from_ascii(records.lookup_ptr(ip)?).ok()?;
        let mut target = target.to_lowercase();
        target.set_fqdn(true);
        return Some(vec![Record::from_rdata(
            name.clone(),
            LOCAL_TTL,
            RData::PTR(PTR(target)),
        )]);
    }
    let addresses = records.lookup_a(&record_key(name));
    if addresses.is_empty() {
        return None;
    }
    // Containers are IPv4-only: a known name has no AAAA (or other) records, and forwarding
    // the question would leak a container's name to the host's resolvers.
    let wants_a = matches!(query.query_type(), RecordType::A | RecordType::ANY);
    let answers = if wants_a {
        addresses
            .into_iter()
            .map(|ip| Record::from_rdata(name.clone(), LOCAL_TTL, RData::A(A(ip))))
            .collect()
    } else {
        Vec::new()
    };
    Some(answers)
}

/// `4.3.2.1.in-addr.arpa.` → 1.2.3.4; any other name (shorter, IPv6, not arpa) → `None`.
fn reverse_ipv4(name: &Name) -> Option<Ipv4Addr> {
    let network = name.parse_arpa_name().ok()?;
    match network.addr() {
        IpAddr::V4(ip) if network.prefix_len() == 32 => Some(ip),
        _ => None,
    }
}

fn response_to(request: &Message) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    // We recurse on the client's behalf through the upstreams.
    response.metadata.recursion_available = true;
    response.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(ADVERTISED_UDP_PAYLOAD);
        response.set_edns(edns);
    }
    response
}

fn encode_answer(request: &Message, answers: Vec<Record>, transport: Transport) -> Option<Vec<u8>> {
    let mut response = response_to(request);
    response.metadata.authoritative = true;
    response.add_answers(answers);
    let bytes = response.to_vec().ok()?;
    if transport == Transport::Udp && bytes.len() > usize::from(request.max_payload()) {
        // Many containers behind one alias: tell the client to come back over TCP.
        return response.truncate().to_vec().ok();
    }
    Some(bytes)
}

fn reply_code(request: &Message, code: ResponseCode) -> Action {
    let mut response = response_to(request);
    response.metadata.response_code = code;
    match response.to_vec() {
        Ok(bytes) => Action::Reply(bytes),
        Err(_) => Action::Drop,
    }
}

/// A query whose header parses but whose body does not gets FORMERR (RFC 1035 §4.1.1);
/// responses and fragments shorter than a header are dropped.
fn format_error(packet: &[u8]) -> Action {
    let Some(header_bytes) = packet.get(..HEADER_LEN) else {
        return Action::Drop;
    };
    let Ok(header) = Header::from_bytes(header_bytes) else {
        return Action::Drop;
    };
    if header.metadata.message_type != MessageType::Query {
        return Action::Drop;
    }
    let response = Message::error_msg(
        header.metadata.id,
        header.metadata.op_code,
        ResponseCode::FormErr,
    );
    match response.to_vec() {
        Ok(bytes) => Action::Reply(bytes),
        Err(_) => Action::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::{network_table, question};

    fn decide(packet: &[u8]) -> Action {
        handle(packet, &mut network_table(), Transport::Udp)
    }

    /// Every reply to untrusted bytes must itself be a well-formed response.
    fn assert_sane(packet: &[u8]) {
        if let Action::Reply(bytes) = decide(packet) {
            let reply = Message::from_vec(&bytes).expect("our own reply parses");
            assert_eq!(reply.metadata.message_type, MessageType::Response);
        }
    }

    /// xorshift64: deterministic noise without a dependency.
    fn noise(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn names_become_lowercase_keys_without_the_root_dot() {
        for (asked, key) in [
            ("Web.", "web"),
            ("web", "web"),
            ("My-App.Net1.", "my-app.net1"),
        ] {
            assert_eq!(record_key(&Name::from_ascii(asked).unwrap()), key);
        }
    }

    #[test]
    fn truncated_queries_never_panic() {
        let valid = question("cache.net1", RecordType::A).to_vec().unwrap();
        for len in 0..valid.len() {
            assert_sane(&valid[..len]);
        }
        assert!(matches!(decide(&valid[..5]), Action::Drop));
        assert!(matches!(decide(&valid[..HEADER_LEN]), Action::Reply(_)));
    }

    #[test]
    fn flipped_bits_never_panic() {
        let valid = question("3.0.89.10.in-addr.arpa", RecordType::PTR)
            .to_vec()
            .unwrap();
        for byte in 0..valid.len() {
            for bit in 0..8 {
                let mut packet = valid.clone();
                packet[byte] ^= 1 << bit;
                assert_sane(&packet);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (noise(&mut state) % 300) as usize;
            let mut packet: Vec<u8> = (0..len).map(|_| noise(&mut state) as u8).collect();
            // Half of them look like one-question queries, so parsing goes deeper.
            if len >= HEADER_LEN && noise(&mut state).is_multiple_of(2) {
                packet[2] &= 0x07;
                packet[4..6].copy_from_slice(&[0, 1]);
            }
            assert_sane(&packet);
        }
    }

    #[test]
    fn responses_are_dropped_not_answered() {
        let mut message = question("web", RecordType::A);
        message.metadata.message_type = MessageType::Response;
        assert!(matches!(decide(&message.to_vec().unwrap()), Action::Drop));
    }

    #[test]
    fn two_questions_are_a_format_error() {
        let mut message = question("web", RecordType::A);
        message.add_query(Query::query(Name::from_ascii("db").unwrap(), RecordType::A));
        let Action::Reply(bytes) = decide(&message.to_vec().unwrap()) else {
            panic!("expected FORMERR");
        };
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(reply.metadata.id, message.metadata.id);
    }

    #[test]
    fn other_opcodes_are_not_implemented() {
        let mut message = question("web", RecordType::A);
        message.metadata.op_code = OpCode::Status;
        let Action::Reply(bytes) = decide(&message.to_vec().unwrap()) else {
            panic!("expected NOTIMP");
        };
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    }

    #[test]
    fn unknown_names_and_other_classes_are_forwarded() {
        let unknown = question("example.org", RecordType::A);
        assert!(matches!(
            decide(&unknown.to_vec().unwrap()),
            Action::Forward(_)
        ));
        let mut chaos = question("web", RecordType::TXT);
        chaos.queries[0].set_query_class(DNSClass::CH);
        assert!(matches!(
            decide(&chaos.to_vec().unwrap()),
            Action::Forward(_)
        ));
        let partial_reverse = question("89.10.in-addr.arpa", RecordType::PTR);
        assert!(matches!(
            decide(&partial_reverse.to_vec().unwrap()),
            Action::Forward(_)
        ));
    }

    #[test]
    fn edns_queries_get_an_opt_record_back() {
        let mut message = question("web", RecordType::A);
        message.set_edns(Edns::new());
        let Action::Reply(bytes) = decide(&message.to_vec().unwrap()) else {
            panic!("expected an answer");
        };
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.max_payload(), ADVERTISED_UDP_PAYLOAD);
        assert_eq!(reply.answers.len(), 1);
    }
}
