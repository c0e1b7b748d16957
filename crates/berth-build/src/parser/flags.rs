//! `--flag[=value]` words before an instruction's arguments: splitting
//! them off the line (BuildKit's `extractBuilderFlags`) and checking them
//! against what each instruction accepts (BuildKit's `BFlags`).

use std::collections::BTreeMap;

/// Split leading `--flag[=value]` words off an argument string, as
/// BuildKit's `extractBuilderFlags` (quotes and `\` escapes allowed inside
/// flag values; a bare `--` ends the flags).
pub(crate) fn extract_flags(line: &str) -> Result<(&str, Vec<String>), String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    let to_s = |w: &[u8]| String::from_utf8_lossy(w).into_owned();
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if ch.is_ascii_whitespace() {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return Ok((&line[pos..], words));
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                words.push(to_s(&word));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_ascii_whitespace() {
                phase = Phase::Spaces;
                if word == b"--" {
                    return Ok((&line[pos..], words));
                }
                if blank_ok || !word.is_empty() {
                    words.push(to_s(&word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
        } else if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        // In and out of quotes, `\` keeps the next character and is dropped itself.
        if ch == b'\\' {
            pos += 1;
            if pos == b.len() {
                continue;
            }
        }
        word.push(b[pos]);
        pos += 1;
    }
    Ok(("", words))
}

/// The kinds of flag an instruction accepts.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum FlagKind {
    Bool,
    Str,
    List,
}

/// Parsed `--flags` of one instruction.
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    pub(crate) fn parse(
        raw: &[String],
        spec: &[(&'static str, FlagKind)],
    ) -> Result<Flags, String> {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for arg in raw {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(format!("Arguments must start with --: {arg}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(format!("unknown flag: {name}"));
            };
            if kind != FlagKind::List && values.contains_key(key) {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            let v = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".into(),
                    "false" => "false".into(),
                    _ => return Err(format!("expecting boolean value for flag {name}, not: {v}")),
                },
                (_, None) => return Err(format!("Missing a value on flag: {name}")),
                (_, Some(v)) => v.to_string(),
            };
            values.entry(key).or_default().push(v);
        }
        Ok(Flags { values })
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|v| v.last().map(String::as_str) == Some("true"))
    }

    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_flags() {
        let (rest, f) = extract_flags("--from=a --chown=\"x y\" --link src dst").unwrap();
        assert_eq!(rest, "src dst");
        assert_eq!(f, vec!["--from=a", "--chown=x y", "--link"]);
        let (rest, f) = extract_flags("-- --notflag").unwrap();
        assert_eq!((rest, f.len()), (" --notflag", 0));
    }

    #[test]
    fn flag_values_drop_quotes_and_escapes() {
        let (rest, f) = extract_flags(r#"--a='p\q' --b=c\ d --c="e\"f" x"#).unwrap();
        assert_eq!(rest, "x");
        assert_eq!(f, vec!["--a=pq", "--b=c d", r#"--c=e"f"#]);
        let (rest, f) = extract_flags(r#"--a=b\"#).unwrap();
        assert_eq!((rest, f), ("", vec!["--a=b".to_string()]));
        let (rest, f) = extract_flags(r#"--a="b\"#).unwrap();
        assert_eq!((rest, f), ("", vec!["--a=b".to_string()]));
    }

    #[test]
    fn flag_checks() {
        let spec = [
            ("link", FlagKind::Bool),
            ("from", FlagKind::Str),
            ("exclude", FlagKind::List),
        ];
        let raw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Flags::parse(
            &raw(&["--link", "--from=a", "--exclude=x", "--exclude=y"]),
            &spec,
        )
        .unwrap();
        assert!(f.bool("link"));
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.list("exclude"), vec!["x", "y"]);
        assert_eq!(
            Flags::parse(&raw(&["--nope"]), &spec).err().unwrap(),
            "unknown flag: nope"
        );
        assert!(Flags::parse(&raw(&["--from"]), &spec).is_err());
        assert!(Flags::parse(&raw(&["--from=a", "--from=b"]), &spec).is_err());
        assert!(Flags::parse(&raw(&["--link=maybe"]), &spec).is_err());
        assert!(!Flags::parse(&raw(&["--link=false"]), &spec)
            .unwrap()
            .bool("link"));
    }
}
