//! Parser directives: `# syntax=`, `# escape=`, `# check=` at the very top.
//!
//! Directives are only recognised before the first instruction, comment
//! that is not a directive, or blank line; an unknown directive ends the
//! directive block (as BuildKit does), and each may appear only once.

use std::sync::OnceLock;

use regex::Regex;

use crate::instructions::Directives;

fn directive_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$").expect("static regex")
    })
}

/// Tracks the directive block while lines are read.
#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    done: bool,
    pub(crate) directives: Directives,
    seen: Vec<String>,
}

impl DirectiveParser {
    /// Look at a physical line (left-trimmed); an error names the problem.
    pub(crate) fn feed(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some(caps) = directive_re().captures(line) else {
            self.done = true;
            return Ok(());
        };
        let key = caps[1].to_ascii_lowercase();
        let value = caps[2].to_string();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        ))
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_stop_at_first_other_line() {
        let mut d = DirectiveParser::default();
        d.feed("# syntax=docker/dockerfile:1").unwrap();
        d.feed("# escape=`").unwrap();
        d.feed("# check=skip=all").unwrap();
        d.feed("FROM x").unwrap();
        d.feed("# escape=\\").unwrap();
        assert_eq!(d.directives.escape, '`');
        assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
        let mut d = DirectiveParser::default();
        d.feed("# escape=x").unwrap_err();
        let mut d = DirectiveParser::default();
        d.feed("#escape=\\").unwrap();
        assert!(d
            .feed("# escape=`")
            .unwrap_err()
            .contains("only one escape"));
    }
}
