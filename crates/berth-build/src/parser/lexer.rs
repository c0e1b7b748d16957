//! Physical lines to logical lines: comments, parser directives, line
//! continuations (with the escape character), and here-document bodies.
//!
//! Follows BuildKit's `parser.Parse`: leading whitespace is dropped from the
//! first line of an instruction, comment lines inside a continuation are
//! skipped, empty continuation lines are skipped with a warning
//! (`NoEmptyContinuation`), and here-document bodies are read right after
//! the line that opens them (RUN, COPY, ADD, and ONBUILD of those).

use crate::instructions::{Directives, Heredoc, ParseWarning};

use super::directives::DirectiveParser;
use super::flags::extract_flags;
use super::heredoc;
use super::instruction::parse_json_array;

/// A logical line: one instruction's text with its source line span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLine {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

/// The result of splitting a file.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    pub lines: Vec<RawLine>,
    pub directives: Directives,
    pub warnings: Vec<ParseWarning>,
}

/// A lexing error: (start line, end line, message).
pub(crate) type LexError = (usize, usize, String);

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Remove a trailing continuation (escape + optional blanks); true when found.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// Whether a logical line may open here-documents.
fn can_contain_heredoc(line: &str) -> bool {
    let mut rest = line.trim();
    let mut cmd = first_word(rest);
    if cmd.eq_ignore_ascii_case("onbuild") {
        rest = rest[cmd.len()..].trim_start();
        cmd = first_word(rest);
    }
    if !["run", "copy", "add"]
        .iter()
        .any(|c| cmd.eq_ignore_ascii_case(c))
    {
        return false;
    }
    let Ok((args, _)) = extract_flags(rest[cmd.len()..].trim_start()) else {
        return false;
    };
    !matches!(parse_json_array(args.trim()), Ok(Some(_)))
}

fn first_word(s: &str) -> &str {
    s.split(|c: char| c.is_whitespace()).next().unwrap_or("")
}

/// Split Dockerfile text into logical lines.
pub(crate) fn split(text: &str) -> Result<Lines, LexError> {
    let mut d = DirectiveParser::default();
    let mut out = Lines::default();
    let mut physical = text.split('\n').peekable();
    // bufio.Scanner semantics: a final empty line after '\n' does not count.
    let mut all: Vec<&str> = Vec::new();
    while let Some(l) = physical.next() {
        if l.is_empty() && physical.peek().is_none() {
            break;
        }
        all.push(l.strip_suffix('\r').unwrap_or(l));
    }
    let mut i = 0;
    while i < all.len() {
        let mut raw = all[i];
        if i == 0 {
            raw = raw.trim_start_matches('\u{feff}');
        }
        let line_no = i + 1;
        i += 1;
        let token = raw.trim_start();
        d.feed(token).map_err(|e| (line_no, line_no, e))?;
        let escape = d.directives.escape;
        let token = if is_comment(token) { "" } else { token };
        let (first, cont) = trim_continuation(token, escape);
        if !cont && first.is_empty() {
            continue;
        }
        let start = line_no;
        let mut end = line_no;
        let mut text = first.to_string();
        let mut continued = cont;
        let mut empty_continuation = false;
        while continued && i < all.len() {
            let raw = all[i];
            i += 1;
            end = i;
            d.feed(raw).map_err(|e| (end, end, e))?;
            if is_comment(raw) {
                continue;
            }
            if raw.trim().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, c) = trim_continuation(raw, escape);
            text.push_str(part);
            continued = c;
        }
        if empty_continuation {
            out.warnings.push(ParseWarning {
                rule: "NoEmptyContinuation",
                line: end,
                message: format!("Empty continuation line found in: {text}"),
            });
        }
        let mut heredocs = Vec::new();
        if text.contains("<<") && can_contain_heredoc(&text) {
            let found = heredoc::heredocs_in_line(&text).map_err(|e| (start, end, e))?;
            for mut h in found {
                let mut terminated = false;
                let mut content = String::new();
                while i < all.len() {
                    let body = all[i];
                    i += 1;
                    end = i;
                    let candidate = if h.chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if candidate == h.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(body);
                    content.push('\n');
                }
                if !terminated {
                    return Err((start, end, format!("unterminated heredoc {}", h.name)));
                }
                h.content = if h.chomp {
                    heredoc::chomp(&content)
                } else {
                    content
                };
                heredocs.push(h);
            }
        }
        out.lines.push(RawLine {
            start,
            end,
            text,
            heredocs,
        });
    }
    out.directives = d.directives;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(l: &Lines) -> Vec<(usize, usize, &str)> {
        l.lines
            .iter()
            .map(|r| (r.start, r.end, r.text.as_str()))
            .collect()
    }

    #[test]
    fn continuations_and_comments() {
        let l = split("FROM a\nRUN echo a \\\n# comment\n  b \\\n\n  c\n  # trailing\nCMD x\n")
            .unwrap();
        assert_eq!(
            texts(&l),
            vec![
                (1, 1, "FROM a"),
                (2, 6, "RUN echo a   b   c"),
                (8, 8, "CMD x")
            ]
        );
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].rule, "NoEmptyContinuation");
    }

    #[test]
    fn backtick_escape() {
        let l = split("# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n").unwrap();
        assert_eq!(l.directives.escape, '`');
        assert_eq!(texts(&l)[1], (3, 4, "RUN dir c:\\   /w"));
    }

    #[test]
    fn heredoc_bodies() {
        let src = "FROM a\nRUN <<EOF cat >/x <<-'X'\necho $HOME\nEOF\n\t\tindented\n\tX\nCOPY <<A <<B /d/\n1\nA\n2\nB\nRUN [\"a\", \"<<NOT\"]\n";
        let l = split(src).unwrap();
        let run = &l.lines[1];
        assert_eq!((run.start, run.end), (2, 6));
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(run.heredocs[0].content, "echo $HOME\n");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.heredocs[1].content, "indented\n");
        assert!(!run.heredocs[1].expand && run.heredocs[1].chomp);
        let copy = &l.lines[2];
        assert_eq!(
            copy.heredocs
                .iter()
                .map(|h| h.content.as_str())
                .collect::<Vec<_>>(),
            vec!["1\n", "2\n"]
        );
        assert!(l.lines[3].heredocs.is_empty());
        assert!(split("FROM a\nRUN <<EOF\nno end\n").is_err());
    }
}
