//! Faults between berth and the registry: a proxy that corrupts a layer blob (the pull must fail
//! and leave the store untouched) and one that drops the connection halfway once (the pull must
//! resume with a `Range` request and succeed).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_tests::Berth;

use crate::registry::{blob_names, Auth, RegistryServer};

#[derive(Clone, Copy)]
enum Fault {
    /// Flip one byte of every large blob body.
    Corrupt,
    /// Close the connection after this many body bytes of the first large blob response.
    CutOnce(usize),
}

/// An HTTP proxy in front of the registry, one request per connection.
struct FaultyProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    saw_range: Arc<AtomicBool>,
    faulted: Arc<AtomicBool>,
}

/// Blobs above this size are layers (configs and manifests are small).
const LARGE: u64 = 64 * 1024;

impl FaultyProxy {
    fn start(upstream: u16, fault: Fault) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let saw_range = Arc::new(AtomicBool::new(false));
        let faulted = Arc::new(AtomicBool::new(false));
        let (s, r, f) = (stop.clone(), saw_range.clone(), faulted.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let (r, f) = (r.clone(), f.clone());
                        std::thread::spawn(move || proxy_one(client, upstream, fault, &r, &f));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultyProxy {
            port,
            stop,
            saw_range,
            faulted,
        }
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn proxy_one(
    mut client: TcpStream,
    upstream: u16,
    fault: Fault,
    saw_range: &AtomicBool,
    faulted: &AtomicBool,
) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    if text.to_ascii_lowercase().contains("\r\nrange:") {
        saw_range.store(true, Ordering::SeqCst);
    }
    let is_blob_get = text.starts_with("GET ")
        && text
            .split(' ')
            .nth(1)
            .is_some_and(|p| p.contains("/blobs/sha256:"));
    // One request per connection keeps the parsing trivial.
    let head = text.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    if server.write_all(head.as_bytes()).is_err() {
        return;
    }
    let Some(response_head) = read_head(&mut server) else {
        return;
    };
    let response_text = String::from_utf8_lossy(&response_head).to_ascii_lowercase();
    let length: u64 = response_text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let active = is_blob_get && length > LARGE;
    let _ = client.write_all(&response_head);
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0usize;
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        match fault {
            Fault::Corrupt if active && sent <= 4096 && sent + n > 4096 => {
                chunk[4096 - sent] ^= 0x55;
                faulted.store(true, Ordering::SeqCst);
            }
            Fault::CutOnce(limit)
                if active && sent + n > limit && !faulted.swap(true, Ordering::SeqCst) =>
            {
                let _ = client.write_all(&chunk[..limit - sent]);
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            _ => {}
        }
        if client.write_all(chunk).is_err() {
            return;
        }
        sent += n;
    }
}

/// Pushes a busybox image with a layer large enough for the proxy to act on.
fn pushed_image(registry: &RegistryServer) -> (Berth, String) {
    let host = registry.host();
    let name = format!("{host}/faults/busybox:1");
    let berth = Berth::new();
    berth.import_busybox(&name);
    berth.ok(["push", "-q", &name]);
    (berth, name)
}

#[test]
fn registry_corrupted_blob_is_detected() {
    let Some(registry) = RegistryServer::start(Auth::None) else {
        return;
    };
    let (_a, name) = pushed_image(&registry);
    let proxy = FaultyProxy::start(registry.port, Fault::Corrupt);
    let via_proxy = name.replace(&registry.port.to_string(), &proxy.port.to_string());

    let b = Berth::new();
    b.ok(["images"]);
    let before = blob_names(&b);
    let failed = b.fails(["pull", &via_proxy]);
    assert!(
        proxy.faulted.load(Ordering::SeqCst),
        "the proxy never touched a blob"
    );
    assert!(
        failed.stderr.contains("verification failed") || failed.stderr.contains("digest mismatch"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        b.ok(["images", "-q"]).trim(),
        "",
        "no image may be recorded"
    );
    assert_eq!(blob_names(&b), before, "no blob may be stored");
    let layers = std::fs::read_dir(b.root().join("layers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(layers, 0, "no layer may be unpacked");
}

#[test]
fn registry_pull_resumes_after_a_cut() {
    let Some(registry) = RegistryServer::start(Auth::None) else {
        return;
    };
    let (a, name) = pushed_image(&registry);
    let proxy = FaultyProxy::start(registry.port, Fault::CutOnce(300 * 1024));
    let via_proxy = name.replace(&registry.port.to_string(), &proxy.port.to_string());

    let b = Berth::new();
    let out = b.ok(["pull", &via_proxy]);
    assert!(
        proxy.faulted.load(Ordering::SeqCst),
        "the proxy never cut a download"
    );
    assert!(
        proxy.saw_range.load(Ordering::SeqCst),
        "the download was not resumed with Range"
    );
    assert!(out.contains("Pull complete"), "{out}");
    let id_a = a.ok(["images", "-q", "--no-trunc", &name]);
    let id_b = b.ok(["images", "-q", "--no-trunc", &via_proxy]);
    assert_eq!(id_a.trim(), id_b.trim());
}
