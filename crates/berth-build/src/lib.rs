//! berth-build: the Dockerfile language, independent of any executor.
//!
//! Where to start reading:
//! - [`parse`] turns Dockerfile text into a typed [`Dockerfile`] (stages of
//!   [`Instruction`]s with their line numbers), [`lint::check`] reports
//!   every problem for `berth build --check`;
//! - [`shell::Lex`] expands words the way BuildKit does; [`args`] holds
//!   ARG/ENV scoping and [`expand`] applies it to an instruction;
//! - [`graph::plan`] picks and orders the stages a `--target` needs;
//! - [`ignore`] and [`context`] select the files of a build context;
//! - [`cache_key`] derives step keys from instructions, args and content.
//!
//! The executor (RUN steps as containers, layers, image config) sits on top:
//! for each stage of a [`graph::BuildPlan`] it keeps an
//! [`args::StageScope`], expands each instruction with [`expand::expand`],
//! and chains [`cache_key::step_key`]s from [`cache_key::base_key`].
#![deny(missing_docs)]

pub mod args;
pub mod cache_key;
pub mod context;
pub mod expand;
pub mod graph;
pub mod ignore;
pub mod instructions;
pub mod lint;
pub mod parser;
pub mod shell;

pub use instructions::{Dockerfile, Instruction, InstructionKind, Stage};
pub use parser::{parse, parse_named, ParseError};
