//! The end-to-end harness: a [`Berth`] is one isolated berth installation (its own `--root` and
//! `--runroot` under a temp dir) driven through the real binary.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The berth binary under test: `$BERTH_BIN`, or the one cargo built beside this test.
pub fn berth_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/berth
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("berth");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p berth` first",
        bin.display()
    );
    bin
}

/// Whether the tests run as root (containers, overlay and cgroups need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// One berth installation in a temp dir.
pub struct Berth {
    dir: TempDir,
    bin: PathBuf,
}

/// The result of one berth invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
            }),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Default for Berth {
    fn default() -> Self {
        Self::new()
    }
}

impl Berth {
    pub fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temp dir");
        // Each installation gets its own default bridge, so parallel tests never share one
        // (and Drop can remove it).
        let root = dir.path().join("root");
        fs::create_dir_all(&root).expect("root dir");
        fs::write(
            root.join("daemon.json"),
            format!("{{\"bridge\": \"{}\"}}\n", unique_bridge_name()),
        )
        .expect("daemon.json");
        Berth {
            dir,
            bin: berth_bin(),
        }
    }

    /// The default bridge of this installation (from its daemon.json).
    pub fn bridge(&self) -> String {
        let text = fs::read_to_string(self.root().join("daemon.json")).expect("daemon.json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("daemon.json is JSON");
        doc["bridge"].as_str().expect("bridge name").to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A command with this installation's `--root` and `--runroot`.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.runroot());
        cmd.args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().expect("berth runs").into()
    }

    /// Runs with `input` on stdin.
    pub fn run_with_input<I, S>(&self, args: I, input: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("berth finishes");
        let _ = writer.join();
        out.into()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let shown = shown(args.clone());
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "berth {} failed ({}):\nstdout: {}\nstderr: {}",
            shown, run.code, run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs and asserts failure; returns the run for more checks.
    pub fn fails<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let shown = shown(args.clone());
        let run = self.run(args);
        assert_ne!(
            run.code, 0,
            "berth {} should have failed:\n{}",
            shown, run.stdout
        );
        run
    }

    /// A busybox rootfs tar (Debian's busybox-static) in this installation's temp dir.
    pub fn busybox_tar(&self) -> PathBuf {
        let tar = self.dir.path().join("busybox.tar");
        if !tar.exists() {
            write_busybox_tar(&tar, &[]);
        }
        tar
    }

    /// A fresh installation with the busybox fixture imported as `busybox`.
    pub fn with_busybox() -> Berth {
        let b = Berth::new();
        b.import_busybox("busybox");
        b
    }

    /// `inspect --type container NAME`, the one document.
    pub fn inspect_container(&self, name: &str) -> serde_json::Value {
        let out = self.ok(["inspect", "--type", "container", name]);
        let docs: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
        docs[0].clone()
    }

    /// Imports the busybox fixture as `name`; returns the image ID.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = self.busybox_tar();
        self.ok(["import".as_ref(), tar.as_os_str(), name.as_ref()])
            .trim()
            .to_string()
    }
}

/// A Linux interface name (at most 15 bytes) no other installation of this host uses.
fn unique_bridge_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "bt{:x}x{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The arguments as one line, for assertion messages.
fn shown<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let words: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    words.join(" ")
}

/// The entry names of a tar stream, as the `tar` crate reads them.
pub fn tar_names(tar: &[u8]) -> Vec<String> {
    tar::Archive::new(tar)
        .entries()
        .expect("a tar stream")
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// Writes a busybox rootfs tar to `path`; `extra` files (path, content) are added on top.
pub fn write_busybox_tar(path: &Path, extra: &[(&str, &str)]) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    let stage = tempfile::tempdir().expect("temp dir");
    let root = stage.path();
    for dir in ["bin", "etc", "tmp", "root", "www", "proc", "sys", "dev"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "ls", "echo", "cat", "true", "false", "sleep", "env", "id", "hostname", "ps", "wget",
        "httpd", "touch", "rm", "mkdir", "head", "wc", "grep", "sed", "stat", "date", "kill",
        "top", "mount", "ip", "ping", "nslookup", "find", "chmod", "chown", "dd", "yes",
        "readlink", "test", "printf", "tail", "du", "df", "uname", "whoami", "seq", "pwd", "nc",
        "ln", "cp", "mv",
    ] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    fs::write(root.join("www/index.html"), "<h1>hello</h1>\n").unwrap();
    for (name, content) in extra {
        let file = root.join(name.trim_start_matches('/'));
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, content).unwrap();
    }
    let status = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("--numeric-owner")
        .arg("-cf")
        .arg(path)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar failed");
}

impl Drop for Berth {
    /// Whatever a test did, nothing may stay mounted under its directory.
    fn drop(&mut self) {
        // `system reset` removes the containers first (killing them, their monitors, cgroups
        // and run state), then every network: bridges, nft tables, forwarding rules, DNS
        // servers and the namespace directory.
        if self.root().join("berth.db").exists() {
            let _ = self
                .command(["system", "reset", "--force"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let dir = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = mountinfo
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(dir.as_str()))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for point in points {
                let _ = Command::new("umount").arg("-l").arg(point).status();
            }
        }
    }
}
