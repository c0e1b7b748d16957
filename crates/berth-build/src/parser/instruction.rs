//! One logical line to one typed instruction: the keyword, `--flags`, and
//! the argument forms (JSON array, words, `key=value` pairs, single string)
//! of BuildKit's line parsers, plus each instruction's own checks.

use std::time::Duration;

use crate::instructions::{
    ArgDecl, CommandLine, Copy, CopySource, FromSpec, Healthcheck, Heredoc, Instruction,
    InstructionKind, KeyValue, KeyValues, NetworkMode, Run,
};

use super::flags::{extract_flags, FlagKind, Flags};
use super::heredoc::parse_heredoc;
use super::lexer::RawLine;
use super::mount::parse_mount;

/// All instruction keywords (lower case).
pub const KEYWORDS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Parse `text` as a JSON array of strings: `Ok(None)` when it is not JSON
/// at all (shell form), an error when it is an array of non-strings.
pub(crate) fn parse_json_array(text: &str) -> Result<Option<Vec<String>>, String> {
    let t = text.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(t) else {
        return Ok(None);
    };
    let Some(items) = v.as_array() else {
        return Ok(None);
    };
    items
        .iter()
        .map(|i| {
            i.as_str().map(str::to_string).ok_or_else(|| {
                "when using JSON array syntax, arrays must be comprised of strings only".to_string()
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// Split on runs of blanks (BuildKit's `reWhitespace`).
fn split_blanks(s: &str) -> Vec<String> {
    s.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Split at the first run of blanks into two parts.
fn split_blanks2(s: &str) -> Vec<&str> {
    match s.find(is_blank) {
        None => vec![s],
        Some(i) => vec![&s[..i], s[i..].trim_start_matches(is_blank)],
    }
}

/// BuildKit's `parseWords`: whitespace-separated words, quotes and escapes
/// kept in the words.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == chars.len() {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == chars.len() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
        } else if ch == quote {
            phase = Phase::Word;
        }
        // The escape and the character it escapes both stay in the word; single quotes
        // escape nothing. An escape ending the input is dropped.
        if ch == escape && (phase == Phase::Word || quote != '\'') {
            if pos + 1 == chars.len() {
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
        }
        word.push(chars[pos]);
        pos += 1;
    }
    words
}

/// A parsed line: either a stage start or an instruction.
pub(crate) enum Parsed {
    From(FromSpec),
    Instruction(Instruction),
}

/// Parse one logical line. Errors are messages; the caller adds the line.
pub(crate) fn parse_line(raw: &RawLine, escape: char) -> Result<Parsed, String> {
    let text = raw.text.trim();
    let (keyword, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let (args, flags) = if rest.is_empty() {
        ("", Vec::new())
    } else {
        extract_flags(rest)?
    };
    let args = args.trim();
    let lower = keyword.to_ascii_lowercase();
    if lower == "from" {
        return parse_from(args, &flags).map(Parsed::From);
    }
    let kind = parse_kind(&lower, keyword, args, &flags, &raw.heredocs, raw, escape)?;
    Ok(Parsed::Instruction(Instruction {
        line: raw.start,
        end_line: raw.end,
        keyword: keyword.to_string(),
        original: raw.text.clone(),
        kind,
    }))
}

fn no_flags(flags: &[String]) -> Result<(), String> {
    Flags::parse(flags, &[]).map(|_| ())
}

fn at_least_one(name: &str) -> String {
    format!("{name} requires at least one argument")
}

fn exactly_one(name: &str) -> String {
    format!("{name} requires exactly one argument")
}

fn parse_from(args: &str, flags: &[String]) -> Result<FromSpec, String> {
    let f = Flags::parse(flags, &[("platform", FlagKind::Str)])?;
    let words = split_blanks(args);
    let (name, as_keyword) = match words.len() {
        0 => return Err(at_least_one("FROM")),
        1 => (None, None),
        3 if words[1].eq_ignore_ascii_case("as") => {
            let name = words[2].to_ascii_lowercase();
            if !valid_stage_name(&name) {
                return Err(format!(
                    "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                    words[2]
                ));
            }
            (Some(name), Some(words[1].clone()))
        }
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    Ok(FromSpec {
        image: words[0].clone(),
        platform: f.string("platform"),
        name,
        as_keyword,
    })
}

/// `^[a-z][a-z0-9-_.]*$` on the lower-cased name.
pub(crate) fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Exec or shell form of RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD.
fn command_line(args: &str) -> Result<CommandLine, String> {
    match parse_json_array(args)? {
        Some(v) => Ok(CommandLine::Exec(v)),
        None => Ok(CommandLine::Shell(args.to_string())),
    }
}

/// JSON array or whitespace-separated words (COPY/ADD/VOLUME).
fn json_or_words(args: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json_array(args)? {
        Some(v) => Ok((v, true)),
        None => Ok((split_blanks(args), false)),
    }
}

fn parse_kind(
    lower: &str,
    keyword: &str,
    args: &str,
    flags: &[String],
    heredocs: &[Heredoc],
    raw: &RawLine,
    escape: char,
) -> Result<InstructionKind, String> {
    let upper = lower.to_ascii_uppercase();
    Ok(match lower {
        "run" => {
            let f = Flags::parse(
                flags,
                &[
                    ("mount", FlagKind::List),
                    ("network", FlagKind::Str),
                    ("security", FlagKind::Str),
                ],
            )?;
            if args.is_empty() {
                return Err(at_least_one("RUN"));
            }
            let mounts = f
                .list("mount")
                .iter()
                .map(|m| parse_mount(m))
                .collect::<Result<Vec<_>, _>>()?;
            let network = match f.string("network").as_deref() {
                None | Some("default") => NetworkMode::Default,
                Some("none") => NetworkMode::None,
                Some("host") => NetworkMode::Host,
                Some(other) => return Err(format!("network mode {other:?} not supported")),
            };
            let security = f.string("security");
            if let Some(s) = &security {
                if s != "insecure" && s != "sandbox" {
                    return Err(format!("security mode {s:?} not supported"));
                }
            }
            InstructionKind::Run(Run {
                command: command_line(args)?,
                heredocs: heredocs.to_vec(),
                mounts,
                network,
                security,
            })
        }
        "cmd" | "entrypoint" => {
            no_flags(flags)?;
            let cl = command_line(args)?;
            if lower == "cmd" {
                InstructionKind::Cmd(cl)
            } else {
                InstructionKind::Entrypoint(cl)
            }
        }
        "shell" => {
            no_flags(flags)?;
            match parse_json_array(args)? {
                Some(v) if !v.is_empty() => InstructionKind::Shell(v),
                _ => return Err("SHELL requires the arguments to be in JSON form".into()),
            }
        }
        "env" | "label" => {
            no_flags(flags)?;
            let kv = parse_name_val(args, &upper, escape)?;
            if kv.pairs.is_empty() {
                return Err(at_least_one(&upper));
            }
            if kv.pairs.iter().any(|p| p.key.is_empty()) {
                return Err(format!("{upper} names can not be blank"));
            }
            if lower == "env" {
                InstructionKind::Env(kv)
            } else {
                InstructionKind::Label(kv)
            }
        }
        "arg" => {
            no_flags(flags)?;
            let words = parse_words(args, escape);
            if words.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let decls = words
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some(("", _)) => Err("ARG names can not be blank".to_string()),
                    Some((k, v)) => Ok(ArgDecl {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    }),
                    None => Ok(ArgDecl {
                        name: w,
                        default: None,
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            InstructionKind::Arg(decls)
        }
        "expose" => {
            no_flags(flags)?;
            let ports = split_blanks(args);
            if ports.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            InstructionKind::Expose(ports)
        }
        "volume" => {
            no_flags(flags)?;
            let (vols, _) = json_or_words(args)?;
            if vols.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            InstructionKind::Volume(vols)
        }
        "user" | "workdir" | "stopsignal" | "maintainer" => {
            no_flags(flags)?;
            if args.is_empty() {
                return Err(exactly_one(&upper));
            }
            let s = args.to_string();
            match lower {
                "user" => InstructionKind::User(s),
                "workdir" => InstructionKind::Workdir(s),
                "stopsignal" => InstructionKind::StopSignal(s),
                _ => InstructionKind::Maintainer(s),
            }
        }
        "healthcheck" => parse_healthcheck(args, flags)?,
        "copy" | "add" => parse_copy(lower, args, flags, heredocs)?,
        "onbuild" => {
            no_flags(flags)?;
            if args.is_empty() {
                return Err(at_least_one("ONBUILD"));
            }
            let inner_kw = args
                .split(char::is_whitespace)
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match inner_kw.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{inner_kw} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            let inner_raw = RawLine {
                start: raw.start,
                end: raw.end,
                text: args.to_string(),
                heredocs: heredocs.to_vec(),
            };
            match parse_line(&inner_raw, escape)? {
                Parsed::Instruction(i) => InstructionKind::Onbuild(Box::new(i)),
                Parsed::From(_) => return Err("FROM isn't allowed as an ONBUILD trigger".into()),
            }
        }
        _ => return Err(unknown_instruction(keyword)),
    })
}

fn unknown_instruction(keyword: &str) -> String {
    let lower = keyword.to_ascii_lowercase();
    let best = KEYWORDS
        .iter()
        .map(|k| (edit_distance(k, &lower), *k))
        .min()
        .filter(|(d, _)| *d <= 2);
    match best {
        Some((_, k)) => format!(
            "unknown instruction: {keyword} (did you mean {}?)",
            k.to_ascii_uppercase()
        ),
        None => format!("unknown instruction: {keyword}"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ENV/LABEL: `KEY value` (legacy) or `k=v k2="v 2"`.
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<KeyValues, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(KeyValues {
            pairs: Vec::new(),
            legacy: false,
        });
    }
    if !words[0].contains('=') {
        let parts = split_blanks2(rest);
        if parts.len() < 2 || parts[1].is_empty() {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(KeyValues {
            pairs: vec![KeyValue {
                key: parts[0].to_string(),
                value: parts[1].to_string(),
            }],
            legacy: true,
        });
    }
    let mut pairs = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        pairs.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    Ok(KeyValues {
        pairs,
        legacy: false,
    })
}

/// Go's `time.ParseDuration` (units ns us µs ms s m h, fractions, sums).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest.starts_with('-') {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

fn parse_healthcheck(args: &str, flags: &[String]) -> Result<InstructionKind, String> {
    let (typ, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], args[i..].trim_start()),
        None => (args, ""),
    };
    if typ.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let typ = typ.to_ascii_uppercase();
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        no_flags(flags)?;
        return Ok(InstructionKind::Healthcheck(Healthcheck::None));
    }
    let f = Flags::parse(
        flags,
        &[
            ("interval", FlagKind::Str),
            ("timeout", FlagKind::Str),
            ("start-period", FlagKind::Str),
            ("start-interval", FlagKind::Str),
            ("retries", FlagKind::Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"));
    }
    let command = command_line(rest)?;
    let empty = match &command {
        CommandLine::Exec(v) => v.is_empty(),
        CommandLine::Shell(s) => s.is_empty(),
    };
    if empty {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let interval = |name: &str| -> Result<Option<Duration>, String> {
        let Some(v) = f.string(name) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(None);
        }
        let d = parse_duration(&v)?;
        if d.is_zero() {
            return Ok(None);
        }
        if d < Duration::from_millis(1) {
            return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
        }
        Ok(Some(d))
    };
    let retries = match f.string("retries") {
        None => None,
        Some(r) => {
            let n: i64 = r
                .parse()
                .map_err(|_| format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            Some(u32::try_from(n).map_err(|_| format!("--retries out of range ({n})"))?)
        }
    };
    Ok(InstructionKind::Healthcheck(Healthcheck::Cmd {
        command,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}

fn parse_copy(
    lower: &str,
    args: &str,
    flags: &[String],
    heredocs: &[Heredoc],
) -> Result<InstructionKind, String> {
    let name = lower.to_ascii_uppercase();
    let mut spec = vec![
        ("chown", FlagKind::Str),
        ("chmod", FlagKind::Str),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::List),
        ("parents", FlagKind::Bool),
    ];
    if lower == "copy" {
        spec.push(("from", FlagKind::Str));
    } else {
        spec.push(("checksum", FlagKind::Str));
        spec.push(("keep-git-dir", FlagKind::Bool));
    }
    let f = Flags::parse(flags, &spec)?;
    let (mut words, json) = json_or_words(args)?;
    if words.len() < 2 {
        return Err(format!(
            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let dest = words.pop().unwrap_or_default();
    if !json && parse_heredoc(&dest)?.is_some() {
        return Err(format!("{name} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    for w in words {
        match (json, parse_heredoc(&w)?) {
            (false, Some(h)) => {
                let body = heredocs.iter().find(|d| d.name == h.name).cloned();
                sources.push(CopySource::Inline(body.unwrap_or(h)));
            }
            _ => sources.push(CopySource::Path(w)),
        }
    }
    let copy = Copy {
        sources,
        dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        excludes: f.list("exclude"),
        parents: f.bool("parents"),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        json,
    };
    Ok(if lower == "copy" {
        InstructionKind::Copy(copy)
    } else {
        InstructionKind::Add(copy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"a=1 b="x y" c=\ d"#, '\\'),
            vec!["a=1", r#"b="x y""#, r"c=\ d"]
        );
    }

    #[test]
    fn words_escapes_in_and_out_of_quotes() {
        assert_eq!(
            parse_words(r#""x\"y" 'p\q' ab\"#, '\\'),
            vec![r#""x\"y""#, r"'p\q'", "ab"]
        );
        assert_eq!(parse_words(r#""a\"#, '\\'), vec![r#""a"#]);
        assert_eq!(parse_words("a` b \\c", '`'), vec!["a` b", "\\c"]);
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            parse_json_array(r#"["a", "b c"]"#).unwrap(),
            Some(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse_json_array("[a b]").unwrap(), None);
        assert!(parse_json_array("[1]").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            unknown_instruction("RUNN"),
            "unknown instruction: RUNN (did you mean RUN?)"
        );
        assert_eq!(unknown_instruction("XYZZYQ"), "unknown instruction: XYZZYQ");
    }
}
