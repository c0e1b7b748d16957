//! Packet filtering and NAT for berth's bridges: nftables rule sets applied with `nft -f -`.
//!
//! Why nftables: it is the kernel's current packet filter (iptables-nft is itself a front end
//! to it), one table per network and one per container with published ports make every
//! teardown a single atomic `delete table`, and a rule set is applied atomically. The `nft`
//! binary (Debian's nftables) parses the rule language, so berth writes no netlink
//! expressions by hand.
//!
//! - Network table `ip berth-<bridge>`: masquerade of the subnet's traffic leaving through
//!   any other interface (`--internal`: no masquerade, and forwarding between the bridge and
//!   anything else is dropped).
//! - Port table `ip berth-p-<id12>`: kernel DNAT (no userland proxy) of the host ports in
//!   `prerouting` (traffic from outside and from containers) and `output` (traffic from the
//!   host itself, including 127.0.0.1, which needs `route_localnet` on the bridge), plus
//!   masquerade of loopback-sourced and hairpin (subnet-sourced, DNATed) traffic so replies
//!   come back through the NAT.
//!
//! Docker's iptables may leave the `ip filter FORWARD` policy at DROP (and with
//! `br_netfilter` even traffic between two ports of one bridge passes that chain). An accept
//! in berth's own table cannot overrule another table's drop, so while a berth bridge exists
//! two accept rules for it are inserted there — with `iptables` itself, so the rules stay in
//! the format Docker's iptables-nft reads — and removed with the bridge. Nothing else of
//! Docker's is touched.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::ports::PortMapping;

/// The nftables table of a network, named after its bridge.
pub fn network_table(bridge: &str) -> String {
    format!("berth-{bridge}")
}

/// The nftables table of a container's published ports.
pub fn ports_table(container_id: &str) -> String {
    format!("berth-p-{}", &container_id[..container_id.len().min(12)])
}

/// The network's rule set (replaces any previous one).
pub fn network_rules(bridge: &str, subnet: Subnet, internal: bool) -> String {
    let table = network_table(bridge);
    let mut rules = format!(
        "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n"
    );
    if internal {
        rules.push_str(&format!(
            "\t\tiifname \"{bridge}\" oifname != \"{bridge}\" drop\n\
             \t\toifname \"{bridge}\" iifname != \"{bridge}\" drop\n"
        ));
    }
    rules.push_str("\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    if !internal {
        rules.push_str(&format!(
            "\t\tip saddr {subnet} oifname != \"{bridge}\" masquerade\n"
        ));
    }
    rules.push_str("\t}\n}\n");
    rules
}

/// The rule set publishing `mappings` of the container at `ip` on `bridge`.
pub fn port_rules(
    container_id: &str,
    bridge: &str,
    subnet: Subnet,
    ip: Ipv4Addr,
    mappings: &[PortMapping],
) -> String {
    let table = ports_table(container_id);
    let mut dnat = String::new();
    let mut snat = String::new();
    for m in mappings {
        let proto = m.container.proto.as_str();
        let dest = match m.host_ip {
            None => "fib daddr type local".to_string(),
            Some(host) => format!("ip daddr {host}"),
        };
        dnat.push_str(&format!(
            "\t\t{dest} {proto} dport {} dnat to {ip}:{}\n",
            m.host_port, m.container.port
        ));
        snat.push_str(&format!(
            "\t\tip saddr 127.0.0.0/8 ip daddr {ip} {proto} dport {port} oifname \"{bridge}\" masquerade\n\
             \t\tip saddr {subnet} ip daddr {ip} {proto} dport {port} ct status dnat masquerade\n",
            port = m.container.port
        ));
    }
    format!(
        "add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n{dnat}\t}}\n\
         \tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n{dnat}\t}}\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n{snat}\t}}\n}}\n"
    )
}

/// Deletes `table` if it exists (adding it first makes the deletion always valid).
pub fn delete_table_rules(table: &str) -> String {
    format!("add table ip {table}\ndelete table ip {table}\n")
}

/// Applies a rule set atomically.
pub fn apply(rules: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("failed to run nft: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(rules.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Whether Docker's (iptables) `filter FORWARD` chain drops by default.
fn forward_policy_drops() -> bool {
    Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == "-P FORWARD DROP")
        })
        .unwrap_or(false)
}

fn iptables(args: &[&str]) -> bool {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const FORWARD_COMMENT: &str = "berth";

/// Lets forwarded traffic in and out of `bridge` through a dropping `filter FORWARD` chain.
pub fn allow_forwarding(bridge: &str) {
    if !forward_policy_drops() {
        return;
    }
    for dir in ["-i", "-o"] {
        let rule = forward_accept(dir, bridge);
        let mut check = vec!["-C"];
        check.extend(rule);
        if !iptables(&check) {
            let mut insert = vec!["-I"];
            insert.extend(rule);
            if !iptables(&insert) {
                tracing::warn!(
                    bridge,
                    "failed to allow forwarding through iptables FORWARD"
                );
            }
        }
    }
}

/// The FORWARD rule accepting traffic into (`-o`) or out of (`-i`) `bridge`.
fn forward_accept<'a>(dir: &'a str, bridge: &'a str) -> [&'a str; 9] {
    [
        "FORWARD",
        dir,
        bridge,
        "-m",
        "comment",
        "--comment",
        FORWARD_COMMENT,
        "-j",
        "ACCEPT",
    ]
}

/// Removes what [`allow_forwarding`] added (every copy of it).
pub fn remove_forwarding(bridge: &str) {
    for dir in ["-i", "-o"] {
        let rule = forward_accept(dir, bridge);
        let mut delete = vec!["-D"];
        delete.extend(rule);
        for _ in 0..8 {
            if !iptables(&delete) {
                break;
            }
        }
    }
}

/// Sets `/proc/sys/net/ipv4/<key>` (e.g. `conf/<bridge>/route_localnet`) to `value` unless it
/// already has it.
pub fn set_sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/net/ipv4/{key}");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("failed to set {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ContainerPort, Proto};

    #[test]
    fn network_rules_masquerade_unless_internal() {
        let subnet: Subnet = "172.18.0.0/16".parse().unwrap();
        let rules = network_rules("br-x", subnet, false);
        assert!(rules.contains("ip saddr 172.18.0.0/16 oifname != \"br-x\" masquerade"));
        assert!(!rules.contains("drop"));
        let rules = network_rules("br-x", subnet, true);
        assert!(!rules.contains("masquerade"));
        assert!(rules.contains("drop"));
    }

    #[test]
    fn port_rules_dnat_both_hooks() {
        let m = PortMapping {
            container: ContainerPort {
                port: 80,
                proto: Proto::Tcp,
            },
            host_ip: None,
            host_port: 8080,
        };
        let rules = port_rules(
            "0123456789abcdef",
            "berth0",
            "172.18.0.0/16".parse().unwrap(),
            Ipv4Addr::new(172, 18, 0, 2),
            &[m],
        );
        assert!(rules.contains("table ip berth-p-0123456789ab"));
        assert_eq!(
            rules
                .matches("fib daddr type local tcp dport 8080 dnat to 172.18.0.2:80")
                .count(),
            2
        );
        assert!(rules.contains(
            "ip saddr 127.0.0.0/8 ip daddr 172.18.0.2 tcp dport 80 oifname \"berth0\" masquerade"
        ));
    }
}
