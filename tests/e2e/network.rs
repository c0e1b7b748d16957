//! Bridge networking, published ports and user networks, end to end. Root only: every test
//! makes real bridges, veths, namespaces and nft tables, and checks they are gone afterwards.

use std::net::TcpListener;
use std::process::Command;

use berth_tests::{is_root, Berth};

/// An installation with busybox, or `None` when not root (the test then skips).
fn root_berth() -> Option<Berth> {
    is_root().then(Berth::with_busybox)
}

/// A host TCP port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `curl` from the host; the body, or an empty string when nothing answered.
fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", url])
        .output()
        .expect("curl runs (apt-get install curl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A shell line that fetches `/` of `host:port` with busybox nc and prints the body's last
/// line (busybox wget crashes in a static, NSS-less rootfs; nc does not).
fn fetch(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port} | tail -n 1")
}

const HELLO: &str = "<h1>hello</h1>\n";

/// The fixture's httpd answers on `host:port`, seen from the host.
fn assert_serves(host: &str, port: impl std::fmt::Display) {
    assert_eq!(
        curl(&format!("http://{host}:{port}/")),
        HELLO,
        "{host}:{port}"
    );
}

fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn host_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "get", "192.0.2.123"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().map(str::to_string);
        }
    }
    None
}

/// The names of the user networks, one a line.
fn custom_networks(b: &Berth) -> String {
    b.ok([
        "network",
        "ls",
        "--filter",
        "type=custom",
        "--format",
        "{{.Name}}",
    ])
}

fn httpd(b: &Berth, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d"];
    args.extend(extra);
    args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    b.ok(args).trim().to_string()
}

#[test]
fn published_port_reaches_httpd_from_host_and_containers() {
    let Some(b) = root_berth() else { return };
    let port = free_port();
    let mapping = format!("{port}:80");
    let id = httpd(&b, &["--name", "web", "-p", &mapping]);
    let table = format!("berth-p-{}", &id[..12]);
    assert!(nft_tables().contains(&table));

    assert_serves("127.0.0.1", port);
    if let Some(host) = host_address() {
        assert_serves(&host, port);
    }
    // Hairpin: another container through the gateway, and the container itself.
    let doc = b.inspect_container("web");
    let gateway = doc["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!gateway.is_empty(), "{doc}");
    let body = b.ok(["run", "--rm", "busybox", "sh", "-c", &fetch(&gateway, port)]);
    assert_eq!(body, HELLO);
    let body = b.ok(["exec", "web", "sh", "-c", &fetch(&gateway, port)]);
    assert_eq!(body, HELLO);

    assert_eq!(b.ok(["port", "web"]), format!("80/tcp -> 0.0.0.0:{port}\n"));
    assert_eq!(b.ok(["port", "web", "80"]), format!("0.0.0.0:{port}\n"));
    let run = b.fails(["port", "web", "81/tcp"]);
    assert!(
        run.stderr
            .contains("No public port '81/tcp' published for web"),
        "{}",
        run.stderr
    );
    let ps = b.ok(["ps", "--format", "{{.Ports}}"]);
    assert_eq!(ps.trim(), format!("0.0.0.0:{port}->80/tcp"));
    let ports = &doc["NetworkSettings"]["Ports"]["80/tcp"][0];
    assert_eq!(ports["HostPort"], port.to_string());
    let ip = doc["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap();
    assert!(
        ip.starts_with(&gateway[..gateway.rfind('.').unwrap()]),
        "{ip} vs {gateway}"
    );
    assert_eq!(
        doc["NetworkSettings"]["MacAddress"].as_str().unwrap().len(),
        17
    );

    // Every rule goes when the container stops; the port is free again.
    b.ok(["stop", "-t", "1", "web"]);
    assert!(!nft_tables().contains(&table));
    assert_eq!(curl(&format!("http://127.0.0.1:{port}/")), "");
    assert_eq!(b.ok(["port", "web"]), "");
    b.ok(["start", "web"]);
    assert_serves("127.0.0.1", port);
}

#[test]
fn port_conflict_is_a_clear_error() {
    let Some(b) = root_berth() else { return };
    let port = free_port();
    let mapping = format!("{port}:80");
    httpd(&b, &["-p", &mapping]);
    let run = b.fails(["run", "--rm", "-p", &mapping, "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains(&format!(
            "Bind for 0.0.0.0:{port} failed: port is already allocated"
        )),
        "{}",
        run.stderr
    );
    // A host process holding a port is a conflict too.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let run = b.fails([
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{taken}:80"),
        "busybox",
        "true",
    ]);
    assert!(
        run.stderr.contains("port is already allocated"),
        "{}",
        run.stderr
    );
    let run = b.fails(["run", "--rm", "-p", "99999:80", "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert!(run.stderr.contains("invalid hostPort"), "{}", run.stderr);
}

#[test]
fn publish_all_maps_every_exposed_port() {
    let Some(b) = root_berth() else { return };
    httpd(
        &b,
        &[
            "--name", "web", "--expose", "80", "--expose", "9000/udp", "-P",
        ],
    );
    let out = b.ok(["port", "web"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("80/tcp -> 0.0.0.0:"), "{out}");
    assert!(lines[1].starts_with("9000/udp -> 0.0.0.0:"), "{out}");
    let port = lines[0].rsplit(':').next().unwrap();
    assert_serves("127.0.0.1", port);
}

#[test]
fn user_network_names_and_aliases_resolve() {
    let Some(b) = root_berth() else { return };
    let id = b
        .ok(["network", "create", "--label", "team=a", "appnet"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let run = b.fails(["network", "create", "appnet"]);
    assert!(
        run.stderr
            .contains("network with name appnet already exists"),
        "{}",
        run.stderr
    );
    let srv = httpd(
        &b,
        &[
            "--name",
            "srv",
            "--network",
            "appnet",
            "--network-alias",
            "db",
        ],
    );
    for name in ["srv", "db", &srv[..12]] {
        let body = b.ok([
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            &fetch(name, 80),
        ]);
        assert_eq!(body, HELLO, "by {name}");
    }
    let resolv = b.ok([
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    let net = &b.ok(["network", "inspect", "appnet"]);
    let doc: serde_json::Value = serde_json::from_str(net).unwrap();
    let gateway = doc[0]["IPAM"]["Config"][0]["Gateway"].as_str().unwrap();
    assert_eq!(resolv, format!("nameserver {gateway}\n"));
    assert_eq!(doc[0]["Labels"]["team"], "a");
    assert_eq!(doc[0]["Containers"][&srv]["Name"], "srv");

    let c = b.inspect_container("srv");
    let ep = &c["NetworkSettings"]["Networks"]["appnet"];
    assert_eq!(ep["Aliases"][0], "db");
    assert_eq!(ep["NetworkID"], id.as_str());
    assert_eq!(ep["Gateway"], gateway);

    // Not on the default bridge: the names are the user network's.
    let run = b.run(["run", "--rm", "busybox", "sh", "-c", &fetch("srv", 80)]);
    assert!(!run.stdout.contains("hello"));

    let run = b.fails(["network", "rm", "appnet"]);
    assert!(
        run.stderr.contains("has active endpoints"),
        "{}",
        run.stderr
    );
    b.ok(["rm", "-f", "srv"]);
    let bridge = format!("br-{}", &id[..12]);
    assert!(link_exists(&bridge));
    assert_eq!(b.ok(["network", "rm", "appnet"]), "appnet\n");
    assert!(!link_exists(&bridge));
    assert!(!nft_tables().contains(&format!("berth-{bridge}")));
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let Some(b) = root_berth() else { return };
    b.ok(["network", "create", "side"]);
    b.ok(["run", "-d", "--name", "cnt", "busybox", "sleep", "60"]);
    b.ok(["network", "connect", "--alias", "cee", "side", "cnt"]);
    let links = b.ok(["exec", "cnt", "ls", "/sys/class/net"]);
    assert_eq!(
        links.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "eth1", "lo"]
    );
    let doc = b.inspect_container("cnt");
    assert!(
        doc["NetworkSettings"]["Networks"]["side"]["IPAddress"]
            .as_str()
            .unwrap()
            != ""
    );
    b.ok(["network", "disconnect", "side", "cnt"]);
    let links = b.ok(["exec", "cnt", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["eth0", "lo"]);
    b.ok(["network", "rm", "side"]);
}

#[test]
fn none_network_has_loopback_only_and_host_shares_the_host() {
    let Some(b) = root_berth() else { return };
    let out = b.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; ip route; cat /sys/class/net/lo/operstate",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["lo", "unknown"]
    );
    let doc_none = b.ok(["create", "--network", "none", "busybox", "true"]);
    let doc = b.inspect_container(doc_none.trim());
    assert!(
        doc["NetworkSettings"]["Networks"]["none"].is_object(),
        "{doc}"
    );
}

#[test]
fn internal_network_has_no_route_out() {
    let Some(b) = root_berth() else { return };
    b.ok([
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.231.7.0/24",
        "sealed",
    ]);
    let routes = b.ok([
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ip",
        "route",
    ]);
    assert_eq!(
        routes.trim(),
        "10.231.7.0/24 dev eth0 scope link  src 10.231.7.2"
    );
    if let Some(host) = host_address() {
        let run = b.run([
            "run",
            "--rm",
            "--network",
            "sealed",
            "busybox",
            "sh",
            "-c",
            &format!("nc -w 2 {host} 22 </dev/null"),
        ]);
        assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
    }
    let listing = b.ok([
        "network",
        "ls",
        "--filter",
        "name=sealed",
        "--format",
        "{{.Name}} {{.Internal}}",
    ]);
    assert_eq!(listing, "sealed true\n");
}

#[test]
fn ipam_never_hands_one_address_to_two_containers() {
    let Some(b) = root_berth() else { return };
    // A /29 has six host addresses; the gateway takes one.
    b.ok(["network", "create", "--subnet", "10.231.8.0/29", "tiny"]);
    let started: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|_| s.spawn(|| b.ok(["run", "-d", "--network", "tiny", "busybox", "sleep", "60"])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().trim().to_string())
            .collect()
    });
    let mut ips: Vec<String> = started
        .iter()
        .map(|id| {
            b.inspect_container(id)["NetworkSettings"]["Networks"]["tiny"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 5, "{ips:?}");
    assert!(!ips.contains(&"10.231.8.1".to_string()));
    let run = b.fails(["run", "--rm", "--network", "tiny", "busybox", "true"]);
    assert!(
        run.stderr.contains("no available IPv4 addresses"),
        "{}",
        run.stderr
    );
    // A released address can be leased again; a held one cannot.
    let ip_of = |id: &str| {
        b.inspect_container(id)["NetworkSettings"]["Networks"]["tiny"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (freed, held) = (ip_of(&started[0]), ip_of(&started[1]));
    b.ok(["rm", "-f", &started[0]]);
    b.ok([
        "run",
        "--rm",
        "--network",
        "tiny",
        "--ip",
        &freed,
        "busybox",
        "true",
    ]);
    let run = b.fails([
        "run",
        "--rm",
        "--network",
        "tiny",
        "--ip",
        &held,
        "busybox",
        "true",
    ]);
    assert!(
        run.stderr.contains("Address already in use"),
        "{}",
        run.stderr
    );
}

#[test]
fn etc_files_follow_the_flags() {
    let Some(b) = root_berth() else { return };
    let out = b.ok([
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "192.0.2.53",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hosts /etc/resolv.conf",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("box"));
    assert!(out.contains("10.1.2.3\tdb.local\n"), "{out}");
    assert!(out.contains("\tgw\n"), "{out}");
    assert!(out.lines().any(|l| l.ends_with("\tbox")), "{out}");
    assert!(out.ends_with("nameserver 192.0.2.53\n"), "{out}");
}

#[test]
fn network_ls_inspect_prune_and_errors() {
    let Some(b) = root_berth() else { return };
    let names = b.ok(["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "bridge\nhost\nnone\n");
    let header = b.ok(["network", "ls"]);
    let first: Vec<&str> = header.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first, ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]);
    b.ok(["network", "create", "one"]);
    b.ok(["network", "create", "two"]);
    assert_eq!(b.ok(["network", "ls", "-q"]).lines().count(), 5);
    assert_eq!(
        b.ok(["network", "ls", "-q", "--no-trunc"])
            .lines()
            .next()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(custom_networks(&b), "one\ntwo\n");
    let run = b.fails(["network", "rm", "bridge"]);
    assert!(
        run.stderr
            .contains("bridge is a pre-defined network and cannot be removed"),
        "{}",
        run.stderr
    );
    let run = b.fails(["network", "inspect", "nope"]);
    assert!(
        run.stderr.contains("network nope not found"),
        "{}",
        run.stderr
    );
    let run = b.fails(["run", "--rm", "--network", "nope", "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("network nope not found"),
        "{}",
        run.stderr
    );
    let run = b.fails(["network", "create", "--subnet", "10.0.0.1/8", "bad"]);
    assert!(run.stderr.contains("invalid subnet"), "{}", run.stderr);
    let driver = b.ok(["network", "inspect", "-f", "{{.Driver}} {{.Scope}}", "one"]);
    assert_eq!(driver, "bridge local\n");
    b.ok(["create", "--network", "two", "busybox", "true"]);
    let pruned = b.ok(["network", "prune", "-f"]);
    assert_eq!(pruned, "Deleted Networks:\none\n");
    assert_eq!(
        b.ok(["network", "ls", "--format", "{{.Name}}"]),
        "bridge\nhost\nnone\ntwo\n"
    );
}

#[test]
fn nothing_is_left_behind() {
    if !is_root() {
        return;
    }
    let (bridge, user_bridge, ids, root);
    {
        let b = Berth::with_busybox();
        bridge = b.bridge();
        let net = b.ok(["network", "create", "leak"]).trim().to_string();
        user_bridge = format!("br-{}", &net[..12]);
        let port = free_port();
        let mut started = vec![httpd(&b, &["-p", &format!("{port}:80")])];
        started.push(httpd(&b, &["--network", "leak"]));
        // A monitor killed without warning: reconcile must clean up after it.
        started.push(
            b.ok(["run", "-d", "busybox", "sleep", "60"])
                .trim()
                .to_string(),
        );
        let doc = b.inspect_container(&started[2]);
        let monitor_pid = b.ok(["inspect", "-f", "{{.State.Pid}}", &started[2]]);
        assert!(!monitor_pid.trim().is_empty(), "{doc}");
        assert!(link_exists(&bridge) && link_exists(&user_bridge));
        ids = started;
        root = b.runroot();
        // `b` drops here: `system reset` must remove everything.
    }
    assert!(!link_exists(&bridge), "{bridge} is left");
    assert!(!link_exists(&user_bridge), "{user_bridge} is left");
    let tables = nft_tables();
    for id in &ids {
        assert!(
            !tables.contains(&format!("berth-p-{}", &id[..12])),
            "{tables}"
        );
    }
    assert!(!tables.contains(&format!("berth-{bridge}")), "{tables}");
    assert!(
        !tables.contains(&format!("berth-{user_bridge}")),
        "{tables}"
    );
    let forward = Command::new("iptables")
        .args(["-S", "FORWARD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(!forward.contains(&bridge), "{forward}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "mounts left under {}",
        root.display()
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines()
            .any(|l| l.contains("dns-server") && l.contains(root.to_str().unwrap())),
        "{ps}"
    );
}

#[test]
fn stopped_containers_release_everything() {
    let Some(b) = root_berth() else { return };
    let port = free_port();
    let id = httpd(&b, &["-p", &format!("{port}:80")]);
    let pin = b.runroot().join("netns").join(&id);
    assert!(pin.exists());
    let doc = b.inspect_container(&id);
    assert_eq!(
        doc["NetworkSettings"]["SandboxKey"],
        pin.display().to_string()
    );
    b.ok(["rm", "-f", &id]);
    assert!(!pin.exists());
    assert!(!nft_tables().contains(&format!("berth-p-{}", &id[..12])));
    // The veth goes with the namespace, which the kernel cleans up in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let veths = Command::new("ip")
            .args(["-o", "link", "show", "master", &b.bridge()])
            .output()
            .unwrap();
        if veths.stdout.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "veth left: {}",
            String::from_utf8_lossy(&veths.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The same port at once: nothing holds it any more.
    httpd(&b, &["-p", &format!("{port}:80")]);
    assert_serves("127.0.0.1", port);
}

#[test]
fn dns_search_and_options_reach_resolv_conf_and_survive_restart() {
    let Some(b) = root_berth() else { return };
    let flags = [
        "--dns-search",
        "a.example",
        "--dns-search",
        "b.example.",
        "--dns-option",
        "ndots:3",
        "--dns-opt",
        "timeout:1",
    ];
    let mut args = vec!["run", "-d", "--name", "dnsflags", "--dns", "192.0.2.53"];
    args.extend(flags);
    args.extend(["busybox", "sleep", "60"]);
    b.ok(args);
    let expected = "nameserver 192.0.2.53\nsearch a.example b.example\noptions ndots:3 timeout:1\n";
    assert_eq!(
        b.ok(["exec", "dnsflags", "cat", "/etc/resolv.conf"]),
        expected
    );
    let host = &b.inspect_container("dnsflags")["HostConfig"];
    assert_eq!(
        host["DnsSearch"],
        serde_json::json!(["a.example", "b.example"])
    );
    assert_eq!(
        host["DnsOptions"],
        serde_json::json!(["ndots:3", "timeout:1"])
    );
    b.ok(["restart", "-t", "1", "dnsflags"]);
    assert_eq!(
        b.ok(["exec", "dnsflags", "cat", "/etc/resolv.conf"]),
        expected
    );

    // No flags: empty lists, as Docker shows them.
    b.ok(["create", "--name", "plain", "busybox", "true"]);
    let host = &b.inspect_container("plain")["HostConfig"];
    assert_eq!(host["DnsSearch"], serde_json::json!([]));
    assert_eq!(host["DnsOptions"], serde_json::json!([]));

    // On a user network the embedded server stays the only name server.
    b.ok(["network", "create", "--subnet", "10.231.9.0/24", "flagnet"]);
    let mut args = vec!["run", "--rm", "--network", "flagnet"];
    args.extend(flags);
    args.extend(["busybox", "cat", "/etc/resolv.conf"]);
    assert_eq!(
        b.ok(args),
        "nameserver 10.231.9.1\nsearch a.example b.example\noptions ndots:3 timeout:1\n"
    );

    // `.` means no search line at all.
    let resolv = b.ok([
        "run",
        "--rm",
        "--dns-search",
        ".",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(!resolv.contains("search"), "{resolv}");
    // The host's network: the host's file with the flags applied.
    let resolv = b.ok([
        "run",
        "--rm",
        "--network",
        "host",
        "--dns-option",
        "attempts:4",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(resolv.ends_with("options attempts:4\n"), "{resolv}");

    let run = b.fails(["run", "--rm", "--dns-search", "bad_dom", "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains(
            "invalid argument \"bad_dom\" for \"--dns-search\" flag: bad_dom is not a valid domain"
        ),
        "{}",
        run.stderr
    );
    let run = b.fails(["create", "--dns", "dns.example", "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("dns.example is not an ip address"),
        "{}",
        run.stderr
    );
    let run = b.fails([
        "create",
        "--network",
        "container:dnsflags",
        "--dns",
        "192.0.2.1",
        "busybox",
        "true",
    ]);
    assert!(
        run.stderr
            .contains("conflicting options: dns and the network mode"),
        "{}",
        run.stderr
    );
    assert_eq!(b.ok(["ps", "-aq"]).lines().count(), 2);
}

/// A DNS server on `ip:53` (a loopback address of the test's own) that answers every A
/// question with `answer` and everything else with an empty NOERROR, until dropped.
struct Responder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(ip: std::net::Ipv4Addr, answer: std::net::Ipv4Addr) -> Responder {
        use hickory_proto::op::{Message, OpCode};
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::{RData, Record, RecordType};
        use std::sync::atomic::Ordering;

        let socket = std::net::UdpSocket::bind((ip, 53)).expect("bind the test's resolver");
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.metadata.recursion_available = true;
                reply.add_queries(query.queries.iter().cloned());
                for q in query
                    .queries
                    .iter()
                    .filter(|q| q.query_type() == RecordType::A)
                {
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        30,
                        RData::A(A(answer)),
                    ));
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer);
            }
        });
        Responder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn per_container_dns_is_the_embedded_servers_upstream_for_that_container() {
    let Some(b) = root_berth() else { return };
    // Two resolvers of the test's own on loopback addresses no other test uses.
    let block = (std::process::id() % 250 + 1) as u8;
    let (first, second) = (
        std::net::Ipv4Addr::new(127, 53, block, 1),
        std::net::Ipv4Addr::new(127, 53, block, 2),
    );
    let _first = Responder::start(first, std::net::Ipv4Addr::new(192, 0, 2, 31));
    let _second = Responder::start(second, std::net::Ipv4Addr::new(192, 0, 2, 32));
    b.ok(["network", "create", "--subnet", "10.231.11.0/24", "fwdnet"]);
    for (name, dns) in [("one", first), ("two", second)] {
        b.ok([
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "fwdnet",
            "--dns",
            &dns.to_string(),
            "busybox",
            "sleep",
            "60",
        ]);
    }
    // The container's resolver is the embedded server, not its --dns.
    assert_eq!(
        b.ok(["exec", "one", "cat", "/etc/resolv.conf"]),
        "nameserver 10.231.11.1\n"
    );
    for (name, expected, other) in [
        ("one", "192.0.2.31", "192.0.2.32"),
        ("two", "192.0.2.32", "192.0.2.31"),
    ] {
        let out = b.ok(["exec", name, "nslookup", "probe.example"]);
        assert!(
            out.contains(&format!("Address: {expected}")),
            "{name}: {out}"
        );
        assert!(!out.contains(other), "{name}: {out}");
    }
    // The network's own names are still answered by the embedded server.
    let two_ip = b.inspect_container("two")["NetworkSettings"]["Networks"]["fwdnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = b.ok(["exec", "one", "nslookup", "two"]);
    assert!(out.contains(&format!("Address: {two_ip}")), "{out}");
    // After a restart the container still gets its own upstreams.
    b.ok(["restart", "-t", "1", "two"]);
    let out = b.ok(["exec", "two", "nslookup", "probe.example"]);
    assert!(out.contains("Address: 192.0.2.32"), "{out}");
}

#[test]
fn network_prune_filters_by_label_and_age() {
    let Some(b) = root_berth() else { return };
    let names = || custom_networks(&b);
    let prune_args = |filters: &[&str]| {
        let mut args = vec!["network".to_string(), "prune".into(), "-f".into()];
        for f in filters {
            args.extend(["--filter".to_string(), f.to_string()]);
        }
        args
    };
    let prune = |filters: &[&str]| b.ok(prune_args(filters));
    b.ok(["network", "create", "--label", "team=a", "early"]);
    b.ok([
        "network", "create", "--label", "team=b", "--label", "tier=web", "late",
    ]);
    b.ok(["network", "create", "plain"]);
    b.ok(["network", "create", "--label", "team=a", "busy"]);
    b.ok(["create", "--network", "busy", "busybox", "true"]);
    let all = "busy\nearly\nlate\nplain\n";
    assert_eq!(names(), all);

    for (filters, why) in [
        (vec!["colour=red"], "invalid filter 'colour'"),
        (
            vec!["nope"],
            "bad format of filter (expected name=value): nope",
        ),
        (
            vec!["until=soon"],
            "failed to parse value as time or duration: \"soon\"",
        ),
        (
            vec!["until=1h", "until=2h"],
            "more than one until filter specified",
        ),
    ] {
        let run = b.fails(prune_args(&filters));
        assert!(run.stderr.contains(why), "{filters:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert_eq!(names(), all);
    }

    // Everything is younger than an hour.
    assert_eq!(prune(&["until=1h"]), "");
    assert_eq!(names(), all);
    // Only what carries no `team` label.
    assert_eq!(prune(&["label!=team"]), "Deleted Networks:\nplain\n");
    // A timestamp: what was created no later than `early`.
    let created = b.ok(["network", "inspect", "-f", "{{.Created}}", "early"]);
    let until = format!("until={}", created.trim());
    assert_eq!(prune(&[&until, "label=team"]), "Deleted Networks:\nearly\n");
    // `label!=K=V` keeps only the exact pair; `label=K` takes any value.
    assert_eq!(prune(&["label!=tier=web"]), "");
    assert_eq!(
        prune(&["label=tier", "label!=tier=db"]),
        "Deleted Networks:\nlate\n"
    );
    // A network in use is never pruned, whatever the filters say.
    assert_eq!(prune(&["label=team=a"]), "");
    assert_eq!(names(), "busy\n");
}

#[test]
fn system_reset_keeps_a_bridge_another_root_still_uses() {
    if !is_root() {
        return;
    }
    let first = Berth::with_busybox();
    let bridge = first.bridge();
    // A second installation told to use the same default bridge, before it makes its store.
    let second = Berth::new();
    std::fs::write(
        second.root().join("daemon.json"),
        format!("{{\"bridge\": \"{bridge}\"}}\n"),
    )
    .unwrap();
    second.import_busybox("busybox");
    first.ok(["run", "-d", "--name", "mine", "busybox", "sleep", "60"]);
    second.ok(["run", "-d", "--name", "theirs", "busybox", "sleep", "60"]);
    let gateway = second.inspect_container("theirs")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let table = format!("berth-{bridge}");

    first.ok(["system", "reset", "--force"]);
    assert!(link_exists(&bridge), "{bridge} went with the first root");
    assert!(nft_tables().contains(&table), "{}", nft_tables());
    let forward = Command::new("iptables")
        .args(["-S", "FORWARD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(forward.contains(&bridge), "{forward}");
    // The second root's container still reaches its gateway through the bridge.
    second.ok(["exec", "theirs", "ping", "-c", "1", "-W", "5", &gateway]);

    // The last user takes it all away.
    second.ok(["system", "reset", "--force"]);
    assert!(!link_exists(&bridge), "{bridge} is left");
    assert!(!nft_tables().contains(&table), "{}", nft_tables());
}

#[test]
fn legacy_links_give_hosts_entries_and_environment() {
    let Some(b) = root_berth() else { return };
    b.ok([
        "run",
        "-d",
        "--name",
        "link-db",
        "-e",
        "PASSWORD=secret",
        "--expose",
        "5432",
        "busybox",
        "sleep",
        "300",
    ]);
    let db_ip = b
        .ok([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            "link-db",
        ])
        .trim()
        .to_string();
    let db_hostname = b.ok(["inspect", "-f", "{{.Config.Hostname}}", "link-db"]);
    let out = b.ok([
        "run",
        "--rm",
        "--name",
        "link-web",
        "--link",
        "link-db:db",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; env | sort; ping -c 1 -W 5 db >/dev/null && echo reached",
    ]);
    assert!(
        out.contains(&format!("{db_ip}\tdb {} link-db\n", db_hostname.trim())),
        "{out}"
    );
    for var in [
        format!("DB_PORT=tcp://{db_ip}:5432"),
        format!("DB_PORT_5432_TCP_ADDR={db_ip}"),
        "DB_PORT_5432_TCP_PORT=5432".to_string(),
        "DB_NAME=/link-web/db".to_string(),
        "DB_ENV_PASSWORD=secret".to_string(),
    ] {
        assert!(out.lines().any(|l| l == var), "{var} in {out}");
    }
    assert!(out.ends_with("reached\n"), "{out}");

    b.ok([
        "create", "--name", "link-app", "--link", "link-db", "busybox", "true",
    ]);
    let links = b.ok(["inspect", "-f", "{{json .HostConfig.Links}}", "link-app"]);
    assert_eq!(links.trim(), r#"["/link-db:/link-app/link-db"]"#);

    // The linked container must exist at create and run at start.
    let missing = b.fails(["create", "--link", "nosuch:db", "busybox", "true"]);
    assert!(
        missing
            .stderr
            .contains("could not get container for nosuch"),
        "{}",
        missing.stderr
    );
    let conflict = b.fails([
        "create",
        "--network",
        "host",
        "--link",
        "link-db",
        "busybox",
        "true",
    ]);
    assert!(
        conflict
            .stderr
            .contains("host type networking can't be used with links"),
        "{}",
        conflict.stderr
    );
    b.ok(["stop", "-t", "0", "link-db"]);
    let stopped = b.fails(["start", "link-app"]);
    assert!(
        stopped
            .stderr
            .contains("Cannot link to a non running container: /link-db AS /link-app/link-db"),
        "{}",
        stopped.stderr
    );
}
