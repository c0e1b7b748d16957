//! Dockerfile text to a typed [`Dockerfile`].
//!
//! The work is split the way BuildKit splits it: `lexer` turns physical
//! lines into logical ones (directives, comments, continuations,
//! here-documents), `instruction` turns each logical line into a typed
//! instruction, and [`parse`] groups them into stages. Every error names
//! its line: `Dockerfile:3: unknown instruction: RUNN`.

mod directives;
mod flags;
mod heredoc;
pub(crate) mod instruction;
mod lexer;
mod mount;

use crate::instructions::{Dockerfile, InstructionKind, Stage};

pub use instruction::KEYWORDS;

/// A Dockerfile that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file name used in messages (`Dockerfile` by default).
    pub file: String,
    /// 1-based first line of the offending instruction.
    pub line: usize,
    /// 1-based last line of the offending instruction.
    pub end_line: usize,
    /// What is wrong.
    pub message: String,
}

/// Split text into logical lines (for the linter, which parses each line
/// on its own).
pub(crate) fn lexer_split(text: &str) -> Result<lexer::Lines, lexer::LexError> {
    lexer::split(text)
}

/// Parse Dockerfile text (messages name the file `Dockerfile`).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    parse_named(text, "Dockerfile")
}

/// Parse Dockerfile text, naming the file `file` in error messages.
pub fn parse_named(text: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let err = |line: usize, end_line: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        end_line,
        message,
    };
    let lines = lexer::split(text).map_err(|(s, e, m)| err(s, e, m))?;
    let escape = lines.directives.escape;
    let mut df = Dockerfile {
        directives: lines.directives,
        global_args: Vec::new(),
        stages: Vec::new(),
        warnings: lines.warnings,
    };
    if lines.lines.is_empty() {
        return Err(err(
            text.lines().count().max(1),
            0,
            "file with no instructions".into(),
        ));
    }
    for raw in &lines.lines {
        let parsed =
            instruction::parse_line(raw, escape).map_err(|m| err(raw.start, raw.end, m))?;
        match parsed {
            instruction::Parsed::From(base) => {
                let index = df.stages.len();
                df.stages.push(Stage {
                    index,
                    name: base.name.clone(),
                    base,
                    line: raw.start,
                    instructions: Vec::new(),
                });
            }
            instruction::Parsed::Instruction(i) => match df.stages.last_mut() {
                Some(stage) => stage.instructions.push(i),
                None if matches!(i.kind, InstructionKind::Arg(_)) => df.global_args.push(i),
                None => {
                    return Err(err(
                        raw.start,
                        raw.end,
                        format!(
                            "{} must come after FROM: no build stage in current context",
                            i.kind.name()
                        ),
                    ))
                }
            },
        }
    }
    if df.stages.is_empty() {
        let last = lines.lines.last().map_or(1, |l| l.end);
        return Err(err(
            last,
            last,
            "no FROM instruction: a Dockerfile needs at least one stage".into(),
        ));
    }
    Ok(df)
}

#[cfg(test)]
mod tests;
