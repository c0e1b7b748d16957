//! The `berth` command: parses Docker's command line and hands each command to the engine.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use cli::Cli;

/// Exit status for errors of berth itself, as Docker uses for `run` and for usage errors.
pub const EXIT_ENGINE_ERROR: u8 = 125;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(monitor) =
        berth_engine::monitor::MonitorArgs::from_command_line(args.get(1..).unwrap_or_default())
    {
        return ExitCode::from(berth_engine::monitor::main(monitor) as u8);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    init_logging(&cli.global.log_level);
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("Error: {}", one_line(&err));
            match err.downcast_ref::<commands::Failure>() {
                Some(failure) => ExitCode::from(failure.code),
                None => ExitCode::from(1),
            }
        }
    }
}

/// The error and its causes on one line, as `outer: inner: root`.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints clap's errors the way the Docker CLI words them, with exit status 125.
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return ExitCode::from(EXIT_ENGINE_ERROR);
        }
        _ => {}
    }
    let value = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(s)) => Some(s.join(", ")),
        _ => None,
    };
    let message = match err.kind() {
        ErrorKind::UnknownArgument => {
            format!(
                "unknown flag: {}",
                value(ContextKind::InvalidArg).unwrap_or_default()
            )
        }
        // Docker (cobra/pflag): `invalid argument "x" for "--flag" flag: why`.
        ErrorKind::ValueValidation => {
            let arg = value(ContextKind::InvalidArg).unwrap_or_default();
            let flag = arg.split([' ', '=']).next().unwrap_or_default();
            let why = std::error::Error::source(&err)
                .map(|e| e.to_string())
                .unwrap_or_default();
            format!(
                "invalid argument {:?} for {flag:?} flag: {why}",
                value(ContextKind::InvalidValue).unwrap_or_default()
            )
        }
        ErrorKind::InvalidSubcommand => format!(
            "'{}' is not a berth command",
            value(ContextKind::InvalidSubcommand).unwrap_or_default()
        ),
        _ => {
            let rendered = err.render().to_string();
            rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string()
        }
    };
    eprintln!("berth: {message}. See 'berth --help'.");
    ExitCode::from(EXIT_ENGINE_ERROR)
}

fn init_logging(level: &str) {
    let level = match level {
        "fatal" => "error",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
