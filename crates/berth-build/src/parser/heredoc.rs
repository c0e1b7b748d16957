//! Here-documents: finding `<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"` and
//! `3<<EOF` words on an instruction line, and reading their bodies.
//!
//! As in BuildKit, the line is split into words with quotes kept; a word
//! of the form `[fd]<<[-]name` starts a here-document, and it is not
//! expanded when any part of its name was quoted.

use std::sync::OnceLock;

use regex::Regex;

use crate::instructions::Heredoc;
use crate::shell::Lex;

fn heredoc_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(\d*)<<(-?)([^<]*)$").expect("static regex"))
}

/// Parse one word as a here-document opener.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let Some(caps) = heredoc_re().captures(word) else {
        return Ok(None);
    };
    let fd = caps[1].parse::<u32>().ok();
    let chomp = &caps[2] == "-";
    let rest = &caps[3];
    if rest.is_empty() {
        return Ok(None);
    }
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let empty: &[String] = &[];
    let words = lex.process_words(rest, &empty).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &empty).map_err(|e| e.to_string())?;
    if raw.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand: quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        fd,
    }))
}

/// All here-document openers on a logical line, in order.
pub(crate) fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    let empty: &[String] = &[];
    let Ok(words) = lex.process_words(line, &empty) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// Strip leading tabs from every line (`<<-`).
pub(crate) fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers() {
        let hs = heredocs_in_line("RUN cat <<EOF 3<<-'END' <<\"X\" \"<<NOT\"").unwrap();
        let names: Vec<_> = hs
            .iter()
            .map(|h| (h.name.as_str(), h.expand, h.chomp, h.fd))
            .collect();
        assert_eq!(
            names,
            vec![
                ("EOF", true, false, None),
                ("END", false, true, Some(3)),
                ("X", false, false, None)
            ]
        );
        assert!(parse_heredoc("<<").unwrap().is_none());
        assert!(parse_heredoc("a<<b").unwrap().is_none());
    }

    #[test]
    fn chomping() {
        assert_eq!(chomp("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
