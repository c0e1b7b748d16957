//! STAND-IN for `berth_net::dns`, which the DNS engineer writes in `src/dns/`: the same
//! interface, answering only A queries for the network's own names over UDP (no TCP, no PTR
//! answers, no forwarding upstream: other names get REFUSED). It exists so this branch builds
//! and its user-network tests run; the merge replaces it with the real module.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// The names a network's DNS server answers for.
pub trait Records {
    fn lookup_a(&self, name: &str) -> Vec<Ipv4Addr>;
    fn lookup_ptr(&self, ip: Ipv4Addr) -> Option<String>;
}

/// A bound DNS server.
pub struct DnsServer {
    udp: UdpSocket,
}

impl DnsServer {
    pub fn bind(listen: SocketAddr, _upstreams: Vec<SocketAddr>) -> io::Result<DnsServer> {
        let udp = UdpSocket::bind(listen)?;
        udp.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(DnsServer { udp })
    }

    /// Blocking loop; calls `keep_going()` at least once per second and returns Ok when it
    /// says false.
    pub fn serve(
        &self,
        records: &mut impl Records,
        mut keep_going: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let mut buf = [0u8; 512];
        while keep_going() {
            let (n, from) = match self.udp.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            if let Some(reply) = answer(&buf[..n], &*records) {
                let _ = self.udp.send_to(&reply, from);
            }
        }
        Ok(())
    }
}

fn answer(query: &[u8], records: &impl Records) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    let name = labels.join(".");
    let ips = if qtype == 1 {
        records.lookup_a(&name)
    } else {
        Vec::new()
    };
    let mut reply = query.get(..question_end)?.to_vec();
    reply[2] = 0x84 | (query[2] & 0x01); // response, authoritative, RD copied
    reply[3] = if ips.is_empty() { 0x05 } else { 0x00 }; // REFUSED or NOERROR
    reply[4..12].copy_from_slice(&[0, 1, 0, ips.len() as u8, 0, 0, 0, 0]);
    for ip in ips.iter().take(255) {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}

/// The name servers of a resolv.conf, on port 53.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}
