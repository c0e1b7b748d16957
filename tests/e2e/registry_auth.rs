//! Registry authentication end to end: htpasswd (basic) and bearer tokens from a token server
//! written for the tests (JWTs signed with a throwaway certificate made by `openssl`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use berth_tests::Berth;

use crate::registry::{Auth, RegistryServer, TOKEN_ISSUER, TOKEN_SERVICE};

const USER: &str = "berth";
const PASSWORD: &str = "s3cret-pass";

/// A `Berth` whose Docker config dir is private to the test.
fn berth_with_config() -> (Berth, PathBuf) {
    let berth = Berth::new();
    let config = berth.dir().join("docker-config");
    (berth, config)
}

fn run(berth: &Berth, config: &Path, args: &[&str], stdin: Option<&str>) -> berth_tests::Run {
    let mut cmd = berth.command(args);
    cmd.env("DOCKER_CONFIG", config);
    match stdin {
        Some(input) => {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap().into()
        }
        None => cmd.output().unwrap().into(),
    }
}

/// Login, push, pull and logout against a registry that needs credentials.
fn exercise_login(registry: &RegistryServer, denied_text: &str) {
    let host = registry.host();
    let (berth, config) = berth_with_config();
    let name = format!("{host}/private/busybox:1");
    berth.import_busybox(&name);

    let anonymous = run(&berth, &config, &["push", &name], None);
    assert_ne!(
        anonymous.code, 0,
        "push without login must fail: {}",
        anonymous.stdout
    );

    let wrong = run(
        &berth,
        &config,
        &["login", "-u", USER, "--password-stdin", &host],
        Some("wrong\n"),
    );
    assert_ne!(wrong.code, 0, "a wrong password must be refused");
    assert!(
        wrong.stderr.starts_with("Error response from daemon: "),
        "{}",
        wrong.stderr
    );
    assert!(wrong.stderr.contains(denied_text), "{}", wrong.stderr);
    assert_eq!(
        wrong.stderr.trim().lines().count(),
        1,
        "one-line error: {}",
        wrong.stderr
    );
    assert!(
        !config.join("config.json").exists()
            || !std::fs::read_to_string(config.join("config.json"))
                .unwrap()
                .contains(&host)
    );

    let ok = run(
        &berth,
        &config,
        &[
            "login",
            "-u",
            USER,
            "-p",
            PASSWORD,
            &format!("http://{host}"),
        ],
        None,
    );
    assert_eq!(ok.code, 0, "login failed: {}", ok.stderr);
    assert!(ok.stdout.contains("Login Succeeded"), "{}", ok.stdout);
    let saved = std::fs::read_to_string(config.join("config.json")).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert!(saved.contains(&host) && saved.contains(&auth), "{saved}");

    let pushed = run(&berth, &config, &["push", &name], None);
    assert_eq!(pushed.code, 0, "push failed: {}", pushed.stderr);
    let other = Berth::new();
    let pulled = run(&other, &config, &["pull", &name], None);
    assert_eq!(pulled.code, 0, "pull failed: {}", pulled.stderr);
    assert!(
        pulled.stdout.contains("Downloaded newer image"),
        "{}",
        pulled.stdout
    );

    let out = run(&berth, &config, &["logout", &host], None);
    assert_eq!(
        out.stdout.trim(),
        format!("Removing login credentials for {host}")
    );
    let again = run(&berth, &config, &["logout", &host], None);
    assert_eq!(again.stdout.trim(), format!("Not logged in to {host}"));
}

#[test]
fn registry_login_htpasswd() {
    let auth = Auth::Htpasswd {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let Some(registry) = RegistryServer::start(auth) else {
        return;
    };
    let text = format!(
        "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
        registry.host()
    );
    exercise_login(&registry, &text);
}

#[test]
fn registry_bearer_token_auth() {
    let Some(tokens) = TokenServer::start() else {
        return;
    };
    let auth = Auth::Token {
        realm: tokens.realm(),
        cert: tokens.cert.clone(),
    };
    let Some(registry) = RegistryServer::start(auth) else {
        return;
    };
    exercise_login(&registry, "unauthorized");
    assert!(tokens.issued.load(Ordering::SeqCst), "no token was issued");
}

/// A minimal distribution token server: checks basic credentials, grants every requested scope,
/// signs RS256 JWTs whose `x5c` header carries the certificate the registry trusts.
pub struct TokenServer {
    port: u16,
    stop: Arc<AtomicBool>,
    pub issued: Arc<AtomicBool>,
    pub cert: PathBuf,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    pub fn start() -> Option<TokenServer> {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: openssl could not make a signing certificate");
            return None;
        }
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicBool::new(false));
        let (stop2, issued2) = (stop.clone(), issued.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        handle_token_request(stream, &key, &x5c, &issued2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Some(TokenServer {
            port,
            stop,
            issued,
            cert,
            _dir: dir,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 3 <= bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn handle_token_request(stream: std::net::TcpStream, key: &Path, x5c: &str, issued: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    reader.read_line(&mut request).unwrap_or(0);
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let path = request.split(' ').nth(1).unwrap_or("/");
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| *k == "scope")
        .map(|(_, v)| percent_decode(v))
        .collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let mut stream = stream;
    if authorization.as_deref() != Some(expected.as_str()) {
        let body = r#"{"details":"incorrect username or password"}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            // Names may contain a port ("host:5000/x" is not used here), so split from the right.
            let actions: Vec<&str> = actions.split(',').collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": USER, "aud": TOKEN_SERVICE,
        "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let signature = child.wait_with_output().unwrap().stdout;
    let token = format!("{signing_input}.{}", b64url(&signature));
    issued.store(true, Ordering::SeqCst);
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 600}).to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
