//! `.dockerignore` files and their pattern matcher.
//!
//! The semantics are those of Go's `github.com/moby/patternmatcher` (written
//! anew here; no Rust crate implements them): patterns are trimmed and
//! `filepath.Clean`ed, a leading `/` is dropped when reading the file, `!`
//! marks an exception, `**` matches any number of directories, and a pattern
//! that matches a parent directory of a path matches the path too. Later
//! patterns win, which is why matching walks every pattern.
//!
//! [`ignore_file_for`] picks `<Dockerfile>.dockerignore` over `.dockerignore`.

use std::path::{Path, PathBuf};

use regex::Regex;

/// Errors from reading or compiling ignore patterns.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern is not a valid glob (Go's `filepath.ErrBadPattern`).
    #[error("syntax error in pattern: {pattern:?}")]
    BadPattern {
        /// The offending pattern.
        pattern: String,
    },
    /// `!` on its own.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// The ignore file could not be read.
    #[error("failed to read ignore file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// How a compiled pattern matches, as patternmatcher classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// The cleaned pattern equals the path.
    Exact,
    /// `dir/**`: the path starts with `dir/`.
    Prefix,
    /// `**/x` or `**x`: the path ends with the rest.
    Suffix,
    /// Anything else, via a regex.
    Regex,
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    dirs: usize,
    match_type: MatchType,
    /// The regex as Go would spell it (for conformance checks).
    go_regex: String,
    regex: Option<Regex>,
}

impl Pattern {
    /// The cleaned pattern text, without `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is an exception (`!pattern`).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// How the pattern is matched.
    pub fn match_type(&self) -> MatchType {
        self.match_type
    }

    /// The Go-syntax regex (empty unless [`MatchType::Regex`]).
    pub fn go_regex(&self) -> &str {
        &self.go_regex
    }

    /// Match a cleaned, slash-separated relative path (no parent logic).
    pub fn matches(&self, path: &str) -> bool {
        match self.match_type {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            MatchType::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(path)),
        }
    }

    /// Whether this pattern could match `dir` or something below it, judged
    /// from its literal leading components. Used to decide whether an
    /// excluded directory may hold re-included files.
    fn may_match_inside(&self, dir: &str) -> bool {
        let mut pat = self.cleaned.split('/');
        for comp in dir.split('/') {
            let Some(p) = pat.next() else {
                // The pattern matched a parent of `dir`.
                return true;
            };
            if has_glob(p) {
                if p.contains("**") {
                    return true;
                }
                match component_regex(p) {
                    Some(re) if !re.is_match(comp) => return false,
                    _ => {}
                }
            } else if p != comp {
                return false;
            }
        }
        true
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

fn component_regex(p: &str) -> Option<Regex> {
    let (_, go) = compile(p);
    Regex::new(&go_to_rust_regex(&go)).ok()
}

/// Go's `filepath.Clean` for slash-separated paths.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|c| *c != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Validate a pattern the way Go's `filepath.Match(pattern, ".")` does.
fn validate_glob(pattern: &str) -> bool {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // An escape needs a character after it (consumed here).
            '\\' if chars.next().is_none() => return false,
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut nrange = 0;
                loop {
                    if chars.peek() == Some(&']') && nrange > 0 {
                        chars.next();
                        break;
                    }
                    // lo
                    if !class_char(&mut chars) {
                        return false;
                    }
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        if !class_char(&mut chars) {
                            return false;
                        }
                    }
                    nrange += 1;
                }
            }
            _ => {}
        }
    }
    true
}

fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    match chars.next() {
        None | Some('-' | ']') => false,
        Some('\\') => chars.next().is_some() && chars.peek().is_some(),
        Some(_) => chars.peek().is_some(),
    }
}

/// Compile a cleaned pattern into its match type and Go regex string.
fn compile(pattern: &str) -> (MatchType, String) {
    let mut re = String::from("^");
    let mut detected = MatchType::Exact;
    let mut chars = pattern.chars().peekable();
    let mut i = 0;
    while let Some(ch) = chars.next() {
        if ch == '*' {
            if chars.peek() == Some(&'*') {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if detected == MatchType::Exact {
                        detected = MatchType::Prefix;
                    } else {
                        re.push_str(".*");
                        detected = MatchType::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    detected = MatchType::Regex;
                }
                if i == 0 {
                    detected = MatchType::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                detected = MatchType::Regex;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            detected = MatchType::Regex;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.next() {
                Some(n) => {
                    re.push('\\');
                    re.push(n);
                    detected = MatchType::Regex;
                }
                None => re.push('\\'),
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            detected = MatchType::Regex;
        } else {
            re.push(ch);
        }
        i += 1;
    }
    if detected == MatchType::Regex {
        re.push('$');
        (detected, re)
    } else {
        (detected, String::new())
    }
}

/// Translate a Go regex (as produced by [`compile`]) to Rust `regex`
/// syntax: inside a class Go treats `[`, `&&`, `~~` and `--` literally where
/// Rust would nest or combine classes.
fn go_to_rust_regex(go: &str) -> String {
    let mut out = String::with_capacity(go.len() + 8);
    let mut in_class = false;
    let mut class_start = false;
    let mut chars = go.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(c);
            if let Some(n) = chars.next() {
                out.push(n);
            }
            class_start = false;
            continue;
        }
        if !in_class {
            if c == '[' {
                in_class = true;
                class_start = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                continue;
            }
            if c == ']' {
                out.push_str("\\]");
                continue;
            }
            out.push(c);
            continue;
        }
        match c {
            ']' if !class_start => {
                in_class = false;
                out.push(c);
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' if chars.peek() == Some(&'-') => out.push_str("\\-"),
            _ => out.push(c),
        }
        class_start = false;
    }
    out
}

/// Remembers which patterns matched a directory, so its children need not
/// re-check its parents (patternmatcher's `MatchInfo`).
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    /// Compile `patterns` (whitespace-trimmed, cleaned, empty ones skipped).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, IgnoreError> {
        let mut m = Matcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(IgnoreError::IllegalExclusion);
                }
                exclusion = true;
                m.exclusions = true;
                p = rest.to_string();
            }
            if !validate_glob(&p) {
                return Err(IgnoreError::BadPattern { pattern: p });
            }
            let (match_type, go_regex) = compile(&p);
            let regex = if match_type == MatchType::Regex {
                Some(
                    Regex::new(&go_to_rust_regex(&go_regex))
                        .map_err(|_| IgnoreError::BadPattern { pattern: p.clone() })?,
                )
            } else {
                None
            };
            m.patterns.push(Pattern {
                dirs: p.split('/').count(),
                cleaned: p,
                exclusion,
                match_type,
                go_regex,
                regex,
            });
        }
        Ok(m)
    }

    /// Read a `.dockerignore` file's patterns and compile them.
    pub fn from_file(path: &Path) -> Result<Self, IgnoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| IgnoreError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Matcher::new(&read_patterns(&text))
    }

    /// The compiled patterns.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// patternmatcher's `MatchesOrParentMatches`: whether `path` (relative,
    /// slash-separated) is ignored.
    pub fn matches(&self, path: &str) -> bool {
        let parents: Vec<String> = parent_prefixes(path).collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let hit = p.matches(path) || parents.iter().any(|d| p.matches(d));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// patternmatcher's deprecated `Matches`: the parent check only looks at
    /// the parent prefix with as many components as the pattern.
    pub fn matches_legacy(&self, path: &str) -> bool {
        let parent = match path.rfind('/') {
            Some(i) => &path[..i],
            None => ".",
        };
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(path);
            if !hit && parent != "." && p.dirs <= parent_dirs.len() {
                hit = p.matches(&parent_dirs[..p.dirs].join("/"));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// patternmatcher's `MatchesUsingParentResults`: like [`Self::matches`],
    /// but reusing the parent directory's [`MatchInfo`] (pass the default
    /// for a top-level entry or when unknown).
    pub fn matches_with_parent(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let known = !parent.parent_matched.is_empty();
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = known && parent.parent_matched[i];
            if !hit {
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(path);
                if !hit && !known {
                    hit = parent_prefixes(path).any(|d| p.matches(&d));
                }
            }
            info.parent_matched[i] = hit;
            if hit {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether an excluded directory can be skipped entirely: true when no
    /// exception pattern could re-include anything at or below `dir`.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && p.may_match_inside(dir))
    }
}

/// `a`, `a/b` for `a/b/c`: the prefixes of Go's `filepath.Dir(path)` split
/// on `/` (none when the parent is `.`).
fn parent_prefixes(path: &str) -> impl Iterator<Item = String> {
    let dir = match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    };
    let comps: Vec<String> = if dir == "." {
        Vec::new()
    } else {
        dir.split('/').map(str::to_string).collect()
    };
    (1..=comps.len()).map(move |k| comps[..k].join("/"))
}

/// Read patterns from the text of an ignore file, as moby's
/// `ignorefile.ReadAll`: `#` comment lines and blank lines are skipped,
/// patterns are trimmed, cleaned, and made relative (`/a` → `a`), and `!`
/// exceptions keep their `!`.
pub fn read_patterns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = if n == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let mut invert = false;
        if let Some(rest) = pattern.strip_prefix('!') {
            invert = true;
            pattern = rest.trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(cleaned);
    }
    out
}

/// Which ignore file applies: `<dockerfile name>.dockerignore` next to the
/// Dockerfile wins over `<context>/.dockerignore`; `None` when neither exists.
pub fn ignore_file_for(dockerfile: &Path, context_dir: &Path) -> Option<PathBuf> {
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        let candidate = dockerfile.with_file_name(specific);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let generic = context_dir.join(".dockerignore");
    generic.is_file().then_some(generic)
}

/// Load the matcher for a build: the chosen ignore file, or an empty one.
pub fn matcher_for(dockerfile: &Path, context_dir: &Path) -> Result<Matcher, IgnoreError> {
    match ignore_file_for(dockerfile, context_dir) {
        Some(path) => Matcher::from_file(&path),
        None => Ok(Matcher::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &[&str]) -> Matcher {
        Matcher::new(p).unwrap()
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("./"), ".");
        assert_eq!(clean("dir/**/"), "dir/**");
    }

    #[test]
    fn exceptions_and_parents() {
        let pm = m(&["docs", "!docs/README.md"]);
        assert!(pm.matches("docs/a.md"));
        assert!(!pm.matches("docs/README.md"));
        assert!(!pm.can_skip_dir("docs"));
        let pm = m(&["node_modules", "*.log"]);
        assert!(pm.matches("node_modules/x/y.js"));
        assert!(pm.can_skip_dir("node_modules"));
        assert!(pm.matches("a.log"));
        assert!(!pm.matches("sub/a.log"));
        let pm = m(&["**/*.log", "!keep/**"]);
        assert!(pm.matches("x/y/z.log"));
        assert!(!pm.matches("keep/z.log"));
        assert!(pm.can_skip_dir("other"));
        assert!(!pm.can_skip_dir("keep"));
        let pm = m(&["a", "!*/b"]);
        assert!(!pm.can_skip_dir("a"));
        let pm = m(&["a", "!x*/b"]);
        assert!(pm.can_skip_dir("a"));
    }

    #[test]
    fn parent_results_agree() {
        let pm = m(&["a/**/c", "!a/b/c/keep", "*.tmp"]);
        let (ma, ia) = pm.matches_with_parent("a", &MatchInfo::default());
        let (mb, ib) = pm.matches_with_parent("a/b", &ia);
        let (mc, ic) = pm.matches_with_parent("a/b/c", &ib);
        let (mk, _) = pm.matches_with_parent("a/b/c/keep", &ic);
        let (mo, _) = pm.matches_with_parent("a/b/c/other", &ic);
        assert_eq!((ma, mb, mc, mk, mo), (false, false, true, false, true));
        for p in ["a", "a/b", "a/b/c", "a/b/c/keep", "a/b/c/other"] {
            assert_eq!(
                pm.matches(p),
                pm.matches_with_parent(p, &MatchInfo::default()).0
            );
        }
    }

    #[test]
    fn picks_dockerfile_specific_ignore_file() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("app.Dockerfile");
        std::fs::write(&df, "FROM scratch\n").unwrap();
        assert_eq!(ignore_file_for(&df, dir.path()), None);
        std::fs::write(dir.path().join(".dockerignore"), "a\n").unwrap();
        assert_eq!(
            ignore_file_for(&df, dir.path()),
            Some(dir.path().join(".dockerignore"))
        );
        std::fs::write(dir.path().join("app.Dockerfile.dockerignore"), "b\n").unwrap();
        assert_eq!(
            ignore_file_for(&df, dir.path()),
            Some(dir.path().join("app.Dockerfile.dockerignore"))
        );
        let pm = matcher_for(&df, dir.path()).unwrap();
        assert!(pm.matches("b") && !pm.matches("a"));
    }
}
