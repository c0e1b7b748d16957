//! The typed Dockerfile: stages of instructions, each with its source lines.
//!
//! Values are kept as written (quotes and `$vars` unexpanded) except where
//! the reference says an argument is never expanded; [`crate::expand`]
//! produces the expanded form for a given ARG/ENV scope.

use std::time::Duration;

use serde::Serialize;

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=` (accepted and ignored: berth has one frontend).
    pub syntax: Option<String>,
    /// `# escape=`: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=` (e.g. `skip=JSONArgsRecommended;error=true`).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<Instruction>,
    /// Build stages in file order.
    pub stages: Vec<Stage>,
    /// Non-fatal parser findings (e.g. empty continuation lines).
    pub warnings: Vec<ParseWarning>,
}

/// A non-fatal parser finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    /// BuildKit's rule name, e.g. `NoEmptyContinuation`.
    pub rule: &'static str,
    /// 1-based line.
    pub line: usize,
    /// What was found.
    pub message: String,
}

/// One build stage: a `FROM` and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Position in the file, from 0 (usable as `--from=<index>`).
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The `FROM` line.
    pub base: FromSpec,
    /// 1-based line of the `FROM`.
    pub line: usize,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromSpec {
    /// Image reference, stage name or `scratch` (unexpanded).
    pub image: String,
    /// `--platform` (unexpanded).
    pub platform: Option<String>,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The `AS` keyword as written (for casing lint).
    pub as_keyword: Option<String>,
}

impl FromSpec {
    /// Whether this is `FROM scratch`.
    pub fn is_scratch(&self) -> bool {
        self.image.eq_ignore_ascii_case("scratch")
    }
}

/// One instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (continuations and heredocs included).
    pub end_line: usize,
    /// The keyword as written (e.g. `run`), for casing lint.
    pub keyword: String,
    /// The logical line (continuations joined, heredoc bodies excluded).
    pub original: String,
    /// What the instruction is.
    pub kind: InstructionKind,
}

/// The instructions of the Dockerfile reference (FROM is [`Stage::base`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum InstructionKind {
    /// `FROM` (only appears as an ONBUILD trigger error or inside stages'
    /// bases; never inside [`Stage::instructions`]).
    From(FromSpec),
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(CommandLine),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `ENV` (both forms).
    Env(KeyValues),
    /// `ARG name[=default] …`.
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v …`.
    Label(KeyValues),
    /// `EXPOSE port[/proto] …`.
    Expose(Vec<String>),
    /// `VOLUME` (JSON or words).
    Volume(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `WORKDIR path`.
    Workdir(String),
    /// `SHELL ["exe", "arg"…]`.
    Shell(Vec<String>),
    /// `STOPSIGNAL sig`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `ONBUILD <instruction>`.
    Onbuild(Box<Instruction>),
    /// `MAINTAINER` (deprecated).
    Maintainer(String),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Copy),
}

impl InstructionKind {
    /// The upper-case keyword.
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::From(_) => "FROM",
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::Maintainer(_) => "MAINTAINER",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
        }
    }

    /// Whether the step only changes image metadata (no layer).
    pub fn is_metadata_only(&self) -> bool {
        !matches!(
            self,
            InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_)
        )
    }
}

/// Exec form (JSON array) or shell form (one string run by the SHELL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CommandLine {
    /// `["exe", "arg"]`.
    Exec(Vec<String>),
    /// `exe arg` as written, run with the stage's SHELL.
    Shell(String),
}

impl CommandLine {
    /// The argv to execute: exec form as is, shell form appended to the
    /// stage's SHELL (default `["/bin/sh", "-c"]`).
    pub fn to_argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
        }
    }
}

/// The default SHELL on Linux.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string()]
}

/// A `<<EOF` here-document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word (quotes removed).
    pub name: String,
    /// The body, each line ending with `\n` (leading tabs stripped for `<<-`).
    pub content: String,
    /// Whether `$vars` in the body are expanded (false when the delimiter
    /// was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub chomp: bool,
    /// `3<<EOF`: the file descriptor, when given.
    pub fd: Option<u32>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// Here-documents referenced on the line.
    pub heredocs: Vec<Heredoc>,
    /// `--mount=…`.
    pub mounts: Vec<Mount>,
    /// `--network=…`.
    pub network: NetworkMode,
    /// `--security=insecure|sandbox`.
    pub security: Option<String>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The build's default network.
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `--mount` types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// Bind a path from the context or another stage/image.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A tmpfs.
    Tmpfs,
    /// A build secret file (or env var).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// `RUN --mount=type=…,…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The type.
    pub kind: MountType,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// `source=` / `src=`.
    pub source: Option<String>,
    /// `from=` (stage, image or cache source).
    pub from: Option<String>,
    /// `id=` (cache, secret, ssh).
    pub id: Option<String>,
    /// `sharing=shared|private|locked` (cache).
    pub sharing: Option<String>,
    /// Read-only (bind default; `rw` turns it off).
    pub readonly: bool,
    /// `required=` (secret, ssh).
    pub required: bool,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `size=` (tmpfs), as written.
    pub size: Option<String>,
    /// `env=` (secret as environment variable).
    pub env: Option<String>,
}

/// `ENV` / `LABEL` pairs, as written (quotes kept, unexpanded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValues {
    /// The pairs in order.
    pub pairs: Vec<KeyValue>,
    /// Whether the legacy `KEY value` form (no `=`) was used.
    pub legacy: bool,
}

/// One `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// One `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// Name.
    pub name: String,
    /// Default value (unexpanded), if any.
    pub default: Option<String>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [opts] CMD …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// Disable any inherited health check.
    None,
    /// Run a command.
    Cmd {
        /// The test command.
        command: CommandLine,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

impl Healthcheck {
    /// The image config's `Healthcheck.Test`: `["NONE"]`,
    /// `["CMD", exe, args…]` or `["CMD-SHELL", command]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".into()],
            Healthcheck::Cmd {
                command: CommandLine::Exec(v),
                ..
            } => std::iter::once("CMD".to_string())
                .chain(v.iter().cloned())
                .collect(),
            Healthcheck::Cmd {
                command: CommandLine::Shell(s),
                ..
            } => vec!["CMD-SHELL".into(), s.clone()],
        }
    }
}

/// A COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CopySource {
    /// A path or glob in the context (or stage/image), or an ADD URL.
    Path(String),
    /// A here-document used as a file.
    Inline(Heredoc),
}

/// `COPY` and `ADD` (ADD-only flags are rejected for COPY by the parser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Sources (globs, URLs for ADD, or here-documents).
    pub sources: Vec<CopySource>,
    /// Destination; a trailing `/` means a directory.
    pub dest: String,
    /// `--from=<stage|index|image>`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude=pattern` (repeatable).
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// `--checksum=` (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
    /// Whether sources used the JSON form.
    pub json: bool,
}

/// The working directory after `WORKDIR new` when it was `current`:
/// relative paths chain onto the current one, and the result is cleaned.
pub fn resolve_workdir(current: &str, new: &str) -> String {
    let joined = if new.starts_with('/') {
        new.to_string()
    } else {
        let base = if current.is_empty() { "/" } else { current };
        format!("{base}/{new}")
    };
    crate::ignore::clean(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_chains() {
        assert_eq!(resolve_workdir("", "app"), "/app");
        assert_eq!(resolve_workdir("/app", "src/../lib"), "/app/lib");
        assert_eq!(resolve_workdir("/app", "/srv/"), "/srv");
    }

    #[test]
    fn argv_and_health_test() {
        let sh = default_shell();
        assert_eq!(
            CommandLine::Shell("echo hi".into()).to_argv(&sh),
            vec!["/bin/sh", "-c", "echo hi"]
        );
        assert_eq!(CommandLine::Exec(vec!["a".into()]).to_argv(&sh), vec!["a"]);
        let h = Healthcheck::Cmd {
            command: CommandLine::Shell("curl x".into()),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        };
        assert_eq!(h.test(), vec!["CMD-SHELL", "curl x"]);
        assert_eq!(Healthcheck::None.test(), vec!["NONE"]);
    }
}
