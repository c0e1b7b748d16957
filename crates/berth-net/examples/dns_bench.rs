//! Measures the embedded DNS server: local answers per second and the memory of the serving
//! process. Runs the server in a child process (this binary with `serve`), loads it over UDP on
//! 127.0.0.1 with a window of queries in flight, then reads the child's RSS from /proc.
//!
//! `cargo run --release -p berth-net --example dns_bench [QUERIES] [NAMES]`

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_net::dns::{DnsServer, Records};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const IN_FLIGHT: usize = 32;

struct Table(HashMap<String, Vec<Ipv4Addr>>);

impl Records for Table {
    fn lookup_a(&self, name: &str) -> Vec<Ipv4Addr> {
        self.0.get(name).cloned().unwrap_or_default()
    }

    fn lookup_ptr(&self, _ip: Ipv4Addr) -> Option<String> {
        None
    }
}

fn container_name(index: usize) -> String {
    format!("container-{index}")
}

/// The child: serves `names` containers on 127.0.0.1 until its stdin closes.
fn serve(names: usize) -> std::io::Result<()> {
    let table = (0..names)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 89, 0, 2)) + i as u32);
            (container_name(i), vec![ip])
        })
        .collect();
    let server = DnsServer::bind("127.0.0.1:0".parse().unwrap(), Vec::new())?;
    println!("{}", server.local_addr()?);
    std::io::stdout().flush()?;
    let open = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&open);
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(false, Ordering::Relaxed);
    });
    server.serve(&mut Table(table), || open.load(Ordering::Relaxed))
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn query(name: &str, id: u16) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    message.to_vec().unwrap()
}

/// Sends `total` queries with `IN_FLIGHT` outstanding; returns answers per second.
fn load(server: SocketAddr, total: usize, names: usize) -> f64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let packets: Vec<Vec<u8>> = (0..names)
        .map(|i| query(&container_name(i), i as u16))
        .collect();
    let mut sent = 0;
    let mut answered = 0;
    let mut buffer = [0u8; 4096];
    let started = Instant::now();
    while answered < total {
        while sent < total && sent - answered < IN_FLIGHT {
            socket.send(&packets[sent % names]).unwrap();
            sent += 1;
        }
        match socket.recv(&mut buffer) {
            Ok(n) => {
                let reply = Message::from_vec(&buffer[..n]).unwrap();
                assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
                assert_eq!(reply.answers.len(), 1);
                answered += 1;
            }
            // A datagram lost to a full socket buffer: send another in its place.
            Err(_) => sent = answered,
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn spawn_server(names: usize) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["serve", &names.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let names = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100);
        serve(names).unwrap();
        return;
    }
    let total: usize = args.first().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let names: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100);
    let (mut child, address) = spawn_server(names);
    let idle_rss = status_field(child.id(), "VmRSS");
    let rate = load(address, total, names);
    println!("names: {names}, queries: {total}, in flight: {IN_FLIGHT}");
    println!("local answers per second: {rate:.0}");
    println!("server RSS idle: {idle_rss}");
    println!(
        "server RSS after load: {}, peak: {}",
        status_field(child.id(), "VmRSS"),
        status_field(child.id(), "VmHWM")
    );
    drop(child.stdin.take());
    child.wait().unwrap();
}
