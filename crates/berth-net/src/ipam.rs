//! IPv4 address management: subnets, Docker's default address pools, and the choice of the
//! next free address. Only the arithmetic lives here; which addresses are taken is the
//! caller's (berth keeps leases in SQLite, where a unique index makes a double lease
//! impossible).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: `172.18.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    base: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The network containing `address` (host bits are cleared).
    pub fn new(address: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        Subnet {
            base: Ipv4Addr::from(u32::from(address) & mask(prefix)),
            prefix,
        }
    }

    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) | !mask(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// Docker's default gateway: the first host address.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + u32::from(self.prefix < 31))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    /// Parses `a.b.c.d/n`; host bits must be zero, as Docker requires of `--subnet`.
    fn from_str(text: &str) -> Result<Subnet, String> {
        let (subnet, ip) = Subnet::parse_with_host(text)?;
        Subnet {
            base: ip,
            prefix: subnet.prefix,
        }
        .normalized_or(text)
    }
}

impl Subnet {
    fn normalized_or(self, text: &str) -> Result<Subnet, String> {
        let normal = Subnet::new(self.base, self.prefix);
        if normal.base != self.base {
            return Err(format!("invalid subnet {text}: it should be {normal}"));
        }
        Ok(normal)
    }

    /// Parses a CIDR that may name a host address (`172.18.0.1/16`, daemon.json's `bip`):
    /// the subnet and the address.
    pub fn parse_with_host(text: &str) -> Result<(Subnet, Ipv4Addr), String> {
        let invalid = || format!("invalid CIDR address: {text}");
        let (ip, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(invalid)?;
        Ok((Subnet::new(ip, prefix), ip))
    }
}

/// Docker's default address pools, in order: 172.17–31.0.0/16, then 192.168.0.0/16 in /20
/// steps.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let big = (17..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let small = (0..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    big.chain(small)
}

/// The first default pool that overlaps none of `taken`.
pub fn free_pool(taken: &[Subnet]) -> Option<Subnet> {
    default_pools().find(|pool| !taken.iter().any(|t| t.overlaps(pool)))
}

/// The next free host address of `subnet` after `last` (wrapping around, as Docker's
/// allocator does so a released address is not handed out again at once), skipping the
/// network and broadcast addresses and everything in `taken`.
pub fn next_free(
    subnet: Subnet,
    taken: &BTreeSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let first = u32::from(subnet.base);
    let end = u32::from(subnet.broadcast());
    let (lo, hi) = if subnet.prefix >= 31 {
        (first, end)
    } else {
        (first + 1, end - 1)
    };
    if lo > hi {
        return None;
    }
    let start = last
        .map(u32::from)
        .filter(|l| (lo..=hi).contains(l))
        .map_or(lo, |l| if l == hi { lo } else { l + 1 });
    (start..=hi)
        .chain(lo..start)
        .map(Ipv4Addr::from)
        .find(|ip| !taken.contains(ip))
}

/// Docker's MAC address for a container address: `02:42` and the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// A unicast Ethernet address written `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (the
/// six-byte forms of Go's `net.ParseMAC`, which Docker validates `--mac-address` with); a
/// multicast address is refused, as the kernel refuses it for an interface.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let separator = if text.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut groups = text.split(separator);
    for byte in mac.iter_mut() {
        let group = groups.next().filter(|g| g.len() == 2)?;
        *byte = u8::from_str_radix(group, 16).ok()?;
    }
    let unicast = mac[0] & 1 == 0;
    (groups.next().is_none() && unicast).then_some(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_checks_host_bits() {
        assert_eq!(s("10.1.0.0/16").to_string(), "10.1.0.0/16");
        assert!("10.1.0.1/16".parse::<Subnet>().is_err());
        assert!("10.1.0.0/33".parse::<Subnet>().is_err());
        assert!("10.1.0.0".parse::<Subnet>().is_err());
        let (net, host) = Subnet::parse_with_host("172.30.0.1/24").unwrap();
        assert_eq!(
            (net.to_string(), host.to_string()),
            ("172.30.0.0/24".into(), "172.30.0.1".into())
        );
    }

    #[test]
    fn overlap_and_pools() {
        assert!(s("172.17.0.0/16").overlaps(&s("172.17.5.0/24")));
        assert!(!s("172.17.0.0/16").overlaps(&s("172.18.0.0/16")));
        let taken = [s("172.17.0.0/16"), s("172.19.0.0/24")];
        assert_eq!(free_pool(&taken), Some(s("172.18.0.0/16")));
        let all: Vec<Subnet> = (17..=31)
            .map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16))
            .collect();
        assert_eq!(free_pool(&all), Some(s("192.168.0.0/20")));
        assert_eq!(s("10.0.0.0/8").first_host(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn next_free_skips_taken_and_wraps() {
        let net = s("10.0.0.0/29"); // hosts .1 – .6
        let mut taken = BTreeSet::from([Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(
            next_free(net, &taken, None),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
        taken.insert(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            next_free(net, &taken, Some(Ipv4Addr::new(10, 0, 0, 6))),
            Some(Ipv4Addr::new(10, 0, 0, 3))
        );
        assert_eq!(
            next_free(net, &taken, Some(Ipv4Addr::new(10, 0, 0, 3))),
            Some(Ipv4Addr::new(10, 0, 0, 4))
        );
        for i in 3..=6 {
            taken.insert(Ipv4Addr::new(10, 0, 0, i));
        }
        assert_eq!(next_free(net, &taken, None), None);
    }

    #[test]
    fn mac_parses_the_six_byte_forms() {
        assert_eq!(
            parse_mac("02:42:AC:11:00:09"),
            Some([2, 0x42, 0xac, 0x11, 0, 9])
        );
        assert_eq!(
            parse_mac("02-42-ac-11-00-09"),
            Some([2, 0x42, 0xac, 0x11, 0, 9])
        );
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:09:01",
            "2:42:ac:11:00:09",
            "zz:42:ac:11:00:09",
            "01:00:5e:00:00:01",
            "02:42-ac:11:00:09",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn mac_follows_docker() {
        assert_eq!(
            format_mac(mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
    }
}
