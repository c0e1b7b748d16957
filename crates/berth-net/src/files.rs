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
    /// `--dns-search`: replaces the host's search domains; `.` stands for none.
    pub search: &'a [String],
    /// `--dns-option`: replaces the host's options.
    pub options: &'a [String],
    /// The embedded DNS server of a user network: the only name server then.
    pub embedded: Option<Ipv4Addr>,
    /// The container shares the host's network namespace, so the host's loopback name servers
    /// (systemd-resolved, dnsmasq) are reachable and kept.
    pub host_network: bool,
}

/// `/etc/resolv.conf` from the host's, as Docker builds it: name servers first (`--dns`, the
/// embedded server, or the host's minus the loopback ones, unreachable from the container's
/// namespace, with Google's when none is left), then the search domains and options, each
/// the host's unless the flags replace them.
pub fn resolv_conf(host: &str, opts: &ResolvOptions<'_>) -> String {
    let mut search = Vec::new();
    let mut options = Vec::new();
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
                    if !loopback || opts.host_network {
                        servers.push(server.to_string());
                    }
                }
            }
            // `domain` and `search` are two spellings of one setting (resolv.conf(5)).
            Some("search") | Some("domain") => search.push(trimmed.to_string()),
            Some("options") => options.push(trimmed.to_string()),
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
    if !opts.search.is_empty() {
        // moby drops `.` from the list, so `--dns-search .` alone leaves no search line.
        let domains: Vec<&str> = opts
            .search
            .iter()
            .map(String::as_str)
            .filter(|d| *d != ".")
            .collect();
        search = Vec::new();
        if !domains.is_empty() {
            search.push(format!("search {}", domains.join(" ")));
        }
    }
    if !opts.options.is_empty() {
        options = vec![format!("options {}", opts.options.join(" "))];
    }
    let mut text = String::new();
    for server in servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    for line in search.iter().chain(&options) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// A `--dns-search` domain as Docker accepts it (`opts.ValidateDNSSearch`): `.`, or dot-separated
/// labels of letters, digits and inner hyphens, with at least one letter, shorter than 255
/// bytes; a trailing dot is dropped.
pub fn search_domain(text: &str) -> Result<String, String> {
    let text = text.trim_matches(' ');
    if text == "." {
        return Ok(text.to_string());
    }
    let invalid = || format!("{text} is not a valid domain");
    let domain = text.trim_end().strip_suffix('.').unwrap_or(text.trim_end());
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    if !text.bytes().any(|b| b.is_ascii_alphabetic())
        || domain.len() >= 255
        || !domain.split('.').all(label_ok)
    {
        return Err(invalid());
    }
    Ok(domain.to_string())
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
                ..ResolvOptions::default()
            },
        );
        assert_eq!(text, "nameserver 1.1.1.1\n");
        let text = resolv_conf(
            "nameserver 10.1.1.1\n",
            &ResolvOptions {
                nameservers: &dns,
                embedded: Some(Ipv4Addr::new(172, 18, 0, 1)),
                ..ResolvOptions::default()
            },
        );
        assert_eq!(text, "nameserver 172.18.0.1\n");
    }

    #[test]
    fn search_and_options_flags_replace_the_hosts() {
        let host =
            "nameserver 10.1.1.1\ndomain corp\nsearch a.example b.example\noptions ndots:2\n";
        let search = ["c.example".to_string(), "d.example".to_string()];
        let options = ["ndots:5".to_string(), "timeout:1".to_string()];
        let flags = ResolvOptions {
            search: &search,
            options: &options,
            ..ResolvOptions::default()
        };
        assert_eq!(
            resolv_conf(host, &flags),
            "nameserver 10.1.1.1\nsearch c.example d.example\noptions ndots:5 timeout:1\n"
        );
        let only_search = ResolvOptions {
            search: &search,
            ..ResolvOptions::default()
        };
        assert_eq!(
            resolv_conf(host, &only_search),
            "nameserver 10.1.1.1\nsearch c.example d.example\noptions ndots:2\n"
        );
        let dot = [".".to_string()];
        let no_search = ResolvOptions {
            search: &dot,
            ..ResolvOptions::default()
        };
        assert_eq!(
            resolv_conf(host, &no_search),
            "nameserver 10.1.1.1\noptions ndots:2\n"
        );
    }

    #[test]
    fn host_network_keeps_loopback_servers() {
        let host = "nameserver 127.0.0.53\nsearch lan\n";
        let opts = ResolvOptions {
            host_network: true,
            ..ResolvOptions::default()
        };
        assert_eq!(
            resolv_conf(host, &opts),
            "nameserver 127.0.0.53\nsearch lan\n"
        );
    }

    #[test]
    fn search_domains_are_checked_as_docker_does() {
        assert_eq!(search_domain(".").unwrap(), ".");
        assert_eq!(search_domain("example.com.").unwrap(), "example.com");
        assert_eq!(search_domain(" a-1.b2 ").unwrap(), "a-1.b2");
        for bad in [
            "bad_dom",
            "-lead.com",
            "trail-.com",
            "a..b",
            "123",
            "",
            "a b",
        ] {
            assert_eq!(
                search_domain(bad).unwrap_err(),
                format!("{} is not a valid domain", bad.trim_matches(' ')),
                "{bad:?}"
            );
        }
        assert!(search_domain(&"a".repeat(255)).is_err());
    }
}
