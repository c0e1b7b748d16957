//! ARG scoping, as Docker defines it.
//!
//! - ARGs before the first FROM are *global*: usable in FROM lines only.
//! - Inside a stage an ARG is visible only after it is declared there; a
//!   bare `ARG NAME` re-declares a global one and inherits its value.
//! - `--build-arg NAME=value` overrides a declared ARG's default.
//! - The platform ARGs (`TARGETPLATFORM`, `BUILDARCH`, …) are set
//!   automatically: in the global scope always, in a stage once declared.
//! - The proxy ARGs (`HTTP_PROXY`, …) reach RUN without a declaration and
//!   are kept out of cache keys and history, as in Docker.
//! - ENV beats ARG when both define a name.

use std::collections::{BTreeMap, BTreeSet};

use crate::instructions::{ArgDecl, Dockerfile, InstructionKind};
use crate::shell::{Lex, ShellError};

/// The automatic platform ARGs.
pub const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// The predefined proxy ARGs.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `name` is one of the predefined proxy ARGs.
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// An OS/architecture/variant triple, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub arch: String,
    /// e.g. `v7`, or empty.
    pub variant: String,
}

impl Platform {
    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|s| !s.is_empty())?.to_ascii_lowercase();
        let arch = it.next().filter(|s| !s.is_empty())?.to_ascii_lowercase();
        let variant = it.next().unwrap_or("").to_ascii_lowercase();
        if it.next().is_some() {
            return None;
        }
        Some(Platform { os, arch, variant })
    }

    /// The platform this process runs on, in OCI spelling.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "x86" => ("386", ""),
            "powerpc64" => ("ppc64le", ""),
            "s390x" => ("s390x", ""),
            "riscv64" => ("riscv64", ""),
            other => (other, ""),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            arch: arch.to_string(),
            variant: variant.to_string(),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The inputs of ARG resolution: `--build-arg`s and platforms.
#[derive(Debug, Clone)]
pub struct BuildArgs {
    /// `--build-arg` values.
    pub overrides: BTreeMap<String, String>,
    /// `--platform` (or the host).
    pub target: Platform,
    /// The builder's platform.
    pub build: Platform,
}

impl Default for BuildArgs {
    fn default() -> Self {
        BuildArgs::new(BTreeMap::new())
    }
}

impl BuildArgs {
    /// Build args for the host platform.
    pub fn new(overrides: BTreeMap<String, String>) -> Self {
        BuildArgs {
            overrides,
            target: Platform::host(),
            build: Platform::host(),
        }
    }

    /// The value of an automatic platform ARG.
    pub fn platform_value(&self, name: &str) -> Option<String> {
        Some(match name {
            "TARGETPLATFORM" => self.target.to_string(),
            "TARGETOS" => self.target.os.clone(),
            "TARGETARCH" => self.target.arch.clone(),
            "TARGETVARIANT" => self.target.variant.clone(),
            "BUILDPLATFORM" => self.build.to_string(),
            "BUILDOS" => self.build.os.clone(),
            "BUILDARCH" => self.build.arch.clone(),
            "BUILDVARIANT" => self.build.variant.clone(),
            _ => return None,
        })
    }

    /// `--build-arg`s that no ARG in the file declares (Docker warns about
    /// these); proxy ARGs are always consumed.
    pub fn unused(&self, df: &Dockerfile) -> Vec<String> {
        let mut declared = BTreeSet::new();
        let all = df
            .global_args
            .iter()
            .chain(df.stages.iter().flat_map(|s| s.instructions.iter()));
        for ins in all {
            if let InstructionKind::Arg(decls) = &ins.kind {
                declared.extend(decls.iter().map(|d| d.name.clone()));
            }
        }
        self.overrides
            .keys()
            .filter(|k| !declared.contains(*k) && !is_proxy_arg(k))
            .cloned()
            .collect()
    }
}

/// The values visible in FROM lines.
#[derive(Debug, Clone, Default)]
pub struct GlobalScope {
    values: BTreeMap<String, String>,
    declared: BTreeMap<String, Option<String>>,
}

impl GlobalScope {
    /// Resolve the global ARGs of `df`.
    pub fn new(df: &Dockerfile, build: &BuildArgs) -> Result<GlobalScope, ShellError> {
        let lex = Lex::new(df.directives.escape);
        let mut scope = GlobalScope::default();
        for name in PLATFORM_ARGS {
            if let Some(v) = build.platform_value(name) {
                scope.values.insert(name.to_string(), v);
            }
        }
        for ins in &df.global_args {
            let InstructionKind::Arg(decls) = &ins.kind else {
                continue;
            };
            for d in decls {
                let value = match (build.overrides.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(lex.process_word(def, &scope.values)?),
                    (None, None) => None,
                };
                if let Some(v) = &value {
                    scope.values.insert(d.name.clone(), v.clone());
                }
                scope.declared.insert(d.name.clone(), value);
            }
        }
        Ok(scope)
    }

    /// The map used to expand FROM lines.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// Whether a global ARG of this name was declared.
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains_key(name)
    }

    /// The value a stage inherits with a bare `ARG name`.
    pub fn inherited(&self, name: &str) -> Option<&str> {
        self.declared.get(name).and_then(|v| v.as_deref())
    }
}

/// The variables of one stage as its instructions are dispatched.
#[derive(Debug, Clone, Default)]
pub struct StageScope {
    args: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    proxies: BTreeMap<String, String>,
}

impl StageScope {
    /// A stage scope starting from the base image's `Env` (`KEY=value`).
    pub fn new(image_env: &[String], build: &BuildArgs) -> StageScope {
        let mut s = StageScope::default();
        for e in image_env {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            s.set_env(k, v);
        }
        for (k, v) in &build.overrides {
            if is_proxy_arg(k) {
                s.proxies.insert(k.clone(), v.clone());
            }
        }
        s
    }

    /// Declare an `ARG` in this stage.
    pub fn declare(
        &mut self,
        decl: &ArgDecl,
        global: &GlobalScope,
        build: &BuildArgs,
        lex: &Lex,
    ) -> Result<(), ShellError> {
        let value = if let Some(v) = build.overrides.get(&decl.name) {
            Some(v.clone())
        } else if let Some(def) = &decl.default {
            Some(lex.process_word(def, &self.expansion_env())?)
        } else if let Some(v) = global.inherited(&decl.name) {
            Some(v.to_string())
        } else {
            build.platform_value(&decl.name)
        };
        match value {
            Some(v) => {
                self.args.insert(decl.name.clone(), v);
            }
            None => {
                self.args.remove(&decl.name);
            }
        }
        Ok(())
    }

    /// Set an environment variable (ENV).
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    /// The environment in order (`KEY=value`), as the image config keeps it.
    pub fn env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The map for word expansion: ARGs overlaid by ENV.
    pub fn expansion_env(&self) -> BTreeMap<String, String> {
        let mut m = self.args.clone();
        for (k, v) in &self.env {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    /// The environment of a RUN step: ENV, plus ARGs and proxy ARGs that ENV
    /// does not define.
    pub fn run_env(&self) -> Vec<String> {
        let mut out = self.env();
        let defined = |k: &str| self.env.iter().any(|(e, _)| e == k);
        for (k, v) in self.args.iter().chain(self.proxies.iter()) {
            if !defined(k) {
                out.push(format!("{k}={v}"));
            }
        }
        out
    }

    /// The ARGs in scope that belong in a cache key (proxy ARGs excluded).
    pub fn args_in_scope(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .filter(|(k, _)| !is_proxy_arg(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn build(pairs: &[(&str, &str)]) -> BuildArgs {
        let mut b = BuildArgs::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        b.target = Platform::parse("linux/arm64/v8").unwrap();
        b.build = Platform::parse("linux/amd64").unwrap();
        b
    }

    fn decls(df: &crate::Dockerfile, stage: usize) -> Vec<ArgDecl> {
        df.stages[stage]
            .instructions
            .iter()
            .filter_map(|i| match &i.kind {
                InstructionKind::Arg(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn global_args_and_overrides() {
        let df = parse("ARG V=1.0\nARG IMG=alpine:$V\nARG NOVAL\nFROM $IMG\n").unwrap();
        let g = GlobalScope::new(&df, &build(&[])).unwrap();
        assert_eq!(g.values()["IMG"], "alpine:1.0");
        assert_eq!(g.values()["TARGETARCH"], "arm64");
        assert_eq!(g.values()["TARGETPLATFORM"], "linux/arm64/v8");
        assert!(g.is_declared("NOVAL") && !g.values().contains_key("NOVAL"));
        let g = GlobalScope::new(&df, &build(&[("V", "2.0")])).unwrap();
        assert_eq!(g.values()["IMG"], "alpine:2.0");
    }

    #[test]
    fn stage_args_need_redeclaring() {
        let df =
            parse("ARG V=1\nFROM a\nARG V\nARG LOCAL=x$V\nARG TARGETOS\nARG UNSET\nENV V=env\n")
                .unwrap();
        let b = build(&[("HTTP_PROXY", "http://p"), ("UNSET", "given")]);
        let g = GlobalScope::new(&df, &b).unwrap();
        let mut s = StageScope::new(&["PATH=/bin".into()], &b);
        let lex = Lex::default();
        assert!(!s.expansion_env().contains_key("V"));
        for d in decls(&df, 0) {
            s.declare(&d, &g, &b, &lex).unwrap();
        }
        let env = s.expansion_env();
        assert_eq!(env["V"], "1");
        assert_eq!(env["LOCAL"], "x1");
        assert_eq!(env["TARGETOS"], "linux");
        assert_eq!(env["UNSET"], "given");
        assert!(!env.contains_key("TARGETARCH"));
        s.set_env("V", "env");
        assert_eq!(s.expansion_env()["V"], "env");
        let run = s.run_env();
        assert!(run.contains(&"V=env".to_string()));
        assert!(!run.contains(&"V=1".to_string()));
        assert!(run.contains(&"HTTP_PROXY=http://p".to_string()));
        assert!(!s.args_in_scope().contains_key("HTTP_PROXY"));
        assert_eq!(b.unused(&df), Vec::<String>::new());
        assert_eq!(
            build(&[("NOPE", "1")]).unused(&df),
            vec!["NOPE".to_string()]
        );
    }
}
