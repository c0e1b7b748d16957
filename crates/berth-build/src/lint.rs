//! `berth build --check`: parse and check a Dockerfile without building.
//!
//! Unlike [`crate::parse`], which stops at the first error, [`check`]
//! parses every instruction on its own and reports all problems, sorted by
//! line. Errors make the check fail; warnings use BuildKit's check names
//! (`FromAsCasing`, `UndefinedArgInFrom`, `MaintainerDeprecated`, …) and
//! honour the `# check=skip=…;error=true` directive.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use regex::Regex;

use crate::args::{BuildArgs, PLATFORM_ARGS};
use crate::graph::{self, GraphError};
use crate::instructions::{CommandLine, FromSpec, Instruction, InstructionKind};
use crate::parser::instruction::{self as line_parser, Parsed};
use crate::shell::Lex;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The build would fail.
    Error,
    /// The build works but probably not as meant.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// Error or warning.
    pub severity: Severity,
    /// Check name, e.g. `FromAsCasing` (BuildKit's where one exists).
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "Dockerfile:{}: {sev}: {}: {}",
            self.line, self.rule, self.message
        )
    }
}

/// Whether any problem is an error.
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}

/// Check Dockerfile text with default build args.
pub fn check(text: &str) -> Vec<Problem> {
    check_with(text, &BuildArgs::default())
}

struct Linter {
    problems: Vec<Problem>,
}

impl Linter {
    fn error(&mut self, line: usize, rule: &'static str, message: String) {
        self.problems.push(Problem {
            line,
            severity: Severity::Error,
            rule,
            message,
        });
    }

    fn warn(&mut self, line: usize, rule: &'static str, message: String) {
        self.problems.push(Problem {
            line,
            severity: Severity::Warning,
            rule,
            message,
        });
    }
}

fn casing(word: &str) -> Option<bool> {
    if word == word.to_ascii_uppercase() {
        Some(true)
    } else if word == word.to_ascii_lowercase() {
        Some(false)
    } else {
        None
    }
}

fn error_rule(message: &str) -> &'static str {
    if message.starts_with("unknown instruction") {
        "UnknownInstruction"
    } else if message.starts_with("unknown flag") || message.contains("flag") {
        "InvalidFlag"
    } else if message.contains("JSON") {
        "InvalidJSONArray"
    } else {
        "InvalidInstruction"
    }
}

fn secrets_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)",
        )
        .expect("static regex")
    })
}

/// Check Dockerfile text, resolving ARGs with `build`.
pub fn check_with(text: &str, build: &BuildArgs) -> Vec<Problem> {
    let mut l = Linter {
        problems: Vec::new(),
    };
    let lines = match crate::parser::lexer_split(text) {
        Ok(lines) => lines,
        Err((line, _, message)) => {
            l.error(line, "InvalidSyntax", message);
            return l.problems;
        }
    };
    for w in &lines.warnings {
        l.warn(w.line, w.rule, w.message.clone());
    }
    let escape = lines.directives.escape;
    let lex = Lex::new(escape);

    // Parse each line on its own so every error is reported.
    let mut stages: Vec<(usize, FromSpec, Vec<Instruction>, String)> = Vec::new();
    let mut global: Vec<Instruction> = Vec::new();
    let mut keyword_cases: Vec<(usize, String)> = Vec::new();
    let mut parse_failed = false;
    for raw in &lines.lines {
        let keyword = raw.text.split_whitespace().next().unwrap_or("").to_string();
        match line_parser::parse_line(raw, escape) {
            Err(m) => {
                parse_failed = true;
                l.error(raw.start, error_rule(&m), m);
            }
            Ok(Parsed::From(f)) => {
                keyword_cases.push((raw.start, keyword.clone()));
                stages.push((raw.start, f, Vec::new(), raw.text.clone()));
            }
            Ok(Parsed::Instruction(i)) => {
                keyword_cases.push((raw.start, keyword));
                match stages.last_mut() {
                    Some(s) => s.2.push(i),
                    None if matches!(i.kind, InstructionKind::Arg(_)) => global.push(i),
                    None => {
                        parse_failed = true;
                        l.error(
                            raw.start,
                            "MissingFrom",
                            format!("{} must come after a FROM instruction", i.kind.name()),
                        );
                    }
                }
            }
        }
    }
    if lines.lines.is_empty() {
        l.error(1, "MissingFrom", "file with no instructions".into());
    } else if stages.is_empty() {
        l.error(
            1,
            "MissingFrom",
            "no FROM instruction: a Dockerfile needs at least one stage".into(),
        );
    }

    // ConsistentInstructionCasing: compare with the majority.
    let upper = keyword_cases
        .iter()
        .filter(|(_, k)| casing(k) == Some(true))
        .count();
    let majority_upper = upper * 2 >= keyword_cases.len();
    for (line, k) in &keyword_cases {
        if casing(k) != Some(majority_upper) {
            let want = if majority_upper {
                "uppercase"
            } else {
                "lowercase"
            };
            l.warn(
                *line,
                "ConsistentInstructionCasing",
                format!("Command '{k}' should match the case of the command majority ({want})"),
            );
        }
    }

    // Global ARGs.
    let mut global_names: BTreeSet<String> = PLATFORM_ARGS.iter().map(|s| s.to_string()).collect();
    for ins in &global {
        check_instruction(&mut l, ins);
        if let InstructionKind::Arg(decls) = &ins.kind {
            global_names.extend(decls.iter().map(|d| d.name.clone()));
        }
    }
    let declared_env: BTreeMap<String, String> = global_names
        .iter()
        .map(|n| (n.clone(), String::new()))
        .collect();

    let mut names: HashMap<String, usize> = HashMap::new();
    for (line, from, instructions, text) in &stages {
        check_from(&mut l, *line, from, text, &declared_env, &lex);
        if let Some(name) = &from.name {
            if let Some(prev) = names.insert(name.clone(), *line) {
                l.warn(
                    *line,
                    "DuplicateStageName",
                    format!("Duplicate stage name {name:?} (first defined on line {prev}), stage names should be unique"),
                );
            }
        }
        check_stage(&mut l, instructions, &names, &stages);
    }

    // Whole-file checks that need a complete parse.
    if !parse_failed {
        if let Ok(df) = crate::parser::parse(text) {
            match graph::plan(&df, None, build) {
                Ok(_) => {}
                Err(GraphError::BlankBase { image, line }) => l.warn(
                    line,
                    "InvalidDefaultArgInFrom",
                    format!(
                        "Default value for ARG {image} results in empty or invalid base image name"
                    ),
                ),
                Err(GraphError::UnknownTarget(_)) => {}
                Err(e @ GraphError::BadIndex { line, .. })
                | Err(e @ GraphError::Cycle { line, .. }) => {
                    let msg = e.to_string();
                    let msg = msg
                        .split_once(": ")
                        .map_or(msg.as_str(), |x| x.1)
                        .to_string();
                    l.error(line, "InvalidStageReference", msg);
                }
                Err(GraphError::Expand { line, source }) => {
                    l.error(line, "InvalidSubstitution", source.to_string())
                }
            }
            let unused = build.unused(&df);
            if !unused.is_empty() {
                l.warn(
                    1,
                    "UnusedBuildArg",
                    format!("build-args {unused:?} were not consumed"),
                );
            }
        }
    }

    apply_check_directive(&mut l.problems, lines.directives.check.as_deref());
    l.problems
        .sort_by(|a, b| a.line.cmp(&b.line).then(a.severity.cmp(&b.severity)));
    l.problems
}

fn check_from(
    l: &mut Linter,
    line: usize,
    from: &FromSpec,
    text: &str,
    declared: &BTreeMap<String, String>,
    lex: &Lex,
) {
    let keyword = text.split_whitespace().next().unwrap_or("");
    if let Some(as_kw) = &from.as_keyword {
        if casing(keyword).is_some() && casing(as_kw) != casing(keyword) {
            l.warn(
                line,
                "FromAsCasing",
                format!("'{as_kw}' and '{keyword}' keywords' casing do not match"),
            );
        }
        let written = text.split_whitespace().last().unwrap_or("");
        if written != written.to_ascii_lowercase() {
            l.warn(
                line,
                "StageNameCasing",
                format!("Stage name '{written}' should be lowercase"),
            );
        }
    }
    if let Some(name) = &from.name {
        if name == "scratch" || name == "context" {
            l.warn(
                line,
                "ReservedStageName",
                format!("Stage name should not use the same name as reserved stage {name:?}"),
            );
        }
    }
    for word in std::iter::once(&from.image).chain(from.platform.iter()) {
        if let Ok(p) = lex.process(word, declared) {
            for name in p.unmatched {
                l.warn(
                    line,
                    "UndefinedArgInFrom",
                    format!("FROM argument '{name}' is not declared"),
                );
            }
        }
    }
    if let Some(p) = &from.platform {
        if !p.contains('$') {
            l.warn(
                line,
                "FromPlatformFlagConstDisallowed",
                format!("FROM --platform flag should not use constant value {p:?}"),
            );
        } else if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
            l.warn(
                line,
                "RedundantTargetPlatform",
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior".into(),
            );
        }
    }
}

fn check_stage(
    l: &mut Linter,
    instructions: &[Instruction],
    names: &HashMap<String, usize>,
    stages: &[(usize, FromSpec, Vec<Instruction>, String)],
) {
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let mut workdir_seen = false;
    for ins in instructions {
        check_instruction(l, ins);
        let name = ins.kind.name();
        if matches!(name, "CMD" | "ENTRYPOINT" | "HEALTHCHECK") {
            if let Some(prev) = seen.insert(name, ins.line) {
                l.warn(
                    prev,
                    "MultipleInstructionsDisallowed",
                    format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"),
                );
            }
        }
        if let InstructionKind::Workdir(w) = &ins.kind {
            if !workdir_seen && !w.starts_with('/') && !w.starts_with('$') {
                l.warn(
                    ins.line,
                    "WorkdirRelativePath",
                    format!("Relative workdir {w:?} can have unexpected results if the base image changes"),
                );
            }
            workdir_seen = true;
        }
        let from = match &ins.kind {
            InstructionKind::Copy(c) => c.from.clone(),
            _ => None,
        };
        if let Some(f) = from {
            let plain = !f.contains(['/', ':', '@', '.', '$']) && f.parse::<usize>().is_err();
            if plain && !names.contains_key(&f.to_ascii_lowercase()) {
                let later = stages
                    .iter()
                    .any(|s| s.1.name.as_deref() == Some(f.to_ascii_lowercase().as_str()));
                if !later {
                    l.warn(
                        ins.line,
                        "CopyFromUnknownStage",
                        format!(
                            "COPY --from={f}: no stage named {f:?}; it will be pulled as an image"
                        ),
                    );
                }
            }
        }
    }
}

fn check_instruction(l: &mut Linter, ins: &Instruction) {
    let line = ins.line;
    let args_text = ins
        .original
        .trim_start()
        .split_once(char::is_whitespace)
        .map_or("", |x| x.1)
        .trim();
    match &ins.kind {
        InstructionKind::Maintainer(_) => l.warn(
            line,
            "MaintainerDeprecated",
            "Maintainer instruction is deprecated in favor of using label".into(),
        ),
        InstructionKind::Cmd(CommandLine::Shell(s))
        | InstructionKind::Entrypoint(CommandLine::Shell(s)) => {
            if s.trim_start().starts_with('[') {
                l.warn(
                    line,
                    "InvalidJSONForm",
                    format!("{} arguments start with '[' but are not a valid JSON array; they will run as a shell command", ins.kind.name()),
                );
            } else {
                l.warn(
                    line,
                    "JSONArgsRecommended",
                    format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", ins.kind.name()),
                );
            }
        }
        InstructionKind::Run(r) => {
            if let CommandLine::Shell(s) = &r.command {
                if s.trim_start().starts_with('[') {
                    l.warn(
                        line,
                        "InvalidJSONForm",
                        "RUN arguments start with '[' but are not a valid JSON array; they will run as a shell command".into(),
                    );
                }
            }
        }
        InstructionKind::Copy(c) | InstructionKind::Add(c)
            if !c.json && args_text.contains('[') =>
        {
            let after_flags = args_text
                .split_whitespace()
                .find(|w| !w.starts_with("--"))
                .unwrap_or("");
            if after_flags.starts_with('[') {
                l.warn(
                        line,
                        "InvalidJSONForm",
                        format!("{} arguments start with '[' but are not a valid JSON array; they are read as paths", ins.kind.name()),
                    );
            }
        }
        InstructionKind::Env(kv) | InstructionKind::Label(kv) => {
            if kv.legacy {
                let n = ins.kind.name();
                l.warn(
                    line,
                    "LegacyKeyValueFormat",
                    format!("\"{n} key=value\" should be used instead of legacy \"{n} key value\" format"),
                );
            }
            if matches!(ins.kind, InstructionKind::Env(_)) {
                for p in &kv.pairs {
                    if secrets_re().is_match(&p.key) {
                        l.warn(
                            line,
                            "SecretsUsedInArgOrEnv",
                            format!(
                                "Do not use ARG or ENV instructions for sensitive data (ENV {:?})",
                                p.key
                            ),
                        );
                    }
                }
            }
        }
        InstructionKind::Arg(decls) => {
            for d in decls {
                if secrets_re().is_match(&d.name) {
                    l.warn(
                        line,
                        "SecretsUsedInArgOrEnv",
                        format!(
                            "Do not use ARG or ENV instructions for sensitive data (ARG {:?})",
                            d.name
                        ),
                    );
                }
            }
        }
        InstructionKind::Expose(ports) => {
            for p in ports {
                if p.contains(':') {
                    l.warn(
                        line,
                        "ExposeInvalidFormat",
                        format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{p}'"),
                    );
                }
                if let Some((_, proto)) = p.split_once('/') {
                    if proto != proto.to_ascii_lowercase() {
                        l.warn(
                            line,
                            "ExposeProtoCasing",
                            format!(
                                "Defined protocol '{p}' in EXPOSE instruction should be lowercase"
                            ),
                        );
                    }
                }
            }
        }
        InstructionKind::Onbuild(inner) => check_instruction(l, inner),
        _ => {}
    }
}

/// Apply `# check=skip=A,B;error=true`.
fn apply_check_directive(problems: &mut Vec<Problem>, directive: Option<&str>) {
    let Some(d) = directive else { return };
    let mut skip: Vec<String> = Vec::new();
    let mut error = false;
    for part in d.split(';') {
        match part.trim().split_once('=') {
            Some(("skip", v)) => skip.extend(v.split(',').map(|s| s.trim().to_string())),
            Some(("error", v)) => error = v.trim().eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    let skip_all = skip.iter().any(|s| s.eq_ignore_ascii_case("all"));
    problems.retain(|p| {
        p.severity == Severity::Error || !(skip_all || skip.iter().any(|s| s == p.rule))
    });
    if error {
        for p in problems.iter_mut() {
            p.severity = Severity::Error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(usize, &'static str, Severity)> {
        check(text)
            .into_iter()
            .map(|p| (p.line, p.rule, p.severity))
            .collect()
    }

    #[test]
    fn clean_file_has_no_problems() {
        let text = "# syntax=docker/dockerfile:1\nARG BASE=alpine\nFROM $BASE AS build\nWORKDIR /src\nCOPY . .\nRUN make\nFROM scratch\nCOPY --from=build /out /\nCMD [\"/app\"]\n";
        assert_eq!(check(text), vec![]);
    }

    #[test]
    fn reports_all_errors_with_lines() {
        let p = check("FROM a\nRUNN x\nCOPY --bogus=1 a b\nCMD [1]\nRUN ok\n");
        let got: Vec<_> = p.iter().map(|p| (p.line, p.rule)).collect();
        assert_eq!(
            got,
            vec![
                (2, "UnknownInstruction"),
                (3, "InvalidFlag"),
                (4, "InvalidJSONArray")
            ]
        );
        assert!(has_errors(&p));
        assert!(p[0]
            .to_string()
            .starts_with("Dockerfile:2: error: UnknownInstruction: unknown instruction: RUNN"));
        assert_eq!(rules("RUN x\n")[0].1, "MissingFrom");
        assert_eq!(rules("ARG X\n")[0].1, "MissingFrom");
    }

    #[test]
    fn buildkit_warnings() {
        let text = "ARG DECLARED\nFROM $DECLARED\nFROM image:$UNDECLARED AS Build\nfrom x as y\nFROM y as z\nMAINTAINER me\nENV PATH /bin\nARG API_TOKEN\nCMD run\nCMD [\"run\"]\nWORKDIR rel\nEXPOSE 80:80 53/UDP\nRUN a \\\n\n  b\nCOPY --from=biuld /a /b\nCOPY --from=0 /a /b\nCOPY [not json] /x\n";
        let r = rules(text);
        let has = |line: usize, rule: &str| r.iter().any(|(l, ru, _)| *l == line && *ru == rule);
        assert!(has(3, "UndefinedArgInFrom"), "{r:?}");
        assert!(!has(2, "UndefinedArgInFrom"));
        assert!(has(3, "StageNameCasing"));
        assert!(has(4, "ConsistentInstructionCasing"));
        assert!(has(5, "FromAsCasing"));
        assert!(has(6, "MaintainerDeprecated"));
        assert!(has(7, "LegacyKeyValueFormat"));
        assert!(has(8, "SecretsUsedInArgOrEnv"));
        assert!(has(9, "JSONArgsRecommended"));
        assert!(has(9, "MultipleInstructionsDisallowed"));
        assert!(has(11, "WorkdirRelativePath"));
        assert!(has(12, "ExposeInvalidFormat"));
        assert!(has(12, "ExposeProtoCasing"));
        assert!(has(15, "NoEmptyContinuation"));
        assert!(has(16, "CopyFromUnknownStage"));
        assert!(has(18, "InvalidJSONForm"));
        assert!(r.iter().all(|(_, _, s)| *s == Severity::Warning), "{r:?}");
    }

    #[test]
    fn stage_reference_errors() {
        let r = rules("FROM a\nCOPY --from=3 /x /y\n");
        assert_eq!(r, vec![(2, "InvalidStageReference", Severity::Error)]);
        let r = rules("FROM a AS x\nCOPY --from=x / /\n");
        assert_eq!(r[0].1, "InvalidStageReference");
    }

    #[test]
    fn check_directive() {
        let text = "# check=skip=MaintainerDeprecated\nFROM a\nMAINTAINER me\nCMD x\n";
        assert_eq!(
            rules(text),
            vec![(4, "JSONArgsRecommended", Severity::Warning)]
        );
        let text = "# check=skip=all;error=true\nFROM a\nMAINTAINER me\n";
        assert_eq!(rules(text), vec![]);
        let text = "# check=error=true\nFROM a\nMAINTAINER me\n";
        assert_eq!(
            rules(text),
            vec![(3, "MaintainerDeprecated", Severity::Error)]
        );
    }
}
