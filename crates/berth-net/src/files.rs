//! The files a container sees as `/etc/hosts` and `/etc/resolv.conf`, generated the way
//! Docker generates them.

use std::net::{IpAddr, Ipv4Addr};

/// Docker's resolvers when the host has none a container can reach.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// `/etc/hosts`: loopback and the IPv6 names, `extra` (`--add-host`, in order), then the
/// container's own address with its host name and `names` (aliases).
pub fn hosts(own: Option<(Ipv4Addr, &str)>, names: &[&str], extra: &[(String, IpAddr)]) -> String {
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some((ip, hostname)) = own {
        text.push_str(&format!("{ip}\t{hostname}"));
        for name in names.iter().filter(|n| **n != hostname) {
            text.push('\t');
            text.push_str(name);
        }
        text.push('\n');
    }
    text
}

/// What a container's resolver is told.
#[derive(Debug, Clone, Default)]
pub struct ResolvOptions<'a> {
    /// `--dns`: replaces the host's name servers.
    pub nameservers: &'a [String],
    /// The embedded DNS server of a user network: the only name server then.
    pub embedded: Option<Ipv4Addr>,
}

/// `/etc/resolv.conf` from the host's: search and options are kept; loopback name servers
/// (unreachable from the container's namespace) are dropped, and Google's are used when none
/// is left, as Docker does.
pub fn resolv_conf(host: &str, opts: &ResolvOptions<'_>) -> String {
    let mut other = Vec::new();
    let mut servers = Vec::new();
    for line in host.lines() {
        let trimmed = line.trim();
        match trimmed.split_whitespace().next() {
            Some("nameserver") => {
                if let Some(server) = trimmed.split_whitespace().nth(1) {
                    let loopback = server
                        .parse::<IpAddr>()
                        .map(|ip| ip.is_loopback())
                        .unwrap_or(true);
                    if !loopback {
                        servers.push(server.to_string());
                    }
                }
            }
            Some("search") | Some("options") | Some("domain") => other.push(trimmed.to_string()),
            _ => {}
        }
    }
    if let Some(gateway) = opts.embedded {
        servers = vec![gateway.to_string()];
    } else if !opts.nameservers.is_empty() {
        servers = opts.nameservers.to_vec();
    } else if servers.is_empty() {
        servers = FALLBACK_NAMESERVERS.iter().map(|s| s.to_string()).collect();
    }
    let mut text = String::new();
    for server in servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    for line in other {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_own_address_last() {
        let text = hosts(
            Some((Ipv4Addr::new(172, 18, 0, 2), "web")),
            &["web", "www"],
            &[("db".into(), "10.0.0.5".parse().unwrap())],
        );
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.0.0.5\tdb\n"));
        assert!(text.ends_with("172.18.0.2\tweb\twww\n"));
    }

    #[test]
    fn resolv_drops_loopback_servers() {
        let host = "nameserver 127.0.0.53\nsearch example.org\noptions ndots:2\n";
        let text = resolv_conf(host, &ResolvOptions::default());
        assert_eq!(
            text,
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch example.org\noptions ndots:2\n"
        );
        let text = resolv_conf("nameserver 10.1.1.1\n", &ResolvOptions::default());
        assert_eq!(text, "nameserver 10.1.1.1\n");
        let dns = ["1.1.1.1".to_string()];
        let text = resolv_conf(
            "nameserver 10.1.1.1\n",
            &ResolvOptions {
                nameservers: &dns,
                embedded: None,
            },
        );
        assert_eq!(text, "nameserver 1.1.1.1\n");
        let text = resolv_conf(
            "nameserver 10.1.1.1\n",
            &ResolvOptions {
                nameservers: &dns,
                embedded: Some(Ipv4Addr::new(172, 18, 0, 1)),
            },
        );
        assert_eq!(text, "nameserver 172.18.0.1\n");
    }
}
