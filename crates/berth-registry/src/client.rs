//! One registry endpoint: transport (https, or http where allowed), authentication, retries
//! with backoff, and the distribution API calls berth uses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use berth_image::Digest;
use reqwest::blocking::{Client as HttpClient, RequestBuilder, Response};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use crate::auth::{repository_scope, Challenge};
use crate::credentials::{auth_key, CredentialStore, Credentials};
use crate::error::{RegistryError, Result};
use crate::manifest::{self, ACCEPT as MANIFEST_TYPES};

/// Environment variable listing registries that may be reached over plain http (comma or space
/// separated `host[:port]` entries or IPv4 CIDRs), like dockerd's `--insecure-registry`.
pub const INSECURE_REGISTRIES_ENV: &str = "BERTH_INSECURE_REGISTRIES";

/// How berth talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries allowed over plain http besides localhost, 127.0.0.0/8 and ::1.
    pub insecure: Vec<String>,
    /// Where credentials are read from (Docker's config.json).
    pub credentials: CredentialStore,
    /// Attempts for idempotent requests that fail transiently.
    pub attempts: u32,
    /// First backoff delay; doubled on every retry.
    pub backoff: Duration,
}

impl RegistryConfig {
    /// Reads [`INSECURE_REGISTRIES_ENV`] and `$DOCKER_CONFIG`.
    pub fn from_env() -> RegistryConfig {
        let insecure = std::env::var(INSECURE_REGISTRIES_ENV)
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        RegistryConfig {
            insecure,
            credentials: CredentialStore::from_env(),
            attempts: 4,
            backoff: Duration::from_millis(250),
        }
    }
}

/// The host serving a registry domain's API (Docker Hub's name differs from its domain).
pub fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Whether plain http may be used for `host` (with optional port).
pub fn allows_http(host: &str, insecure: &[String]) -> bool {
    let bare = host_without_port(host);
    if bare == "localhost" || bare.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if ip.is_loopback() {
            return true;
        }
    }
    insecure.iter().any(|entry| {
        let entry = entry
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if entry == host || entry == bare {
            return true;
        }
        match (entry.split_once('/'), bare.parse::<IpAddr>()) {
            (Some((net, bits)), Ok(IpAddr::V4(ip))) => {
                match (net.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) {
                    (Ok(net), Ok(bits)) if bits <= 32 => {
                        let mask = if bits == 0 {
                            0
                        } else {
                            u32::MAX << (32 - bits)
                        };
                        u32::from(ip) & mask == u32::from(net) & mask
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    })
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Bearer tokens by scope set.
    tokens: HashMap<String, String>,
}

/// The body of a request, re-creatable for retries.
pub enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// A file sent with a known length.
    File(&'a std::path::Path, u64),
}

/// A client for one registry (one `domain` such as `docker.io` or `localhost:5000`).
pub struct Registry {
    domain: String,
    host: String,
    http: HttpClient,
    allow_http: bool,
    base: Mutex<Option<Url>>,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    attempts: u32,
    backoff: Duration,
}

/// Outcome of a cross-repository mount request.
pub enum Mount {
    /// The registry linked the blob into the repository.
    Mounted,
    /// It could not; it opened an upload session at this location instead.
    Upload(Url),
}

impl Registry {
    /// A client for `domain` using the credentials stored for it.
    pub fn new(domain: &str, config: &RegistryConfig) -> Result<Registry> {
        let credentials = config.credentials.get(&auth_key(domain))?;
        Registry::with_credentials(domain, config, credentials)
    }

    /// A client for `domain` with explicit credentials (`login`), or none.
    pub fn with_credentials(
        domain: &str,
        config: &RegistryConfig,
        credentials: Option<Credentials>,
    ) -> Result<Registry> {
        let host = api_host(domain).to_string();
        let mut builder = HttpClient::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            // Per read for downloads, whole request for uploads: generous for slow links.
            .timeout(Duration::from_secs(600))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(8)
            .no_gzip()
            .no_zstd()
            .no_brotli()
            .no_deflate();
        // Docker's per-registry CA files: /etc/docker/certs.d/<host>/*.crt (and berth's own dir).
        for dir in ["/etc/berth/certs.d", "/etc/docker/certs.d"] {
            let Ok(entries) = std::fs::read_dir(std::path::Path::new(dir).join(&host)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "crt") {
                    if let Ok(pem) = std::fs::read(&path) {
                        if let Ok(cert) = reqwest::Certificate::from_pem(&pem) {
                            builder = builder.add_root_certificate(cert);
                        }
                    }
                }
            }
        }
        let http = builder.build().map_err(|source| RegistryError::Http {
            method: "build".into(),
            url: host.clone(),
            source,
        })?;
        Ok(Registry {
            domain: domain.to_string(),
            allow_http: allows_http(&host, &config.insecure),
            host,
            http,
            base: Mutex::new(None),
            credentials,
            auth: Mutex::new(AuthState::default()),
            attempts: config.attempts.max(1),
            backoff: config.backoff,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `https://host/`, or `http://host/` when https fails and plain http is allowed (Docker
    /// tries TLS first even for insecure registries).
    pub fn base_url(&self) -> Result<Url> {
        if let Some(base) = self.base.lock().expect("lock").clone() {
            return Ok(base);
        }
        let https = Url::parse(&format!("https://{}/", self.host)).map_err(|e| {
            RegistryError::InvalidManifest(format!("invalid registry host {}: {e}", self.host))
        })?;
        let chosen = if self.allow_http {
            match self.http.get(https.join("v2/").expect("valid")).send() {
                Ok(_) => https,
                Err(err) => {
                    tracing::info!(host = %self.host, %err, "https failed; using plain http");
                    Url::parse(&format!("http://{}/", self.host)).expect("valid url")
                }
            }
        } else {
            https
        };
        *self.base.lock().expect("lock") = Some(chosen.clone());
        Ok(chosen)
    }

    /// A URL under the registry's API root.
    pub fn url(&self, path: &str) -> Result<Url> {
        self.base_url()?
            .join(path.trim_start_matches('/'))
            .map_err(|e| RegistryError::InvalidManifest(format!("invalid URL {path}: {e}")))
    }

    fn authorize(&self, req: RequestBuilder, scopes: &[String]) -> Result<RequestBuilder> {
        let challenge = self.auth.lock().expect("lock").challenge.clone();
        match challenge {
            None => Ok(req),
            Some(Challenge::Basic) => match &self.credentials {
                Some(c) => Ok(req.basic_auth(&c.username, Some(&c.password))),
                None => Ok(req),
            },
            Some(Challenge::Bearer { realm, service }) => {
                let key = scopes.join(" ");
                let cached = self.auth.lock().expect("lock").tokens.get(&key).cloned();
                let token = match cached {
                    Some(t) => t,
                    None => {
                        let t = self.fetch_token(&realm, service.as_deref(), scopes)?;
                        self.auth
                            .lock()
                            .expect("lock")
                            .tokens
                            .insert(key, t.clone());
                        t
                    }
                };
                Ok(req.header(AUTHORIZATION, format!("Bearer {token}")))
            }
        }
    }

    /// Asks a token server for a token covering `scopes`.
    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String> {
        let mut url = Url::parse(realm).map_err(|e| {
            RegistryError::Unauthorized(format!("invalid token realm {realm:?}: {e}"))
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
            if let Some(c) = &self.credentials {
                query.append_pair("account", &c.username);
            }
        }
        if url.scheme() == "http"
            && !allows_http(url.host_str().unwrap_or(""), &[])
            && !self.allow_http
        {
            return Err(RegistryError::Insecure(format!(
                "refusing to send credentials to token server {realm} over plain http"
            )));
        }
        let mut req = self.http.get(url.clone());
        if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req.send().map_err(|source| RegistryError::Http {
            method: "GET".into(),
            url: url.to_string(),
            source,
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().unwrap_or_default();
            let detail = error_detail(&body).unwrap_or_else(|| status_text(status));
            return Err(RegistryError::Unauthorized(format!(
                "Get \"{url}\": {}",
                if status == StatusCode::UNAUTHORIZED {
                    format!("unauthorized: {detail}")
                } else {
                    detail
                }
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = resp.json().map_err(|source| RegistryError::Http {
            method: "GET".into(),
            url: realm.to_string(),
            source,
        })?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                RegistryError::Unauthorized(format!("token server {realm} returned no token"))
            })
    }

    /// Sends a request with authentication, answering one challenge and retrying transient
    /// failures with exponential backoff. `retry` is false for requests whose body cannot be
    /// sent twice.
    pub fn send(
        &self,
        method: Method,
        url: Url,
        scopes: &[String],
        headers: HeaderMap,
        body: &Body<'_>,
        retry: bool,
    ) -> Result<Response> {
        let mut answered_challenge = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            req = match body {
                Body::None => req,
                Body::Bytes(bytes) => req.body(bytes.to_vec()),
                Body::File(path, len) => {
                    let file = std::fs::File::open(path).map_err(|source| RegistryError::Io {
                        action: "open",
                        path: path.display().to_string(),
                        source,
                    })?;
                    req.body(reqwest::blocking::Body::sized(file, *len))
                }
            };
            req = self.authorize(req, scopes)?;
            let can_retry = retry && attempt < self.attempts;
            match req.send() {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !answered_challenge => {
                    let challenge = resp
                        .headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(Challenge::parse);
                    let Some(challenge) = challenge else {
                        return Ok(resp);
                    };
                    let mut auth = self.auth.lock().expect("lock");
                    let had_token = auth.tokens.remove(&scopes.join(" ")).is_some();
                    let same = auth.challenge.as_ref() == Some(&challenge);
                    auth.challenge = Some(challenge);
                    drop(auth);
                    // Same challenge, same credentials, nothing cached: asking again won't help.
                    if same && !had_token {
                        return Ok(resp);
                    }
                    answered_challenge = true;
                    attempt -= 1;
                }
                Ok(resp)
                    if can_retry
                        && (resp.status().is_server_error()
                            || resp.status() == StatusCode::TOO_MANY_REQUESTS) =>
                {
                    tracing::info!(%url, status = %resp.status(), attempt, "retrying");
                    std::thread::sleep(self.backoff * 2u32.pow(attempt - 1));
                }
                Ok(resp) => return Ok(resp),
                Err(err)
                    if can_retry && (err.is_connect() || err.is_timeout() || err.is_request()) =>
                {
                    tracing::info!(%url, %err, attempt, "retrying");
                    std::thread::sleep(self.backoff * 2u32.pow(attempt - 1));
                }
                Err(source) => {
                    return Err(RegistryError::Http {
                        method: method.to_string(),
                        url: url.to_string(),
                        source,
                    })
                }
            }
        }
    }

    fn get(&self, url: Url, scopes: &[String], headers: HeaderMap) -> Result<Response> {
        self.send(Method::GET, url, scopes, headers, &Body::None, true)
    }

    /// A retried request with no body and no headers of its own (`HEAD`, upload `POST`s).
    fn send_bare(&self, method: Method, url: Url, scopes: &[String]) -> Result<Response> {
        self.send(method, url, scopes, HeaderMap::new(), &Body::None, true)
    }

    /// `GET /v2/`: checks the registry answers and that our credentials (if any) are accepted,
    /// as `login` does. For token registries a token without scope is requested.
    pub fn ping(&self) -> Result<()> {
        let url = self.url("v2/")?;
        let resp = self.get(url.clone(), &[], HeaderMap::new())?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(RegistryError::Unauthorized(format!(
                "login attempt to {url} failed with status: {}",
                status_text(StatusCode::UNAUTHORIZED)
            ))),
            s => Err(RegistryError::Status {
                status: s.as_u16(),
                message: format!(
                    "login attempt to {url} failed with status: {}",
                    status_text(s)
                ),
            }),
        }
    }

    /// Fetches a manifest or index by tag or digest. Returns the exact bytes, the media type
    /// and the digest, verified: by digest, the bytes must hash to it; by tag, they must hash to
    /// the registry's `Docker-Content-Digest` when it sends one.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            MANIFEST_TYPES.join(", ").parse().expect("valid header"),
        );
        let resp = self.get(url.clone(), &[repository_scope(repo, false)], headers)?;
        let resp = check(
            resp,
            &format!("manifest for {}/{repo}:{reference}", self.domain),
        )?;
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let announced = header_str(resp.headers(), "docker-content-digest");
        let bytes = read_limited(resp, 4 << 20, &url)?;
        let actual = Digest::of(&bytes);
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => announced.and_then(|a| a.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected {
            if expected != actual {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {repo}:{reference}"),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((bytes, content_type, actual))
    }

    /// Uploads a manifest under a tag or digest; returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            media_type.parse().map_err(|_| {
                RegistryError::InvalidManifest(format!("invalid media type {media_type:?}"))
            })?,
        );
        let resp = self.send(
            Method::PUT,
            url,
            &[repository_scope(repo, true)],
            headers,
            &Body::Bytes(bytes),
            true,
        )?;
        check(resp, &format!("manifest {repo}:{reference}"))?;
        Ok(Digest::of(bytes))
    }

    /// Downloads a small blob (a config) into memory, verified against its digest.
    pub fn get_blob_bytes(&self, repo: &str, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self.get(
            url.clone(),
            &[repository_scope(repo, false)],
            HeaderMap::new(),
        )?;
        let resp = check(resp, &format!("blob {digest}"))?;
        let bytes = read_limited(resp, max, &url)?;
        manifest::verify(&format!("blob {digest}"), &bytes, digest)?;
        Ok(bytes)
    }

    /// Opens a blob for streaming from `offset` (a `Range` request when non-zero). Returns the
    /// response and whether the registry honoured the range.
    pub fn open_blob(&self, repo: &str, digest: &Digest, offset: u64) -> Result<(Response, bool)> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                reqwest::header::RANGE,
                format!("bytes={offset}-").parse().expect("valid header"),
            );
        }
        let resp = self.get(url, &[repository_scope(repo, false)], headers)?;
        let resp = check(resp, &format!("blob {digest}"))?;
        let ranged = resp.status() == StatusCode::PARTIAL_CONTENT;
        Ok((resp, ranged))
    }

    /// `HEAD` a blob: its size when the repository has it.
    pub fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self.send_bare(Method::HEAD, url, &[repository_scope(repo, true)])?;
        match resp.status() {
            s if s.is_success() => Ok(Some(resp.content_length().unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => check(resp, &format!("blob {digest}")).map(|_| None),
        }
    }

    /// Asks the registry to mount `digest` from repository `from` into `repo`.
    pub fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<Mount> {
        let mut url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let scopes = [repository_scope(repo, true), repository_scope(from, false)];
        let resp = self.send_bare(Method::POST, url, &scopes)?;
        if resp.status() == StatusCode::CREATED {
            return Ok(Mount::Mounted);
        }
        let resp = check(resp, &format!("blob upload to {repo}"))?;
        Ok(Mount::Upload(self.location(&resp)?))
    }

    /// Opens an upload session.
    pub fn start_upload(&self, repo: &str) -> Result<Url> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let resp = self.send_bare(Method::POST, url, &[repository_scope(repo, true)])?;
        let resp = check(resp, &format!("blob upload to {repo}"))?;
        self.location(&resp)
    }

    /// Monolithic upload: `PUT <location>?digest=…` with the whole blob.
    pub fn put_blob(
        &self,
        repo: &str,
        location: Url,
        digest: &Digest,
        body: &Body<'_>,
    ) -> Result<()> {
        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/octet-stream".parse().expect("valid header"),
        );
        // A retried PUT would hit a consumed session; the caller restarts the upload instead.
        let resp = self.send(
            Method::PUT,
            url,
            &[repository_scope(repo, true)],
            headers,
            body,
            false,
        )?;
        check(resp, &format!("blob {digest}"))?;
        Ok(())
    }

    /// Chunked upload of a stream whose digest is only known at its end: one streaming
    /// `PATCH`, after which the caller closes the session with [`Registry::finish_upload`].
    pub fn patch_stream(
        &self,
        repo: &str,
        location: Url,
        body: impl std::io::Read + Send + 'static,
    ) -> Result<Url> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/octet-stream".parse().expect("valid header"),
        );
        let mut req = self
            .http
            .request(Method::PATCH, location.clone())
            .headers(headers);
        req = req.body(reqwest::blocking::Body::new(body));
        req = self.authorize(req, &[repository_scope(repo, true)])?;
        let resp = req.send().map_err(|source| RegistryError::Http {
            method: "PATCH".into(),
            url: location.to_string(),
            source,
        })?;
        let resp = check(resp, &format!("blob upload to {repo}"))?;
        self.location(&resp)
    }

    /// Closes a chunked upload: `PUT <location>?digest=…` without body.
    pub fn finish_upload(&self, repo: &str, location: Url, digest: &Digest) -> Result<()> {
        self.put_blob(repo, location, digest, &Body::None)
    }

    fn location(&self, resp: &Response) -> Result<Url> {
        let text =
            header_str(resp.headers(), LOCATION.as_str()).ok_or_else(|| RegistryError::Status {
                status: resp.status().as_u16(),
                message: "registry sent no upload location".into(),
            })?;
        resp.url().join(&text).map_err(|e| {
            RegistryError::InvalidManifest(format!("invalid upload location {text:?}: {e}"))
        })
    }

    /// All tags of a repository (following `Link` pagination).
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut next = Some(self.url(&format!("v2/{repo}/tags/list"))?);
        while let Some(url) = next.take() {
            let resp = self.get(
                url.clone(),
                &[repository_scope(repo, false)],
                HeaderMap::new(),
            )?;
            let resp = check(resp, &format!("repository {}/{repo}", self.domain))?;
            next = next_link(&resp);
            let page: Tags = resp.json().map_err(|source| RegistryError::Http {
                method: "GET".into(),
                url: url.to_string(),
                source,
            })?;
            out.extend(page.tags.unwrap_or_default());
        }
        Ok(out)
    }

    /// Repository names from `/v2/_catalog` (following pagination, up to `max` names).
    pub fn catalog(&self, max: usize) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            repositories: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut first = self.url("v2/_catalog")?;
        first.query_pairs_mut().append_pair("n", "1000");
        let mut next = Some(first);
        let scopes = ["registry:catalog:*".to_string()];
        while let Some(url) = next.take() {
            let resp = self.get(url.clone(), &scopes, HeaderMap::new())?;
            let resp = check(resp, &format!("catalog of {}", self.domain))?;
            next = next_link(&resp);
            let page: Catalog = resp.json().map_err(|source| RegistryError::Http {
                method: "GET".into(),
                url: url.to_string(),
                source,
            })?;
            out.extend(page.repositories.unwrap_or_default());
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Basic credentials as a header value, for callers that build their own requests.
    pub fn basic_header(c: &Credentials) -> String {
        let raw = format!("{}:{}", c.username, c.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// `<https://…>; rel="next"` from a `Link` header, resolved against the response URL.
fn next_link(resp: &Response) -> Option<Url> {
    let link = header_str(resp.headers(), "link")?;
    let target = link
        .split(';')
        .next()?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    resp.url().join(target).ok()
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn status_text(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

/// The `errors` of a distribution error body, as `code: message` text.
fn error_detail(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let code = e["code"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
                .replace('_', " ");
            let message = e["message"].as_str().unwrap_or("");
            if code.is_empty() {
                message.to_string()
            } else {
                format!("{code}: {message}")
            }
        })
        .collect();
    if parts.is_empty() {
        // Token servers use {"details": "..."}.
        return value
            .get("details")
            .and_then(|d| d.as_str())
            .map(str::to_string);
    }
    Some(parts.join(", "))
}

/// Turns an error status into an error naming `what`, keeping successes.
fn check(resp: Response, what: &str) -> Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().unwrap_or_default();
    let detail = error_detail(&body).unwrap_or_else(|| status_text(status));
    Err(match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound(format!("{what} not found: {detail}")),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            RegistryError::Unauthorized(format!("{what}: {detail}"))
        }
        s => RegistryError::Status {
            status: s.as_u16(),
            message: format!("{what}: {detail}"),
        },
    })
}

fn read_limited(resp: Response, max: u64, url: &Url) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    resp.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Io {
            action: "read",
            path: url.to_string(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(RegistryError::InvalidManifest(format!(
            "{url}: response larger than {max} bytes"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_where_allowed() {
        assert!(allows_http("localhost:5000", &[]));
        assert!(allows_http("127.0.0.5:5000", &[]));
        assert!(allows_http("[::1]:5000", &[]));
        assert!(!allows_http("registry.example:5000", &[]));
        assert!(allows_http(
            "registry.example:5000",
            &["registry.example:5000".into()]
        ));
        assert!(allows_http("10.1.2.3:5000", &["10.0.0.0/8".into()]));
        assert!(!allows_http("11.1.2.3", &["10.0.0.0/8".into()]));
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
    }
}
