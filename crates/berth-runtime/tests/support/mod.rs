//! Test support: a tiny single-threaded test runner and a busybox bundle fixture.
//!
//! The runner replaces libtest (`harness = false`) because the runtime forks, and refuses to
//! fork a multi-threaded process; libtest runs every test on a thread of its own.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use berth_runtime::oci_spec::runtime::{Spec, UserBuilder};
use berth_runtime::{spec_defaults, wait, ExitStatus, Runtime, Stdio};

/// One test: its name, body, and whether it is `#[ignore]`d (run with `--ignored`).
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
    pub ignored: bool,
}

/// `test!(f)`: the test named after function `f`.
macro_rules! test {
    ($f:ident) => {
        support::Test {
            name: stringify!($f),
            run: $f,
            ignored: false,
        }
    };
}

/// `ignored!(f)`: like `test!`, but only run with `--ignored` (like `#[ignore]`).
macro_rules! ignored {
    ($f:ident) => {
        support::Test {
            name: stringify!($f),
            run: $f,
            ignored: true,
        }
    };
}

/// The host's cgroup parent of every test container.
pub const CGROUP_PARENT: &str = "berth-test";

/// Runs `tests` like libtest would, on the main thread: `[FILTER] [--ignored|--include-ignored]
/// [--list]`; other libtest flags are accepted and ignored. Exits non-zero on failure.
pub fn main(tests: &[Test]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ignored_only = args.iter().any(|a| a == "--ignored");
    let include_ignored = args.iter().any(|a| a == "--include-ignored");
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|t| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        t.name == f.as_str()
                    } else {
                        t.name.contains(f.as_str())
                    }
                })
        })
        .collect();
    if args.iter().any(|a| a == "--list") {
        for test in &selected {
            println!("{}: test", test.name);
        }
        return;
    }
    if !rustix::process::geteuid().is_root() {
        println!(
            "skipping {} container tests: they need root",
            selected.len()
        );
        return;
    }
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed, mut ignored) = (0, Vec::new(), 0);
    for test in selected {
        if test.ignored && !(ignored_only || include_ignored) || !test.ignored && ignored_only {
            if test.ignored {
                println!("test {} ... ignored", test.name);
                ignored += 1;
            }
            continue;
        }
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(test.run));
        let elapsed = started.elapsed();
        match outcome {
            Ok(()) => {
                println!("test {} ... ok ({:.0?})", test.name, elapsed);
                passed += 1;
            }
            Err(_) => {
                println!("test {} ... FAILED", test.name);
                failed.push(test.name);
            }
        }
    }
    remove_cgroup_parents();
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {ignored} ignored",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(101);
    }
}

/// Removes the `berth-test` parent cgroup in every hierarchy (the runtime removes only each
/// container's own directory).
fn remove_cgroup_parents() {
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for entry in entries.flatten() {
            let _ = std::fs::remove_dir(entry.path().join(CGROUP_PARENT));
        }
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(CGROUP_PARENT));
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A bundle with a busybox rootfs in a temporary directory, a runtime with its own state root,
/// and a unique container id and cgroup. Dropping it deletes the container (processes, cgroup,
/// state) and the directory, whatever happened.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub runtime: Runtime,
    pub id: String,
    /// Pids this fixture created and has not reaped yet.
    pub children: Vec<i32>,
    /// A state root on tmpfs, see [`Fixture::state_on_tmpfs`].
    pub tmpfs_state: Option<tempfile::TempDir>,
}

/// A finished container's output.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .unwrap();
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        make_busybox_rootfs(&rootfs);
        let runtime = Runtime::new(dir.path().join("state"));
        let id = format!(
            "t{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Fixture {
            dir,
            bundle,
            rootfs,
            runtime,
            id,
            children: Vec::new(),
            tmpfs_state: None,
        }
    }

    /// Keeps the runtime state on tmpfs (`/dev/shm`), as `/run` is on a systemd host; on this
    /// machine `/run` and `/tmp` are ext4, where each metadata update can wait milliseconds
    /// for the journal under load.
    pub fn state_on_tmpfs(mut self) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("berth-rt-state-")
            .tempdir_in("/dev/shm")
            .unwrap();
        self.runtime = Runtime::new(dir.path());
        self.tmpfs_state = Some(dir);
        self
    }

    /// Docker's default spec running `args`, hostname `berth-test`, in the test cgroup.
    pub fn spec(&self, args: &[&str]) -> Spec {
        let mut spec = spec_defaults::default_spec();
        spec.set_hostname(Some("berth-test".into()));
        let process = spec.process_mut().as_mut().unwrap();
        process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
        let linux = spec.linux_mut().as_mut().unwrap();
        linux.set_cgroups_path(Some(PathBuf::from(format!("/{CGROUP_PARENT}/{}", self.id))));
        spec
    }

    /// The host cgroup directory of this container in hierarchy `controller`.
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(CGROUP_PARENT)
            .join(&self.id)
    }

    /// Creates, starts, waits for and deletes the container; stdout and stderr are captured in
    /// files (no pipe can fill up), stdin is `stdin` or /dev/null.
    pub fn run(&mut self, spec: &Spec) -> Output {
        self.run_with_stdin(spec, None)
    }

    pub fn run_with_stdin(&mut self, spec: &Spec, stdin: Option<OwnedFd>) -> Output {
        let out_path = self.dir.path().join("stdout");
        let err_path = self.dir.path().join("stderr");
        let stdio = Stdio {
            stdin,
            stdout: Some(File::create(&out_path).unwrap().into()),
            stderr: Some(File::create(&err_path).unwrap().into()),
        };
        let created = self.create(spec, stdio);
        created.start().expect("start");
        let status = self.wait(created.pid);
        self.runtime.delete(&self.id).expect("delete");
        Output {
            status,
            stdout: std::fs::read_to_string(&out_path).unwrap(),
            stderr: std::fs::read_to_string(&err_path).unwrap(),
        }
    }

    /// Creates the container (remembering its pid for cleanup).
    pub fn create(&mut self, spec: &Spec, stdio: Stdio) -> berth_runtime::Created {
        let created = self
            .runtime
            .create(&self.id, &self.bundle, spec, stdio)
            .unwrap_or_else(|e| panic!("create failed: {}", error_chain(&e)));
        self.children.push(created.pid);
        created
    }

    /// Reaps a child created through this fixture.
    pub fn wait(&mut self, pid: i32) -> ExitStatus {
        let status = wait(pid).expect("wait");
        self.children.retain(|p| *p != pid);
        status
    }

    /// Marks `pid` as reaped by someone else (start() reaps on failure).
    pub fn forget(&mut self, pid: i32) {
        self.children.retain(|p| *p != pid);
    }

    /// Overwrites the bundle's config.json (exec reads the seccomp profile from it).
    pub fn write_config(&self, spec: &Spec) {
        spec.save(self.bundle.join("config.json")).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Every container this fixture's runtime still knows (the bench makes several).
        if let Ok(entries) = std::fs::read_dir(self.runtime.state_root()) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if let Err(e) = self.runtime.delete(&id) {
                    eprintln!("cleanup: {e}");
                }
            }
        }
        for pid in std::mem::take(&mut self.children) {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            let _ = wait(pid);
        }
        for controller in [
            "memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "cpuset", "systemd",
            "unified",
        ] {
            let _ = std::fs::remove_dir(self.cgroup_dir(controller));
        }
    }
}

/// A rootfs with busybox and links for the applets the tests use.
pub fn make_busybox_rootfs(rootfs: &Path) {
    for dir in [
        "bin",
        "proc",
        "sys",
        "dev",
        "etc",
        "tmp",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    let busybox = rootfs.join("bin/busybox");
    if std::fs::hard_link("/bin/busybox", &busybox).is_err() {
        std::fs::copy("/bin/busybox", &busybox).unwrap();
    }
    for applet in [
        "sh", "cat", "ls", "echo", "id", "hostname", "grep", "true", "false", "sleep", "stat",
        "touch", "readlink", "test", "wc", "env", "pwd", "tty", "stty", "ps", "mount", "head",
        "kill", "sed", "tr",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
}

/// Reads everything from a pty master until the slave side is closed (EIO).
pub fn read_pty(master: OwnedFd) -> String {
    let mut file = File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading the pty: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `err` and its sources, `: `-joined.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// A `/proc/<pid>/status` field's value.
pub fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|rest| rest.strip_prefix(':'))
        })
        .unwrap_or_else(|| panic!("no {field} in:\n{status}"))
        .trim()
}

/// Sets `uid`/`gid`/additional gids on a spec's process.
pub fn set_user(spec: &mut Spec, uid: u32, gid: u32, additional: Vec<u32>) {
    let user = UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .additional_gids(additional)
        .build()
        .unwrap();
    spec.process_mut().as_mut().unwrap().set_user(user);
}

/// True if any line of the host's mountinfo mentions `path`.
pub fn host_mounts_mention(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = path.to_str().unwrap();
    mountinfo.lines().any(|l| l.contains(needle))
}
