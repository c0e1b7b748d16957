//! Credentials in Docker's `config.json` format (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`), so `docker login` and `berth login` share one file.
//!
//! - `auths.<server>.auth`: base64 `user:password`, stored in the file;
//! - `credsStore`: a helper (`docker-credential-<name>`) for every server;
//! - `credHelpers.<server>`: a helper for one server, taking precedence over `credsStore`.
//!
//! Helpers speak the docker-credential-helpers protocol: `get` reads the server URL on stdin and
//! prints `{"ServerURL","Username","Secret"}`; `store` reads that JSON; `erase` reads the URL.
//! Unknown keys in the file are preserved on every write.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::error::{RegistryError, Result};

/// Docker Hub's key in `auths` (the v1 index URL, for historical reasons).
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and secret for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The key a registry domain is stored under: Docker Hub's index URL, or the bare `host[:port]`.
pub fn auth_key(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_AUTH_KEY.to_string(),
        other => other.to_string(),
    }
}

/// Docker's `ConvertToHostname`: `https://host:5000/v1/` → `host:5000`.
fn hostname_of(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The Docker client config file and the helpers it names.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn from_env() -> CredentialStore {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "/root".into());
                home.join(".docker")
            });
        CredentialStore::in_dir(&dir)
    }

    /// The config file inside `dir`.
    pub fn in_dir(dir: &Path) -> CredentialStore {
        CredentialStore {
            path: dir.join("config.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Map<String, Value>> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(RegistryError::Credentials(format!(
                    "loading config file {}: invalid JSON",
                    self.path.display()
                ))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(source) => Err(RegistryError::Io {
                action: "read",
                path: self.path.display().to_string(),
                source,
            }),
        }
    }

    fn save(&self, config: &Map<String, Value>) -> Result<()> {
        let io = |action: &'static str, source| RegistryError::Io {
            action,
            path: self.path.display().to_string(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("create directory for", e))?;
        let tmp = self
            .path
            .with_extension(format!("json.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(config).expect("config serialises");
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| io("write", e))?;
            file.write_all(text.as_bytes())
                .map_err(|e| io("write", e))?;
            file.write_all(b"\n").map_err(|e| io("write", e))?;
            file.sync_all().map_err(|e| io("sync", e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| io("replace", e))
    }

    /// The helper responsible for `key`, if any.
    fn helper_for(config: &Map<String, Value>, key: &str) -> Option<String> {
        let host = hostname_of(key);
        if let Some(Value::Object(helpers)) = config.get("credHelpers") {
            for (server, helper) in helpers {
                if hostname_of(server) == host {
                    return helper.as_str().map(str::to_string);
                }
            }
        }
        config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The `auths` key that matches `key`'s host, as written in the file.
    fn auths_key(config: &Map<String, Value>, key: &str) -> Option<String> {
        let Some(Value::Object(auths)) = config.get("auths") else {
            return None;
        };
        if auths.contains_key(key) {
            return Some(key.to_string());
        }
        let host = hostname_of(key);
        auths.keys().find(|k| hostname_of(k) == host).cloned()
    }

    /// Whether the file (or a helper) is where `key`'s credentials would be stored.
    pub fn helper_name(&self, key: &str) -> Result<Option<String>> {
        Ok(Self::helper_for(&self.load()?, key))
    }

    /// The stored credentials for a registry key (see [`auth_key`]).
    pub fn get(&self, key: &str) -> Result<Option<Credentials>> {
        let config = self.load()?;
        if let Some(helper) = Self::helper_for(&config, key) {
            return helper_get(&helper, key);
        }
        let Some(found) = Self::auths_key(&config, key) else {
            return Ok(None);
        };
        let entry = &config["auths"][&found];
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| {
                    RegistryError::Credentials(format!(
                        "invalid auth for {key} in {}",
                        self.path.display()
                    ))
                })?;
            let text = String::from_utf8_lossy(&decoded).into_owned();
            let (user, pass) = text.split_once(':').ok_or_else(|| {
                RegistryError::Credentials(format!(
                    "invalid auth for {key} in {}",
                    self.path.display()
                ))
            })?;
            return Ok(Some(Credentials {
                username: user.into(),
                password: pass.trim_end_matches('\n').into(),
            }));
        }
        let user = entry.get("username").and_then(Value::as_str);
        let pass = entry.get("password").and_then(Value::as_str);
        if let (Some(u), Some(p)) = (user, pass) {
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
        Ok(None)
    }

    /// Saves credentials for `key`, in the helper when one is configured.
    pub fn store(&self, key: &str, creds: &Credentials) -> Result<()> {
        let mut config = self.load()?;
        let helper = Self::helper_for(&config, key);
        if let Some(helper) = &helper {
            let input =
                json!({"ServerURL": key, "Username": creds.username, "Secret": creds.password});
            run_helper(helper, "store", input.to_string().as_bytes())?;
        }
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let auths = auths.as_object_mut().expect("object");
        // Replace any entry for the same host written with another spelling.
        let host = hostname_of(key).to_string();
        auths.retain(|k, _| hostname_of(k) != host);
        let entry = if helper.is_some() {
            json!({})
        } else {
            let raw = format!("{}:{}", creds.username, creds.password);
            json!({"auth": base64::engine::general_purpose::STANDARD.encode(raw)})
        };
        auths.insert(key.to_string(), entry);
        self.save(&config)
    }

    /// Removes the credentials for `key`; returns whether there were any.
    pub fn erase(&self, key: &str) -> Result<bool> {
        let mut config = self.load()?;
        let mut found = false;
        if let Some(helper) = Self::helper_for(&config, key) {
            found = run_helper(&helper, "erase", key.as_bytes()).is_ok();
        }
        if let Some(Value::Object(auths)) = config.get_mut("auths") {
            let host = hostname_of(key).to_string();
            let before = auths.len();
            auths.retain(|k, _| hostname_of(k) != host);
            if auths.len() != before {
                found = true;
                self.save(&config)?;
            }
        }
        Ok(found)
    }
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>> {
    match run_helper(helper, "get", key.as_bytes()) {
        Ok(out) => {
            let value: Value = serde_json::from_slice(&out).map_err(|e| {
                RegistryError::Credentials(format!(
                    "docker-credential-{helper} get: invalid output: {e}"
                ))
            })?;
            let username = value["Username"].as_str().unwrap_or_default().to_string();
            let password = value["Secret"].as_str().unwrap_or_default().to_string();
            if username.is_empty() && password.is_empty() {
                return Ok(None);
            }
            Ok(Some(Credentials { username, password }))
        }
        Err(RegistryError::Credentials(msg)) if msg.contains("credentials not found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns its stdout.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Vec<u8>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RegistryError::Credentials(format!(
                "error getting credentials - err: exec: \"{program}\": {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Credentials(format!("{program} {action}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(RegistryError::Credentials(format!(
            "{program} {action}: {}",
            if text.is_empty() { err } else { text }
        )));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"psFormat":"table {{.ID}}"}"#,
        )
        .unwrap();
        let store = CredentialStore::in_dir(dir.path());
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store.store("localhost:5000", &creds).unwrap();
        assert_eq!(store.get("localhost:5000").unwrap(), Some(creds.clone()));
        assert_eq!(store.get("http://localhost:5000/v2/").unwrap(), Some(creds));
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("psFormat") && text.contains("dTpwOnc="));
        assert!(store.erase("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        assert!(!store.erase("localhost:5000").unwrap());
    }

    #[test]
    fn uses_credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\ncase $1 in get) echo '{\"ServerURL\":\"'$server'\",\"Username\":\"hu\",\"Secret\":\"hs\"}';; *) exit 0;; esac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers":{"reg.example":"berthtest"}}"#,
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // The helper is looked up on PATH; run the lookup through a child-visible PATH.
        std::env::set_var("PATH", path);
        let store = CredentialStore::in_dir(dir.path());
        let got = store.get("reg.example").unwrap().unwrap();
        assert_eq!(
            got,
            Credentials {
                username: "hu".into(),
                password: "hs".into()
            }
        );
        assert_eq!(store.get("other.example").unwrap(), None);
    }
}
