//! Shell glob patterns inside `${v#p}`, `${v%p}` and `${v/p/r}`.
//!
//! `*` is any string, `?` any character, `\` escapes `*`, `?` and `\`
//! (and, inside `${}`, a `}` or `/` whose escape is not part of the
//! pattern). Bracket expressions are not supported, as in BuildKit.
//! Shortest-suffix matching is done by reversing both pattern and value
//! so that a leftmost regex search finds it.

use regex::Regex;

/// A pattern that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `\` followed by something other than `*`, `?` or `\`.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(String),
    /// The generated regex did not compile (should not happen).
    #[error("{0}")]
    Regex(String),
}

/// Convert a shell pattern to a regex; `*` is greedy or lazy, optionally
/// anchored at the start.
pub fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, PatternError> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut it = pattern.chars().peekable();
    while let Some(tok) = it.next() {
        match tok {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                if matches!(it.peek(), Some('}' | '/')) {
                    continue;
                }
                match it.next() {
                    Some(c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                    }
                    Some(c) => return Err(PatternError::InvalidEscape(c.to_string())),
                    None => return Err(PatternError::InvalidEscape(String::new())),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(tok);
            }
            _ => out.push(tok),
        }
    }
    Regex::new(&out).map_err(|e| PatternError::Regex(e.to_string()))
}

/// Reverse a pattern, keeping `\x` escapes in front of their character.
pub fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().wrapping_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${v#p}` / `${v##p}`.
pub fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, PatternError> {
    let re = to_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${v%p}` / `${v%%p}`.
pub fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, PatternError> {
    let rp = reverse_pattern(pattern);
    let rv: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&rp, &rv, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// `${v/p/r}` (first match) or `${v//p/r}` (all matches).
pub fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, PatternError> {
    let re = to_regex(pattern, true, false)?;
    if all {
        // Go's ReplaceAllString expands `$name` in the replacement too.
        Ok(re.replace_all(value, replacement).into_owned())
    } else {
        Ok(match re.find(value) {
            Some(m) => format!(
                "{}{}{}",
                &value[..m.start()],
                replacement,
                &value[m.end()..]
            ),
            None => value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_conversion() {
        assert_eq!(to_regex("*", true, true).unwrap().as_str(), "^.*");
        assert_eq!(to_regex("?", true, true).unwrap().as_str(), "^.");
        assert_eq!(to_regex(r"\*", true, true).unwrap().as_str(), r"^\*");
        for bad in [r"\", r"\x", r"\\\"] {
            assert!(to_regex(bad, true, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn reversing() {
        assert_eq!(reverse_pattern(r"a\*c"), r"c\*a");
        assert_eq!(reverse_pattern(r"\\\ab"), r"b\a\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern(r"\\b"), r"b\\");
    }
}
