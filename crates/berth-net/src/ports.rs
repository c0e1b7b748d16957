//! Published ports: Docker's `-p [ip:][hostPort:]containerPort[/proto]` and `--expose` specs,
//! including ranges.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// `tcp` or `udp` (Docker also knows `sctp`, which berth does not forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl FromStr for Proto {
    type Err = String;

    fn from_str(text: &str) -> Result<Proto, String> {
        match text.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(format!("invalid proto: {text}")),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container port and protocol: Docker's `80/tcp` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerPort {
    pub port: u16,
    pub proto: Proto,
}

impl fmt::Display for ContainerPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

impl FromStr for ContainerPort {
    type Err = String;

    /// `80` or `80/udp`.
    fn from_str(text: &str) -> Result<ContainerPort, String> {
        let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
        Ok(ContainerPort {
            port: port_number(port).ok_or_else(|| format!("invalid port: {text}"))?,
            proto: proto.parse()?,
        })
    }
}

/// One requested publication: a container port on a host address and a host port (`0`: any
/// free port) or a range of host ports (the first free one is taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    pub container: ContainerPort,
    /// `None`: every host address (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    pub host_ports: (u16, u16),
}

/// A publication in force: what `berth port` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMapping {
    pub container: ContainerPort,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
}

impl PortMapping {
    /// The host address as Docker prints it.
    pub fn host_ip_text(&self) -> String {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string()
    }
}

fn port_number(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p > 0)
}

fn range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a)?, port_number(b)?);
            (a <= b).then_some((a, b))
        }
        None => port_number(text).map(|p| (p, p)),
    }
}

/// Parses one `-p` value into one request per container port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortRequest>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto.parse::<Proto>()?),
        None => (spec, Proto::Tcp),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => return Err(format!("invalid port format: {spec}")),
    };
    let host_ip = match ip.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => None,
        other => Some(
            other
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("invalid IP address: {other}"))?,
        ),
    };
    let (c_lo, c_hi) =
        range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?)
    };
    let count = c_hi - c_lo;
    let mut out = Vec::new();
    for k in 0..=count {
        let host_ports = match host_range {
            None => (0, 0),
            // One container port, a host range: any free port of the range.
            Some(r) if count == 0 => r,
            Some((h_lo, h_hi)) if h_hi - h_lo == count => (h_lo + k, h_lo + k),
            Some(_) => {
                return Err(format!(
                    "invalid ranges specified for container and host Ports: {container} and {host}"
                ))
            }
        };
        out.push(PortRequest {
            container: ContainerPort {
                port: c_lo + k,
                proto,
            },
            host_ip,
            host_ports,
        });
    }
    Ok(out)
}

/// Parses one `--expose` value (`80`, `80/udp`, `8000-8010`).
pub fn parse_expose(spec: &str) -> Result<Vec<ContainerPort>, String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto: Proto = proto.parse()?;
    let (lo, hi) =
        range(ports).ok_or_else(|| format!("invalid range format for --expose: {spec}"))?;
    Ok((lo..=hi)
        .map(|port| ContainerPort { port, proto })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortRequest {
        let mut v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn forms() {
        let r = one("8080:80");
        assert_eq!(
            (r.host_ip, r.host_ports, r.container.to_string()),
            (None, (8080, 8080), "80/tcp".into())
        );
        let r = one("127.0.0.1:8080:80/udp");
        assert_eq!(r.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(r.container.proto, Proto::Udp);
        assert_eq!(one("80").host_ports, (0, 0));
        assert_eq!(one("127.0.0.1::80").host_ports, (0, 0));
        assert_eq!(one("9000-9010:80").host_ports, (9000, 9010));
    }

    #[test]
    fn ranges_pair_up() {
        let v = parse_publish("8000-8002:80-82").unwrap();
        let pairs: Vec<(u16, u16)> = v
            .iter()
            .map(|r| (r.host_ports.0, r.container.port))
            .collect();
        assert_eq!(pairs, [(8000, 80), (8001, 81), (8002, 82)]);
        assert!(parse_publish("8000-8001:80-82").is_err());
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "", "x", "80/sctpx", "0:80", "70000", "1:2:3:4", "a.b:1:2", "9-8:80",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expose() {
        assert_eq!(parse_expose("80").unwrap().len(), 1);
        assert_eq!(parse_expose("8000-8002/udp").unwrap().len(), 3);
        assert!(parse_expose("x").is_err());
    }
}
