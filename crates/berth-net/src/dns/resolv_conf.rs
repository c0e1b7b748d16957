//! The host's upstream resolvers, read from resolv.conf text (resolv.conf(5)).

use std::net::{IpAddr, SocketAddr};

const DNS_PORT: u16 = 53;

/// The `nameserver` addresses of a resolv.conf, in file order, each on port 53. Comments,
/// other options and unparsable addresses are skipped; an IPv6 zone (`fe80::1%eth0`) is
/// dropped because a zone name cannot be carried by a plain `SocketAddr`.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut upstreams: Vec<SocketAddr> = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(address) = words.next() else {
            continue;
        };
        let address = address.split('%').next().unwrap_or_default();
        let Ok(ip) = address.parse::<IpAddr>() else {
            continue;
        };
        let upstream = SocketAddr::new(ip, DNS_PORT);
        if !upstreams.contains(&upstream) {
            upstreams.push(upstream);
        }
    }
    upstreams
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ipv4_and_ipv6_nameservers_in_order() {
        let text = "# generated\nsearch example.org\nnameserver 10.0.0.2\n\
                    nameserver   2001:db8::53  \noptions ndots:2\nnameserver 127.0.0.53\n";
        let expected: Vec<SocketAddr> = vec![
            "10.0.0.2:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            "127.0.0.53:53".parse().unwrap(),
        ];
        assert_eq!(upstreams_from_resolv_conf(text), expected);
    }

    #[test]
    fn skips_comments_garbage_and_duplicates() {
        let text = "#nameserver 1.1.1.1\n; nameserver 2.2.2.2\nnameserver\nnameserver not-an-ip\n\
                    nameserver 300.1.1.1\nnameservers 3.3.3.3\n nameserver 4.4.4.4 # home\n\
                    nameserver fe80::1%eth0\nnameserver 4.4.4.4\n\u{0}\u{ff}nameserver\n";
        let expected: Vec<SocketAddr> = vec![
            "4.4.4.4:53".parse().unwrap(),
            "[fe80::1]:53".parse().unwrap(),
        ];
        assert_eq!(upstreams_from_resolv_conf(text), expected);
    }

    #[test]
    fn empty_file_has_no_upstreams() {
        assert!(upstreams_from_resolv_conf("").is_empty());
        assert!(upstreams_from_resolv_conf("search lan\n").is_empty());
    }
}
