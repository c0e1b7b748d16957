//! `build` and `builder prune`: flags into [`berth_engine::build::BuildOptions`], then the
//! engine does the work and prints BuildKit-style progress on stderr.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use berth_engine::build::{
    self, BuildOptions, ContextSource, DockerfileSource, Progress, ProgressMode, Severity,
};
use berth_engine::Engine;

use super::Failure;
use crate::cli::{BuildArgs, BuilderPruneArgs};
use crate::output::units::human_size;

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("failed to read the build input from stdin")?;
    Ok(buf)
}

fn options(a: &BuildArgs) -> Result<BuildOptions> {
    let mut dockerfile = None;
    let context = if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let bytes = read_stdin()?;
        if build::context::looks_like_archive(&bytes) {
            ContextSource::Tar(bytes)
        } else {
            dockerfile = Some(DockerfileSource::Text(
                String::from_utf8(bytes).context("the Dockerfile on stdin is not UTF-8")?,
            ));
            ContextSource::Empty
        }
    } else {
        let path = PathBuf::from(&a.context);
        let meta = std::fs::metadata(&path).with_context(|| {
            format!("unable to prepare context: path {:?} not found", a.context)
        })?;
        if meta.is_dir() {
            ContextSource::Dir(path)
        } else {
            ContextSource::Tar(
                std::fs::read(&path).with_context(|| format!("failed to read {}", a.context))?,
            )
        }
    };
    match a.file.as_deref() {
        None => {}
        Some("-") => {
            let text =
                String::from_utf8(read_stdin()?).context("the Dockerfile on stdin is not UTF-8")?;
            dockerfile = Some(DockerfileSource::Text(text));
        }
        Some(f) => {
            let p = PathBuf::from(f);
            let p = match &context {
                ContextSource::Dir(_) if p.is_relative() => std::env::current_dir()?.join(p),
                _ => p,
            };
            dockerfile = Some(DockerfileSource::Path(p));
        }
    }
    let mut build_args = BTreeMap::new();
    for kv in &a.build_arg {
        match kv.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for kv in &a.label {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut secrets = BTreeMap::new();
    for s in &a.secret {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => bail!("invalid secret {s:?}: expected id=…,src=…"),
            }
        }
        let id = id.with_context(|| format!("invalid secret {s:?}: missing id"))?;
        let src = src.with_context(|| format!("invalid secret {s:?}: missing src"))?;
        let src = std::path::absolute(&src)?;
        if !src.is_file() {
            bail!(
                "failed to stat {}: no such file or directory",
                src.display()
            );
        }
        secrets.insert(id, src);
    }
    if !matches!(a.network.as_str(), "default" | "host" | "none") {
        bail!("network mode {:?} not supported by buildkit", a.network);
    }
    if !matches!(
        a.progress.as_str(),
        "auto" | "plain" | "tty" | "quiet" | "rawjson"
    ) {
        bail!("invalid progress mode {:?}", a.progress);
    }
    let source_date_epoch = build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .context("SOURCE_DATE_EPOCH must be a number")
        })
        .transpose()?;
    Ok(BuildOptions {
        context,
        dockerfile,
        tags: a.tag.clone(),
        build_args,
        target: a.target.clone(),
        labels,
        platform: a.platform.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        network: a.network.clone(),
        secrets,
        source_date_epoch,
    })
}

pub fn build(engine: &Engine, a: BuildArgs) -> Result<ExitCode> {
    let opts = options(&a)?;
    if a.check {
        let problems = build::check(engine, &opts)?;
        for p in &problems {
            eprintln!("{p}");
        }
        if problems.iter().any(|p| p.severity == Severity::Error) {
            return Ok(ExitCode::from(1));
        }
        if problems.is_empty() {
            eprintln!("Check complete, no warnings found.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mode = if a.quiet || a.progress == "quiet" {
        ProgressMode::Quiet
    } else {
        ProgressMode::Plain
    };
    let mut progress = Progress::new(mode);
    let out = build::build(engine, &opts, &mut progress).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    if let Some(path) = &a.iidfile {
        std::fs::write(path, out.image_id.to_string())
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if a.quiet {
        println!("{}", out.image_id);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prune(engine: &Engine, a: BuilderPruneArgs) -> Result<ExitCode> {
    let _ = a.force;
    let freed = build::prune(engine, a.all)?;
    println!("Total:\t{}", human_size(freed));
    Ok(ExitCode::SUCCESS)
}
