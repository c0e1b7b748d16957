//! `images`: one row per name an image is known by, with Docker's filters.

use berth_image::reference::Reference;
use berth_image::store::ImageRecord;
use berth_image::Digest;

use crate::{Engine, EngineError, Result};

/// One row of `images`.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: Digest,
    /// Familiar repository name, or `<none>`.
    pub repository: String,
    pub tag: String,
    /// The registry digest of this repository's manifest, or `<none>`.
    pub digest: String,
    pub created: i64,
    pub size: u64,
}

/// Filters of `images --filter` and the `REPOSITORY[:TAG]` argument.
#[derive(Debug, Default)]
pub struct ImageFilter {
    pub all: bool,
    pub dangling: Option<bool>,
    pub references: Vec<String>,
    pub labels: Vec<(String, Option<String>)>,
    pub before: Option<String>,
    pub since: Option<String>,
}

impl ImageFilter {
    /// Parses `--filter key=value` flags.
    pub fn parse(filters: &[String], all: bool, reference: Option<&str>) -> Result<ImageFilter> {
        let mut filter = ImageFilter {
            all,
            ..ImageFilter::default()
        };
        filter.references.extend(reference.map(str::to_string));
        for f in filters {
            let (key, value) = f.split_once('=').ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {f}"
                ))
            })?;
            match key {
                "dangling" => {
                    filter.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid filter 'dangling={value}'"
                            )))
                        }
                    })
                }
                "reference" => filter.references.push(value.to_string()),
                "label" => filter.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "before" => filter.before = Some(value.to_string()),
                "since" => filter.since = Some(value.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{key}'"
                    )))
                }
            }
        }
        Ok(filter)
    }
}

impl Engine {
    /// The rows `images` prints, newest first.
    pub fn list_images(&self, filter: &ImageFilter) -> Result<Vec<ImageRow>> {
        let images = self.store().list_images()?;
        let parents: std::collections::HashSet<&Digest> =
            images.iter().filter_map(|i| i.parent.as_ref()).collect();
        let before = filter
            .before
            .as_deref()
            .map(|b| self.created_of(&images, b))
            .transpose()?;
        let since = filter
            .since
            .as_deref()
            .map(|s| self.created_of(&images, s))
            .transpose()?;

        let mut rows = Vec::new();
        for image in &images {
            let dangling = image.tags.is_empty() && image.repo_digests.is_empty();
            if let Some(want) = filter.dangling {
                if want != dangling {
                    continue;
                }
            }
            // Untagged parents of other images are intermediate build steps, hidden without -a.
            if dangling && !filter.all && parents.contains(&image.id) {
                continue;
            }
            if before.is_some_and(|b| image.created >= b)
                || since.is_some_and(|s| image.created <= s)
            {
                continue;
            }
            if !filter.labels.is_empty() && !self.labels_match(&image.id, &filter.labels)? {
                continue;
            }
            for row in rows_of(image) {
                if !filter.references.is_empty()
                    && (row.repository == "<none>"
                        || !filter.references.iter().any(|p| reference_matches(p, &row)))
                {
                    continue;
                }
                rows.push(row);
            }
        }
        Ok(rows)
    }

    fn created_of(&self, images: &[ImageRecord], name: &str) -> Result<i64> {
        let id = self.resolve_image(name)?;
        Ok(images.iter().find(|i| i.id == id).map_or(0, |i| i.created))
    }

    fn labels_match(&self, id: &Digest, wanted: &[(String, Option<String>)]) -> Result<bool> {
        let (_, config) = self.store().image_config(id)?;
        let labels = config.config.labels.unwrap_or_default();
        Ok(wanted.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        }))
    }
}

/// Docker lists an image once per tag; untagged repo digests get a `<none>` tag row.
fn rows_of(image: &ImageRecord) -> Vec<ImageRow> {
    let digest_of = |repository: &str| {
        image
            .repo_digests
            .iter()
            .filter_map(|d| Reference::parse(d).ok())
            .find(|r| r.familiar_name() == repository)
            .and_then(|r| r.digest().map(|d| d.to_string()))
            .unwrap_or_else(|| "<none>".into())
    };
    let row = |repository: String, tag: String| ImageRow {
        id: image.id.clone(),
        digest: digest_of(&repository),
        repository,
        tag,
        created: image.created,
        size: image.size,
    };
    let mut rows = Vec::new();
    for tag in &image.tags {
        if let Ok(reference) = Reference::parse(tag) {
            rows.push(row(
                reference.familiar_name(),
                reference.tag().unwrap_or("<none>").into(),
            ));
        }
    }
    for name in &image.repo_digests {
        if let Ok(reference) = Reference::parse(name) {
            let repository = reference.familiar_name();
            if !rows.iter().any(|r| r.repository == repository) {
                rows.push(row(repository, "<none>".into()));
            }
        }
    }
    if rows.is_empty() {
        rows.push(row("<none>".into(), "<none>".into()));
    }
    rows
}

/// `reference=` patterns match the familiar `name` or `name:tag` with shell globbing, as
/// Docker's `path.Match` does.
fn reference_matches(pattern: &str, row: &ImageRow) -> bool {
    let full = format!("{}:{}", row.repository, row.tag);
    // A `:` names a tag only after the last `/`; before it, it is a registry port.
    let last = pattern.rsplit('/').next().unwrap_or(pattern);
    if last.contains(':') || pattern.contains('@') {
        glob_match(pattern, &full)
    } else {
        glob_match(pattern, &row.repository)
    }
}

/// Go's `path.Match`: `*` and `?` do not cross `/`; `[...]` classes.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && t[0] != '/' && go(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                let Some(&c) = t.first() else { return false };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &t[1..])
            }
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "team/app"));
        assert!(glob_match("*/*", "team/app"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        let row = super::ImageRow {
            id: berth_image::Digest::of(b""),
            repository: "127.0.0.1:5000/team/app".into(),
            tag: "1".into(),
            digest: "<none>".into(),
            created: 0,
            size: 0,
        };
        assert!(super::reference_matches("127.0.0.1:5000/team/app", &row));
        assert!(super::reference_matches("127.0.0.1:5000/team/app:1", &row));
        assert!(!super::reference_matches("127.0.0.1:5000/team/app:2", &row));
    }
}
