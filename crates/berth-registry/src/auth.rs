//! Registry authentication: `WWW-Authenticate` challenges, basic auth and bearer tokens.
//!
//! The distribution token flow: an anonymous request gets `401` with
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`; the client asks the realm for a
//! token (`GET realm?service=…&scope=repository:name:pull,push`, with basic credentials when it
//! has them) and retries with `Authorization: Bearer <token>`. Tokens are cached per scope set.

use std::collections::HashMap;

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Challenge {
    /// Parses the first `Basic` or `Bearer` challenge of a header value.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let params = parse_params(rest);
                let realm = params.get("realm")?.clone();
                Some(Challenge::Bearer {
                    realm,
                    service: params.get("service").cloned(),
                })
            }
            _ => None,
        }
    }
}

/// Parses `key="value", key2=value2` (quoted strings may contain commas and `\"`).
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// The scope string for a repository: `repository:team/app:pull,push`.
pub fn repository_scope(path: &str, push: bool) -> String {
    format!(
        "repository:{path}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }
}
