//! `run`/`create` flags that shape the container's kernel view: `--sysctl`, `--mac-address`,
//! `--domainname`. Root only (real namespaces and veths); each test skips when not root.

use berth_tests::{is_root, Berth};

fn root_berth() -> Option<Berth> {
    is_root().then(Berth::with_busybox)
}

fn host_sysctl(path: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{path}")).expect("host sysctl readable")
}

#[test]
fn sysctls_are_set_inside_and_never_on_the_host() {
    let Some(b) = root_berth() else { return };
    let port_start = host_sysctl("net/ipv4/ip_unprivileged_port_start");
    let shmmni = host_sysctl("kernel/shmmni");
    let id = b.ok([
        "create",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=80",
        "--sysctl",
        "kernel.shmmni=1000",
        "busybox",
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_unprivileged_port_start \
         /proc/sys/kernel/shmmni",
    ]);
    let doc = b.inspect_container(id.trim());
    assert_eq!(
        doc["HostConfig"]["Sysctls"],
        serde_json::json!({
            "net.ipv4.ip_forward": "1",
            "net.ipv4.ip_unprivileged_port_start": "80",
            "kernel.shmmni": "1000",
        })
    );
    let out = b.ok(["start", "-a", id.trim()]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1", "80", "1000"]
    );
    assert_eq!(
        host_sysctl("net/ipv4/ip_unprivileged_port_start"),
        port_start
    );
    assert_eq!(host_sysctl("kernel/shmmni"), shmmni);
}

#[test]
fn sysctls_outside_the_containers_namespaces_are_refused() {
    let Some(b) = root_berth() else { return };
    let before = b.ok(["ps", "-aq"]);
    for (args, message) in [
        (
            vec!["--sysctl", "kernel.core_pattern=core"],
            "sysctl \"kernel.core_pattern\" is not in a separate kernel namespace",
        ),
        (
            vec!["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace",
        ),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend(args);
        cmd.extend(["busybox", "true"]);
        let run = b.fails(&cmd);
        assert_eq!(run.code, 125, "{cmd:?}");
        assert!(run.stderr.contains(message), "{cmd:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    }
    assert_eq!(b.ok(["ps", "-aq"]), before, "nothing is stored");
    // The IPC ones stay allowed beside the host's network.
    let out = b.ok([
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "kernel.shmmni=1000",
        "busybox",
        "cat",
        "/proc/sys/kernel/shmmni",
    ]);
    assert_eq!(out.trim(), "1000");
}

#[test]
fn mac_address_is_eth0s_on_the_first_network() {
    let Some(b) = root_berth() else { return };
    let out = b.ok([
        "run",
        "--rm",
        "--mac-address",
        "92:D0:C6:0A:29:33",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out.trim(), "92:d0:c6:0a:29:33");

    b.ok(["network", "create", "rf-mac"]);
    b.ok([
        "run",
        "-d",
        "--name",
        "mac",
        "--network",
        "rf-mac",
        "--mac-address",
        "92:d0:c6:0a:29:34",
        "busybox",
        "sleep",
        "60",
    ]);
    let doc = b.inspect_container("mac");
    assert_eq!(doc["Config"]["MacAddress"], "92:d0:c6:0a:29:34");
    assert_eq!(
        doc["NetworkSettings"]["Networks"]["rf-mac"]["MacAddress"],
        "92:d0:c6:0a:29:34"
    );
    let net = b.ok(["network", "inspect", "rf-mac"]);
    assert!(
        net.contains("\"MacAddress\": \"92:d0:c6:0a:29:34\""),
        "{net}"
    );
    // A second network keeps the derived address.
    b.ok(["network", "connect", "bridge", "mac"]);
    let inside = b.ok(["exec", "mac", "cat", "/sys/class/net/eth1/address"]);
    assert!(inside.starts_with("02:42:"), "{inside}");
    b.ok(["rm", "-f", "mac"]);
    b.ok(["network", "rm", "rf-mac"]);

    let before = b.ok(["ps", "-aq"]);
    let bad = b.fails([
        "create",
        "--mac-address",
        "92:d0:c6:0a:29",
        "busybox",
        "true",
    ]);
    assert_eq!(bad.code, 125);
    assert_eq!(bad.stderr.trim().lines().count(), 1, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("92:d0:c6:0a:29 is not a valid mac address"),
        "{}",
        bad.stderr
    );
    for mode in ["host", "none"] {
        let run = b.fails([
            "create",
            "--network",
            mode,
            "--mac-address",
            "92:d0:c6:0a:29:33",
            "busybox",
            "true",
        ]);
        assert_eq!(run.code, 125);
        assert!(
            run.stderr
                .contains("conflicting options: mac-address and the network mode"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(b.ok(["ps", "-aq"]), before, "nothing is stored");
}

#[test]
fn domainname_is_the_uts_domain_and_in_etc_hosts() {
    let Some(b) = root_berth() else { return };
    let id = b.ok([
        "create",
        "--hostname",
        "box",
        "--domainname",
        "example.test",
        "busybox",
        "sh",
        "-c",
        "cat /proc/sys/kernel/domainname /etc/hostname; hostname -d; grep -v '^[f:]' /etc/hosts; \
         ip -4 -o addr show eth0",
    ]);
    let doc = b.inspect_container(id.trim());
    assert_eq!(doc["Config"]["Domainname"], "example.test");
    let out = b.ok(["start", "-a", id.trim()]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("example.test"), "{out}");
    assert_eq!(
        lines.next(),
        Some("box"),
        "/etc/hostname keeps the bare name: {out}"
    );
    assert_eq!(lines.next(), Some("example.test"), "hostname -d: {out}");
    let ip = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .expect("eth0 has an address");
    assert!(
        out.contains(&format!("\n{ip}\tbox.example.test box\n")),
        "{out}"
    );

    let long = "d".repeat(65);
    let run = b.fails(["create", "--domainname", &long, "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}
