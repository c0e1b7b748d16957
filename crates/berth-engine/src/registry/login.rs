//! `login`, `logout` and `search`.

use berth_registry::credentials::{auth_key, Credentials};
use berth_registry::{Registry, RegistryConfig, RegistryError};

use super::{Result, TransferError};
use crate::Engine;

/// The registry domain a `login`/`logout` argument names: `http://localhost:5000/v2/` →
/// `localhost:5000`; Docker Hub's aliases (and no argument) → `docker.io`.
pub fn normalize_server(server: Option<&str>) -> String {
    let Some(server) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        return "docker.io".into();
    };
    let rest = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("https://"))
        .unwrap_or(server);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// One `search` result, with Docker's fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResult {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "StarCount")]
    pub star_count: u64,
    #[serde(rename = "IsOfficial")]
    pub is_official: bool,
    #[serde(rename = "IsAutomated")]
    pub is_automated: bool,
}

impl Engine {
    /// Verifies `username`/`password` against the registry's `/v2/` and saves them in Docker's
    /// config file (or its credential helper). Returns the key they were stored under.
    pub fn login(&self, server: Option<&str>, username: &str, password: &str) -> Result<String> {
        let domain = normalize_server(server);
        let config = RegistryConfig::from_env();
        let creds = Credentials {
            username: username.to_string(),
            password: password.to_string(),
        };
        let registry = Registry::with_credentials(&domain, &config, Some(creds.clone()))?;
        registry.ping()?;
        let key = auth_key(&domain);
        config.credentials.store(&key, &creds)?;
        Ok(key)
    }

    /// Removes stored credentials; returns the key and whether there were any.
    pub fn logout(&self, server: Option<&str>) -> Result<(String, bool)> {
        let domain = normalize_server(server);
        let key = auth_key(&domain);
        let found = RegistryConfig::from_env().credentials.erase(&key)?;
        Ok((key, found))
    }

    /// Where the credentials for a registry would be written (for login's warning).
    pub fn credentials_location(&self) -> (std::path::PathBuf, bool) {
        let store = RegistryConfig::from_env().credentials;
        let helper = store.helper_name("").ok().flatten().is_some();
        (store.path().to_path_buf(), helper)
    }

    /// `search TERM`: repositories of a registry's catalog whose name contains the term. A term
    /// may name its registry (`localhost:5000/app`); Docker Hub is searched with its index API.
    pub fn search(&self, term: &str, limit: usize) -> Result<Vec<SearchResult>> {
        let (domain, needle) = split_search_term(term);
        if domain == "docker.io" {
            return Err(TransferError::Registry(RegistryError::Status {
                status: 501,
                message:
                    "searching Docker Hub needs its index service, which berth does not reach; \
                          name a registry, e.g. `berth search localhost:5000/TERM`"
                        .into(),
            }));
        }
        let registry = Registry::new(&domain, &RegistryConfig::from_env())?;
        let names = registry.catalog(usize::MAX)?;
        let mut out: Vec<SearchResult> = names
            .into_iter()
            .filter(|n| n.contains(&needle))
            .map(|n| SearchResult {
                name: format!("{domain}/{n}"),
                description: String::new(),
                star_count: 0,
                is_official: false,
                is_automated: false,
            })
            .collect();
        out.truncate(limit);
        Ok(out)
    }
}

/// Splits `localhost:5000/app` into (`localhost:5000`, `app`); a term without a registry
/// domain searches Docker Hub.
fn split_search_term(term: &str) -> (String, String) {
    if let Some((first, rest)) = term.split_once('/') {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            return (first.to_string(), rest.to_string());
        }
    }
    ("docker.io".to_string(), term.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_servers_and_terms() {
        assert_eq!(normalize_server(None), "docker.io");
        assert_eq!(
            normalize_server(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            normalize_server(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(
            split_search_term("localhost:5000/app"),
            ("localhost:5000".into(), "app".into())
        );
        assert_eq!(
            split_search_term("nginx"),
            ("docker.io".into(), "nginx".into())
        );
    }
}
