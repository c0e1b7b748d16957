//! The word lexer: quotes, escapes and `$var` / `${var…}` substitution.
//!
//! This follows the rules of BuildKit's `frontend/dockerfile/shell/lex.go`
//! (written from its behaviour and its conformance files, not copied):
//! single quotes keep everything literal, double quotes allow `$` and escape
//! only `"`, `$` and the escape character, an unquoted escape character
//! escapes anything, and splitting into words (for [`Lex::process_words`])
//! happens on whitespace that is neither quoted nor escaped, including
//! whitespace that comes out of a variable's value.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::pattern::{self, PatternError};

/// A word-expansion failure, e.g. an unterminated quote or `${v:?msg}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process \"{word}\": {message}")]
pub struct ShellError {
    /// The word that was being processed.
    pub word: String,
    /// What went wrong.
    pub message: String,
}

/// Where variables are looked up during expansion.
pub trait EnvLookup {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl EnvLookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An ordered `KEY=value` list (entries without `=` are set to empty); the
/// last entry for a key wins, as with Docker's `BuildEnvs`.
impl EnvLookup for [String] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|e| match e.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if e == name => Some(""),
            _ => None,
        })
    }
}

impl EnvLookup for Vec<String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl EnvLookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<T: EnvLookup + ?Sized> EnvLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// The full result of processing one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The word after quote removal and substitution.
    pub result: String,
    /// The same, split into words.
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but not set (for lint).
    pub unmatched: BTreeSet<String>,
}

/// A shell-like word processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lex {
    escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as they are.
    pub skip_unset_env: bool,
}

impl Default for Lex {
    fn default() -> Self {
        Lex::new('\\')
    }
}

impl Lex {
    /// A lexer using `escape` (`\` or `` ` ``) as escape character.
    pub fn new(escape: char) -> Self {
        Lex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expand `word` into a single string (spaces between words kept).
    pub fn process_word(&self, word: &str, env: &dyn EnvLookup) -> Result<String, ShellError> {
        Ok(self.process(word, env)?.result)
    }

    /// Expand `word` and split it into words.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn EnvLookup,
    ) -> Result<Vec<String>, ShellError> {
        Ok(self.process(word, env)?.words)
    }

    /// Expand `word`, returning the string, the words and the variables used.
    pub fn process(&self, word: &str, env: &dyn EnvLookup) -> Result<Processed, ShellError> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(Processed {
                result,
                words,
                matched: sw.matched,
                unmatched: sw.unmatched,
            }),
            Err(message) => Err(ShellError {
                word: word.to_string(),
                message,
            }),
        }
    }
}

/// Accumulates characters into whitespace-separated words.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: &'a Lex,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn EnvLookup,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

type Res<T> = Result<T, String>;

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Process until `stop` (consumed) or the end of input.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Res<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.lex.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            if ch == '$' {
                let tmp = self.process_dollar()?;
                result.push_str(&tmp);
                words.add_string(&tmp);
            } else if quotes && (ch == '\'' || ch == '"') {
                let tmp = if ch == '\'' {
                    self.process_single_quote()?
                } else {
                    self.process_double_quote()?
                };
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else {
                self.next();
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // The escape character escapes anything; at the end of
                    // the input it is dropped.
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                } else {
                    words.add_char(ch);
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the very end is dropped.
                            None => continue,
                            // Only these can be escaped inside double quotes.
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Res<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let ch = self.next();
        match ch {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(c @ (':' | '+' | '-' | '?' | '#' | '%')) => {
                let mut modifier = c.to_string();
                let mut op = Some(c);
                let null_is_unset = c == ':';
                if null_is_unset {
                    op = self.next();
                    modifier.extend(op);
                }
                let raw = matches!(op, Some('#' | '%'));
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) if self.peek().is_none() => {
                        let _ = e;
                        return Err("syntax error: missing '}'".into());
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty = |v: &Option<String>| !matches!(v.as_deref(), Some(s) if !s.is_empty());
                match op {
                    Some('-') => {
                        if value.is_none() || (null_is_unset && empty(&value)) {
                            Ok(word)
                        } else {
                            Ok(value.unwrap_or_default())
                        }
                    }
                    Some('+') => {
                        if value.is_none() || (null_is_unset && empty(&value)) {
                            Ok(String::new())
                        } else {
                            Ok(word)
                        }
                    }
                    Some('?') => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    Some(op @ ('%' | '#')) => {
                        let (greedy, pat) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let value = value.unwrap_or_default();
                        let r = if op == '%' {
                            pattern::trim_suffix(pat, &value, greedy)
                        } else {
                            pattern::trim_prefix(pat, &value, greedy)
                        };
                        r.map_err(|e| pattern_error(pat, e))
                    }
                    _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pat = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".into())
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into())
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pat}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                pattern::replace(&pat, &value, &replacement, replace_all)
                    .map_err(|e| pattern_error(&pat, e))
            }
            other => {
                let shown = other.map_or('\u{fffd}', |c| c);
                Err(format!("unsupported modifier ({shown}) in substitution"))
            }
        }
    }
}

fn pattern_error(pat: &str, e: PatternError) -> String {
    format!("invalid pattern ({pat}) in substitution: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(input: &str, e: &[(&str, &str)]) -> Result<String, ShellError> {
        Lex::new('\\').process_word(input, &env(e))
    }

    #[test]
    fn basic_quotes_and_escapes() {
        assert_eq!(word("he'll'o", &[]).unwrap(), "hello");
        assert_eq!(word(r#""abc\tdef""#, &[]).unwrap(), r"abc\tdef");
        assert_eq!(word(r"he\$PWD", &[("PWD", "/home")]).unwrap(), "he$PWD");
        assert!(word("'abc", &[]).is_err());
    }

    #[test]
    fn modifiers() {
        let e = [("FOO", "xxyy"), ("BAR", ""), ("NEEDLE", "/tmp")];
        assert_eq!(
            word("${FOO:-a} ${BAR:-b} ${BAZ:-c}", &e).unwrap(),
            "xxyy b c"
        );
        assert_eq!(word("${FOO-a} ${BAR-b} ${BAZ-c}", &e).unwrap(), "xxyy  c");
        assert_eq!(word("${FOO:+a} ${BAR:+b} ${BAZ:+c}", &e).unwrap(), "a  ");
        assert_eq!(word("${FOO+a} ${BAR+b} ${BAZ+c}", &e).unwrap(), "a b ");
        assert_eq!(word("${BAR?x}", &e).unwrap(), "");
        let err = word("${BAR:?must be set}", &e).unwrap_err();
        assert!(err.message.contains("must be set"), "{err}");
        assert!(word("${BAZ?}", &e).is_err());
        assert_eq!(word("${FOO#*x*y}", &e).unwrap(), "y");
        assert_eq!(word("${FOO##*x}", &e).unwrap(), "yy");
        assert_eq!(word("${FOO%y*}", &e).unwrap(), "xxy");
        assert_eq!(word("${FOO%%y*}", &e).unwrap(), "xx");
        assert_eq!(word("${FOO#?\\?}", &[("FOO", "???y")]).unwrap(), "?y");
        assert_eq!(word(r"${FOO%%\**\*}", &[("FOO", "a***yy*")]).unwrap(), "a");
        let f = [("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")];
        assert_eq!(
            word("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &f).unwrap(),
            "/tmp/bar.txt - /bar.txt"
        );
        let f = [("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("R", "/")];
        assert_eq!(
            word("${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}", &f).unwrap(),
            "/foo/b/c.txt - /foo/c.txt"
        );
        assert_eq!(
            word(r"${FOO//\//\/}", &[("FOO", "/tmp/foo.txt")]).unwrap(),
            r"\/tmp\/foo.txt"
        );
        assert!(word("${FOO//ww}", &e).is_err());
        assert_eq!(word("${FOO///}", &e).unwrap(), "xxyy");
        assert!(word("${FOO=aaa}", &e).is_err());
    }

    #[test]
    fn special_regex_chars_in_patterns() {
        let e = [("FOO", r"()[]{}^$.*?|\x")];
        assert_eq!(word(r"${FOO#()[]{\}^$.\*\?|\\}", &e).unwrap(), "x");
    }

    #[test]
    fn backtick_escape() {
        let lex = Lex::new('`');
        let e = env(&[("A", "1")]);
        assert_eq!(lex.process_word("a`$A b\\c", &e).unwrap(), "a$A b\\c");
        assert_eq!(lex.process_words("x` y $A", &e).unwrap(), vec!["x y", "1"]);
    }

    #[test]
    fn matches_are_reported() {
        let p = Lex::default()
            .process("${FOO:-a} $BAR", &env(&[("FOO", "1")]))
            .unwrap();
        assert!(p.matched.contains("FOO"));
        assert!(p.unmatched.contains("BAR"));
    }
}
