//! Docker-compatible image references: `[domain/]path[:tag][@digest]`.
//!
//! A reference names an image the way `docker` does. Users type the *familiar* form (`busybox`,
//! `user/app:1.2`, `localhost:5000/team/app`); everything inside berth works on the *normalized*
//! form, where the registry domain and Docker Hub's `library/` namespace are explicit
//! (`docker.io/library/busybox`). The grammar and normalization rules follow
//! `github.com/distribution/reference` (`ParseNormalizedNamed`, `ParseDockerRef`,
//! `FamiliarString`, `TagNameOnly`) so that names, error messages and store keys match Docker's.
//! The grammar is small and fixed, so it is checked by hand here rather than with a regex engine.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] path
//! domain           := (domain-name | "[" ipv6 "]") [":" port]
//! domain-name      := domain-component ("." domain-component)*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path             := path-component ("/" path-component)*
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator        := [._] | "__" | "-"+
//! tag              := [\w][\w.-]{0,127}
//! digest           := algorithm ":" hex{32,}      (only sha256 with 64 hex is accepted)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::{Digest, DigestError};

/// Docker Hub's domain in normalized names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The historical Docker Hub domain, normalized to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Docker Hub's namespace for official images (`busybox` is `library/busybox`).
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// distribution/reference's `RepositoryNameTotalLengthMax`, applied to the path.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference. Messages are Docker's, word for word, because
/// scripts and users match on them.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat { input: String },
    #[error("invalid reference format: repository name ({repository}) must be lowercase")]
    UppercaseRepository { repository: String },
    #[error("repository name must be lowercase")]
    NameContainsUppercase { input: String },
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier { input: String },
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong { input: String },
    #[error("invalid tag format")]
    InvalidTag { tag: String },
    #[error("invalid digest in reference {input:?}")]
    InvalidDigest {
        input: String,
        #[source]
        source: DigestError,
    },
}

/// A normalized image reference: always has a domain and a full path, and optionally a tag and/or
/// a digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a familiar or normalized reference (Docker's `ParseNormalizedNamed`): `busybox`
    /// becomes `docker.io/library/busybox` with no tag; see [`Reference::with_default_tag`].
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if is_hex_identifier(s) {
            return Err(ReferenceError::HexIdentifier {
                input: s.to_owned(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        // Docker checks the text before the first ':' (which may include an '@digest' part) so
        // the message shows the repository as typed, e.g. "library/Busybox".
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::UppercaseRepository {
                repository: remote.to_owned(),
            });
        }
        parse_full(&format!("{domain}/{remainder}"), s)
    }

    /// Docker's `ParseDockerRef`: like [`Reference::parse`] followed by
    /// [`Reference::with_default_tag`], except that a reference with both a tag and a digest keeps
    /// only the digest, since the digest alone decides what is pulled.
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Reference::parse(s)?;
        if reference.digest.is_some() {
            reference.tag = None;
        }
        Ok(reference.with_default_tag())
    }

    /// The registry domain: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`, `team/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The normalized repository name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker shows it: `busybox`, `user/app`, `localhost:5000/team/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            // Only single-component official names are shortened; "library/a/b" stays as is.
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True when the reference has neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Docker's `TagNameOnly`: adds the `latest` tag when there is neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The same repository (and digest, if any) with `tag` as its tag.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                tag: tag.to_owned(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The same repository (and tag, if any) pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone, without tag or digest (Docker's `TrimNamed`).
    pub fn repository(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The reference as Docker prints it: `busybox:latest`, `localhost:5000/team/app:1.2`,
    /// `busybox@sha256:…`.
    pub fn familiar_string(&self) -> String {
        let mut out = self.familiar_name();
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Splits a familiar name into registry domain and the rest (`splitDockerDomain`): the first
/// component is a domain only if it looks like one, because `user/app` must stay on Docker Hub.
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, remainder) = if first == "localhost" {
        (first, rest)
    } else if first == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if first.contains(['.', ':']) || first.bytes().any(|b| b.is_ascii_uppercase()) {
        // Repository paths are lowercase and have no '.'-free port, so these can only be hosts.
        (first, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remainder}"))
    } else {
        (domain, remainder.to_owned())
    }
}

/// The pieces of a syntactically valid reference string.
struct Parts<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Docker's `Parse` on the already-normalized string `s`; `input` is what the user typed, kept for
/// error values.
fn parse_full(s: &str, input: &str) -> Result<Reference, ReferenceError> {
    let Some(parts) = split_reference(s) else {
        let lower = s.to_ascii_lowercase();
        if lower != s && split_reference(&lower).is_some() {
            return Err(ReferenceError::NameContainsUppercase {
                input: input.to_owned(),
            });
        }
        return Err(ReferenceError::InvalidFormat {
            input: input.to_owned(),
        });
    };
    // distribution/reference would accept a first component that is neither a valid domain nor
    // part of Docker Hub (e.g. "a_b.com/x") as a domain-less name that no registry can serve;
    // rejecting it here gives the user the error now instead of a confusing one at pull time.
    let Some(domain) = parts.domain else {
        return Err(ReferenceError::InvalidFormat {
            input: input.to_owned(),
        });
    };
    if parts.path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong {
            input: input.to_owned(),
        });
    }
    let digest = match parts.digest {
        None => None,
        Some(d) => Some(
            d.parse::<Digest>()
                .map_err(|source| ReferenceError::InvalidDigest {
                    input: input.to_owned(),
                    source,
                })?,
        ),
    };
    Ok(Reference {
        domain: domain.to_owned(),
        path: parts.path.to_owned(),
        tag: parts.tag.map(str::to_owned),
        digest,
    })
}

/// Matches `s` against the reference grammar, returning its pieces, or None if it does not match.
fn split_reference(s: &str) -> Option<Parts<'_>> {
    // '@' appears nowhere but before the digest, and ':' in a tag-bearing part after the last '/'
    // can only start the tag (names carry ':' only in the domain, which precedes the first '/').
    let (left, digest) = match s.split_once('@') {
        Some((left, digest)) => (left, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        if !is_digest_syntax(digest) {
            return None;
        }
    }
    let last_slash = left.rfind('/');
    let (name, tag) = match left.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&left[..colon], Some(&left[colon + 1..]))
        }
        _ => (left, None),
    };
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return None;
        }
    }
    // The domain group is optional but tried first, as in the regex.
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) && is_path(rest) => (Some(first), rest),
        _ if is_path(name) => (None, name),
        _ => return None,
    };
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= TAG_LENGTH_MAX
                && is_word_byte(*first)
                && rest
                    .iter()
                    .all(|&b| is_word_byte(b) || b == b'.' || b == b'-')
        }
        None => false,
    }
}

/// `path-component ("/" path-component)*`
fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[._] | "__" | "-"+`.
fn is_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // Separators never contain alphanumerics, so consuming them greedily cannot steal the
        // characters the next run needs.
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `(domain-name | "[" ipv6 "]") (":" [0-9]+)?`
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let address = &rest[..end];
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        Some(host) => host.split('.').all(is_domain_component),
        None => true,
    }
}

/// `[a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(component: &str) -> bool {
    let b = component.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}`; whether the algorithm
/// and length are supported is [`Digest`]'s decision.
fn is_digest_syntax(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    /// (input, normalized Display, familiar_string) for inputs that must parse.
    const VALID: &[(&str, &str, &str)] = &[
        ("busybox", "docker.io/library/busybox", "busybox"),
        (
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        (
            "busybox:1.36.1-glibc",
            "docker.io/library/busybox:1.36.1-glibc",
            "busybox:1.36.1-glibc",
        ),
        ("library/busybox", "docker.io/library/busybox", "busybox"),
        ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
        (
            "docker.io/library/busybox:1",
            "docker.io/library/busybox:1",
            "busybox:1",
        ),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox",
            "busybox",
        ),
        ("index.docker.io/user/app", "docker.io/user/app", "user/app"),
        ("user/app", "docker.io/user/app", "user/app"),
        ("user/app:v2", "docker.io/user/app:v2", "user/app:v2"),
        (
            "docker.io/library/a/b",
            "docker.io/library/a/b",
            "library/a/b",
        ),
        ("localhost/app", "localhost/app", "localhost/app"),
        (
            "localhost:5000/team/app:1.2",
            "localhost:5000/team/app:1.2",
            "localhost:5000/team/app:1.2",
        ),
        (
            "localhost:5000/app",
            "localhost:5000/app",
            "localhost:5000/app",
        ),
        (
            "example.com/a/b/c",
            "example.com/a/b/c",
            "example.com/a/b/c",
        ),
        (
            "registry-1.example.com:443/x",
            "registry-1.example.com:443/x",
            "registry-1.example.com:443/x",
        ),
        (
            "127.0.0.1:5000/x:y",
            "127.0.0.1:5000/x:y",
            "127.0.0.1:5000/x:y",
        ),
        ("[::1]:5000/foo", "[::1]:5000/foo", "[::1]:5000/foo"),
        (
            "[fe80::1]/foo:bar",
            "[fe80::1]/foo:bar",
            "[fe80::1]/foo:bar",
        ),
        ("Example.COM/foo", "Example.COM/foo", "Example.COM/foo"),
        ("Foo/bar", "Foo/bar", "Foo/bar"),
        ("myhost:5000/a", "myhost:5000/a", "myhost:5000/a"),
        (
            "a-b__c--d/e.f_g",
            "docker.io/a-b__c--d/e.f_g",
            "a-b__c--d/e.f_g",
        ),
        (
            "localhost:5000",
            "docker.io/library/localhost:5000",
            "localhost:5000",
        ),
        ("localhost", "docker.io/library/localhost", "localhost"),
        (
            "busybox:Latest_1",
            "docker.io/library/busybox:Latest_1",
            "busybox:Latest_1",
        ),
        ("busybox:_x", "docker.io/library/busybox:_x", "busybox:_x"),
    ];

    /// Valid inputs that are easier to build than to write out.
    fn generated_valid_cases() -> Vec<(String, String, String)> {
        let d = format!("sha256:{HEX}");
        let long_path = format!("a/{}", "b".repeat(253));
        let long_tag = "t".repeat(128);
        let triple = |a: String, b: String, c: String| (a, b, c);
        vec![
            triple(
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
            triple(
                format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
                format!("busybox:1@{d}"),
            ),
            triple(
                format!("localhost:5000/a:b@{d}"),
                format!("localhost:5000/a:b@{d}"),
                format!("localhost:5000/a:b@{d}"),
            ),
            triple(
                format!("{HEX}x"),
                format!("docker.io/library/{HEX}x"),
                format!("{HEX}x"),
            ),
            triple(
                format!("u/{HEX}"),
                format!("docker.io/u/{HEX}"),
                format!("u/{HEX}"),
            ),
            triple(
                long_path.clone(),
                format!("docker.io/{long_path}"),
                long_path.clone(),
            ),
            triple(
                format!("x:{long_tag}"),
                format!("docker.io/library/x:{long_tag}"),
                format!("x:{long_tag}"),
            ),
        ]
    }

    #[test]
    fn valid_references_normalize_like_docker() {
        let fixed = VALID
            .iter()
            .map(|&(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        for (input, normalized, familiar) in fixed.chain(generated_valid_cases()) {
            let r = Reference::parse(&input)
                .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
            assert_eq!(r.to_string(), normalized, "Display of {input:?}");
            assert_eq!(
                r.familiar_string(),
                familiar,
                "familiar_string of {input:?}"
            );
            // Normalized output parses back to itself.
            assert_eq!(
                Reference::parse(&normalized).unwrap(),
                r,
                "reparse of {input:?}"
            );
        }
    }

    #[test]
    fn invalid_references_are_rejected_with_dockers_message() {
        const FMT: &str = "invalid reference format";
        const SIMPLE: &[(&str, &str)] = &[
            ("", FMT),
            (":", FMT),
            (":latest", FMT),
            ("@sha256:abc", FMT),
            ("/busybox", FMT),
            ("busybox/", FMT),
            ("a//b", FMT),
            ("busybox:", FMT),
            ("busybox:-x", FMT),
            ("busybox:.x", FMT),
            ("busybox:a:b", FMT),
            ("busy box", FMT),
            ("-busybox", FMT),
            ("busybox-", FMT),
            ("a..b", FMT),
            ("a___b", FMT),
            ("a.-b", FMT),
            ("a_b.com/x", FMT),
            ("-bad.com/x", FMT),
            ("localhost:abc/x", FMT),
            ("localhost:/x", FMT),
            ("[::1/x", FMT),
            ("[]/x", FMT),
            ("[::g]/x", FMT),
            ("busybox@sha256:abc", FMT),
            ("busybox@sha256", FMT),
            ("busybox@@sha256:abc", FMT),
            (
                "Busybox",
                "invalid reference format: repository name (library/Busybox) must be lowercase",
            ),
            (
                "user/App:1",
                "invalid reference format: repository name (user/App) must be lowercase",
            ),
            (
                "localhost:5000/Team/app",
                "invalid reference format: repository name (Team/app) must be lowercase",
            ),
            ("Foo_Bar/x", "repository name must be lowercase"),
        ];
        let short_digest = format!("busybox@sha256:{}", &HEX[..40]);
        let upper_digest = format!("busybox@sha256:{}", HEX.to_uppercase());
        let sha512 = format!("busybox@sha512:{HEX}{HEX}");
        let generated = vec![
            (format!("busybox:{}", "t".repeat(129)), FMT.to_owned()),
            (
                HEX.to_owned(),
                format!(
                    "invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"
                ),
            ),
            (
                format!("a/{}", "b".repeat(254)),
                "repository name must not be more than 255 characters".to_owned(),
            ),
            (
                short_digest.clone(),
                format!("invalid digest in reference {short_digest:?}"),
            ),
            (
                upper_digest.clone(),
                format!("invalid digest in reference {upper_digest:?}"),
            ),
            (
                sha512.clone(),
                format!("invalid digest in reference {sha512:?}"),
            ),
        ];
        let cases = SIMPLE
            .iter()
            .map(|&(a, b)| (a.to_owned(), b.to_owned()))
            .chain(generated);
        for (input, message) in cases {
            match Reference::parse(&input) {
                Ok(r) => panic!("{input:?} should be rejected, parsed as {r}"),
                Err(e) => assert_eq!(e.to_string(), message, "error for {input:?}"),
            }
        }
    }

    #[test]
    fn accessors_split_the_name() {
        let r = Reference::parse("localhost:5000/team/app:1.2").unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "team/app");
        assert_eq!(r.name(), "localhost:5000/team/app");
        assert_eq!(r.familiar_name(), "localhost:5000/team/app");
        assert_eq!(r.tag(), Some("1.2"));
        assert_eq!(r.digest(), None);

        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("docker.io", "library/busybox", None)
        );
        assert_eq!(r.familiar_name(), "busybox");
    }

    #[test]
    fn default_tag_and_docker_ref() {
        let d = format!("sha256:{HEX}");
        let r = Reference::parse("busybox").unwrap().with_default_tag();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar_string(), "busybox:latest");

        let pinned = Reference::parse(&format!("busybox@{d}"))
            .unwrap()
            .with_default_tag();
        assert_eq!(pinned.tag(), None, "a digest is enough, no default tag");

        let both = Reference::parse_docker_ref(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(both.to_string(), format!("docker.io/library/busybox@{d}"));
        let plain = Reference::parse_docker_ref("user/app").unwrap();
        assert_eq!(plain.to_string(), "docker.io/user/app:latest");
    }

    #[test]
    fn with_tag_validates_and_keeps_digest() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let r = Reference::parse("busybox:1").unwrap();
        assert_eq!(
            r.with_tag("2").unwrap().to_string(),
            "docker.io/library/busybox:2"
        );
        assert_eq!(
            r.with_tag("bad tag").unwrap_err(),
            ReferenceError::InvalidTag {
                tag: "bad tag".into()
            }
        );
        assert_eq!(
            r.with_tag("bad tag").unwrap_err().to_string(),
            "invalid tag format"
        );
        let pinned = r.with_digest(d.clone()).with_tag("3").unwrap();
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/busybox:3@{d}")
        );
        assert_eq!(pinned.repository().to_string(), "docker.io/library/busybox");
    }

    #[test]
    fn serde_uses_the_normalized_string() {
        let r: Reference = "busybox:1".parse().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/busybox:1\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    }
}
