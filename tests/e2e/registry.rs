//! Registry end-to-end tests against the CNCF distribution registry (Debian's `docker-registry`),
//! started on 127.0.0.1 by each test and killed when it ends. Tests skip (with a note) when the
//! registry binary is not installed.
//!
//! This file holds the shared fixtures (registry server, raw HTTP, token server) and the
//! round-trip tests; `registry_auth.rs`, `registry_faults.rs` and `registry_platform.rs` hold the
//! rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::Berth;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A free port on 127.0.0.1 (bound and released; the small race is acceptable in tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Authentication for a test registry.
pub enum Auth {
    None,
    /// htpasswd with one user.
    Htpasswd {
        user: String,
        password: String,
    },
    /// Token auth: the realm URL, the token-signing certificate.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

/// A running `docker-registry serve`, killed on drop.
pub struct RegistryServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub const TOKEN_SERVICE: &str = "berth-test-registry";
pub const TOKEN_ISSUER: &str = "berth-test-issuer";

impl RegistryServer {
    /// Starts a registry, or returns `None` (after printing why) when it is not installed.
    pub fn start(auth: Auth) -> Option<RegistryServer> {
        if !Path::new(REGISTRY_BIN).exists() {
            eprintln!(
                "skipping: {REGISTRY_BIN} is not installed (apt-get install docker-registry)"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let auth_section = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let hash = bcrypt::hash(password, 5).unwrap();
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
                format!("auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", file.display())
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_section}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let server = RegistryServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 response.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request over a fresh connection (`Connection: close`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    if method != "HEAD" {
        let _ = reader.read_to_end(&mut body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Digest of the blobs stored under a berth root.
pub fn blob_names(berth: &Berth) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(berth.root().join("blobs/sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The `DIGEST` column of `images --digests` for a repository.
pub fn repo_digest(berth: &Berth, repository: &str) -> String {
    // Filtered here rather than with `images REPO`: a `host:port/…` argument is mistaken for
    // `name:tag` by the listing's reference filter.
    berth
        .ok([
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Digest}}",
        ])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{repository} ")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The digest from push's `TAG: digest: sha256:… size: N` line.
pub fn pushed_digest(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.split(": digest: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no digest line in push output:\n{output}"))
        .to_string()
}

#[test]
fn registry_push_pull_round_trip_keeps_digests() {
    let Some(registry) = RegistryServer::start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let name = format!("{host}/e2e/busybox:1");
    let a = Berth::new();
    let id = a.import_busybox(&name);
    let pushed = a.ok(["push", &name]);
    assert!(
        pushed.contains(&format!(
            "The push refers to repository [{host}/e2e/busybox]"
        )),
        "{pushed}"
    );
    assert!(pushed.contains(": Pushed"), "{pushed}");
    let digest = pushed_digest(&pushed);
    assert_eq!(repo_digest(&a, &format!("{host}/e2e/busybox")), digest);

    // Pushing again uploads nothing.
    let again = a.ok(["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert_eq!(pushed_digest(&again), digest);

    // Another repository on the same registry gets the layer by cross-repository mount.
    let other = format!("{host}/e2e/other:2");
    a.ok(["tag", &name, &other]);
    let mounted = a.ok(["push", &other]);
    assert!(mounted.contains("Mounted from e2e/busybox"), "{mounted}");

    // A fresh store gets the same image: config (image ID), manifest and layer blobs.
    let b = Berth::new();
    let pulled = b.ok(["pull", &name]);
    assert!(pulled.contains("1: Pulling from e2e/busybox"), "{pulled}");
    assert!(pulled.contains("Pull complete"), "{pulled}");
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {name}")),
        "{pulled}"
    );
    assert_eq!(pulled.lines().last(), Some(name.as_str()));
    assert_eq!(
        b.ok(["images", "-q", "--no-trunc", &name]).trim(),
        id.trim()
    );
    assert_eq!(repo_digest(&b, &format!("{host}/e2e/busybox")), digest);
    let blobs_a = blob_names(&a);
    let blobs_b = blob_names(&b);
    for blob in &blobs_b {
        assert!(
            blobs_a.contains(blob),
            "blob {blob} of the pulled image differs from the pushed ones"
        );
    }
    assert!(blobs_b.contains(&digest.trim_start_matches("sha256:").to_string()));

    // A second pull downloads nothing.
    let second = b.ok(["pull", &name]);
    assert!(second.contains("Already exists"), "{second}");
    assert!(
        second.contains(&format!("Status: Image is up to date for {name}")),
        "{second}"
    );
    assert_eq!(blob_names(&b), blobs_b);

    // By digest, and quietly.
    let c = Berth::new();
    let by_digest = format!("{host}/e2e/busybox@{digest}");
    let quiet = c.ok(["pull", "-q", &by_digest]);
    assert_eq!(quiet.trim(), by_digest);
    assert_eq!(c.ok(["images", "-q", "--no-trunc"]).trim(), id.trim());
}

#[test]
fn registry_pull_all_tags_and_errors() {
    let Some(registry) = RegistryServer::start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let a = Berth::new();
    a.import_busybox(&format!("{host}/e2e/multi:a"));
    a.ok([
        "tag",
        &format!("{host}/e2e/multi:a"),
        &format!("{host}/e2e/multi:b"),
    ]);
    let pushed = a.ok(["push", "-a", &format!("{host}/e2e/multi")]);
    assert!(
        pushed.contains("a: digest:") && pushed.contains("b: digest:"),
        "{pushed}"
    );

    let b = Berth::new();
    let out = b.ok(["pull", "--all-tags", &format!("{host}/e2e/multi")]);
    assert!(
        out.contains("a: Pulling from e2e/multi") && out.contains("b: Pulling from e2e/multi"),
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some(format!("{host}/e2e/multi").as_str())
    );
    let tags = b.ok(["images", "--format", "{{.Tag}}"]);
    assert!(tags.contains('a') && tags.contains('b'), "{tags}");

    let missing = b.fails(["pull", &format!("{host}/e2e/multi:nope")]);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    let not_local = b.fails(["push", &format!("{host}/e2e/never:1")]);
    assert!(
        not_local
            .stderr
            .contains("An image does not exist locally with the tag"),
        "{}",
        not_local.stderr
    );
}

#[test]
fn registry_search_lists_the_catalog() {
    let Some(registry) = RegistryServer::start(Auth::None) else {
        return;
    };
    let host = registry.host();
    let a = Berth::new();
    a.import_busybox(&format!("{host}/team/app:1"));
    a.ok([
        "tag",
        &format!("{host}/team/app:1"),
        &format!("{host}/team/tool:1"),
    ]);
    a.ok([
        "tag",
        &format!("{host}/team/app:1"),
        &format!("{host}/other/thing:1"),
    ]);
    for repo in ["team/app", "team/tool", "other/thing"] {
        a.ok(["push", "-q", &format!("{host}/{repo}:1")]);
    }
    let out = a.ok(["search", &format!("{host}/team")]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("DESCRIPTION")
            && lines[0].contains("STARS"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        out.contains(&format!("{host}/team/app")) && !out.contains("other/thing"),
        "{out}"
    );
    let limited = a.ok([
        "search",
        "--limit",
        "1",
        "--format",
        "{{.Name}}",
        &format!("{host}/team"),
    ]);
    assert_eq!(limited.trim(), format!("{host}/team/app"));
}
