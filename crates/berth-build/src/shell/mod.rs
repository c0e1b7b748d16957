//! Shell-like word expansion for Dockerfile arguments, as BuildKit's
//! `shell.Lex` does it: quotes, escapes, `$v`, `${v}` and the modifiers
//! `:- - :+ + :? ? # ## % %% / //`.
//!
//! [`Lex::process_word`] gives one string, [`Lex::process_words`] splits
//! the result on unquoted whitespace.

mod lex;
pub mod pattern;

pub use lex::{EnvLookup, Lex, Processed, ShellError};
