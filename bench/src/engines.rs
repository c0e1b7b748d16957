//! The engines under comparison and how to invoke each.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// One engine: how to build its command line.
pub struct Engine {
    pub name: &'static str,
    program: PathBuf,
    prefix: Vec<String>,
    /// berth runs on a throwaway store so runs don't see each other's leftovers.
    _store: Option<TempDir>,
}

impl Engine {
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `args` and fails loudly if the engine does.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.command().args(args).stdout(Stdio::piped()).output()?;
        if !out.status.success() {
            anyhow::bail!(
                "{} {} failed: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn is_berth(&self) -> bool {
        self.name == "berth"
    }
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// berth always; Docker and podman when their anchors are running.
pub fn detect(berth: &Path, anchors: &Path, berth_only: bool) -> anyhow::Result<Vec<Engine>> {
    anyhow::ensure!(
        berth.exists(),
        "{} missing: cargo build --release first",
        berth.display()
    );
    let store = tempfile::Builder::new().prefix("berth-bench-").tempdir()?;
    let mut engines = vec![Engine {
        name: "berth",
        program: berth.to_path_buf(),
        prefix: vec![
            "--root".into(),
            store.path().join("root").display().to_string(),
            "--runroot".into(),
            store.path().join("run").display().to_string(),
        ],
        _store: Some(store),
    }];
    if berth_only {
        return Ok(engines);
    }
    let socket = anchors.join("docker.sock");
    let host = format!("unix://{}", socket.display());
    if socket.exists() && works("/usr/bin/docker", &["-H", &host, "version"]) {
        engines.push(Engine {
            name: "docker",
            program: "/usr/bin/docker".into(),
            prefix: vec!["-H".into(), host],
            _store: None,
        });
    } else {
        eprintln!("docker: not running (../shared/anchors/start.sh docker), skipped");
    }
    if works("podman", &["version"]) {
        engines.push(Engine {
            name: "podman",
            program: "podman".into(),
            prefix: vec![],
            _store: None,
        });
    } else {
        eprintln!("podman: not installed (../shared/anchors/start.sh podman), skipped");
    }
    Ok(engines)
}
