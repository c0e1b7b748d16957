//! The container lifecycle end to end: stop/kill/restart, pause, restart policies, OOM kills,
//! wait, logs -f, the monitor dying, concurrency, and that nothing leaks after `rm -f`.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::Berth;

fn id_of(b: &Berth, name: &str) -> String {
    b.inspect_container(name)["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

fn cgroup_dirs(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for controller in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = controller.path().join("berth").join(id);
        if dir.exists() {
            found.push(dir.display().to_string());
        }
    }
    found
}

#[test]
fn stop_sends_sigterm_then_sigkill_after_the_timeout() {
    let b = Berth::with_busybox();
    // A shell that handles TERM stops at once, with its own exit status.
    b.ok([
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.05; done",
    ]);
    // One that ignores TERM is killed after the timeout.
    b.ok([
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 0.05; done",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    b.ok(["stop", "-t", "5", "polite"]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(b.inspect_container("polite")["State"]["ExitCode"], 0);
    let t = Instant::now();
    assert_eq!(b.ok(["stop", "-t", "2", "stubborn"]), "stubborn\n");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    let doc = b.inspect_container("stubborn");
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["ExitCode"], 137);
    // Stopping a stopped container is fine.
    b.ok(["stop", "stubborn"]);
    assert_eq!(b.run(["stop", "nope"]).code, 1);
}

#[test]
fn kill_with_a_signal_and_restart() {
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "-d",
        "--name",
        "kk",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; while true; do sleep 0.05; done",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    b.ok(["kill", "-s", "USR1", "kk"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !b.ok(["logs", "kk"]).contains("got-usr1") {
        assert!(Instant::now() < deadline, "USR1 never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.ok(["kill", "kk"]);
    assert_eq!(b.ok(["wait", "kk"]), "137\n");
    assert_eq!(b.run(["kill", "kk"]).code, 1);
    b.ok(["restart", "-t", "1", "kk"]);
    assert_eq!(b.inspect_container("kk")["State"]["Status"], "running");
    assert!(b.run(["kill", "-s", "NOSUCHSIG", "kk"]).code != 0);
    // Restarting a running container right away brings it back with a new process.
    let pid = b.inspect_container("kk")["State"]["Pid"].clone();
    b.ok(["restart", "-t", "0", "kk"]);
    let state = b.inspect_container("kk")["State"].clone();
    assert_eq!(state["Status"], "running");
    assert_ne!(state["Pid"], pid);
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.02; done",
    ]);
    let counter = b
        .root()
        .join("containers")
        .join(id_of(&b, "counter"))
        .join("upper/tmp/c");
    let read = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(300));
    b.ok(["pause", "counter"]);
    assert_eq!(b.inspect_container("counter")["State"]["Status"], "paused");
    assert!(b.ok(["ps", "--format", "{{.Status}}"]).contains("(Paused)"));
    let frozen = read();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(read(), frozen, "the counter advanced while paused");
    assert_eq!(b.run(["pause", "counter"]).code, 1);
    assert_eq!(b.run(["rm", "counter"]).code, 1);
    b.ok(["unpause", "counter"]);
    // The file is rewritten in place, so one read may catch it empty: keep reading a while.
    let deadline = Instant::now() + Duration::from_secs(10);
    while read() <= frozen && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(read() > frozen, "the counter did not resume");
    assert_eq!(b.run(["unpause", "counter"]).code, 1);
    // A paused container can be stopped.
    b.ok(["pause", "counter"]);
    b.ok(["stop", "-t", "1", "counter"]);
    assert_eq!(b.inspect_container("counter")["State"]["Status"], "exited");
}

#[test]
fn restart_on_failure_restarts_exactly_three_times() {
    let b = Berth::with_busybox();
    let r = b.run([
        "run",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "echo attempt; exit 2",
    ]);
    assert_eq!(r.code, 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = b.inspect_container("flaky");
        if doc["State"]["Status"] == "exited" && doc["RestartCount"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "did not settle: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let doc = b.inspect_container("flaky");
    assert_eq!(doc["RestartCount"], 3);
    assert_eq!(doc["State"]["ExitCode"], 2);
    assert_eq!(b.ok(["logs", "flaky"]).lines().count(), 4);
    // A successful exit is not restarted under on-failure.
    b.ok([
        "run",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "busybox",
        "true",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.inspect_container("fine")["RestartCount"], 0);
    // --restart always keeps it up until stop.
    b.ok([
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.1",
    ]);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        b.inspect_container("always")["RestartCount"]
            .as_i64()
            .unwrap()
            >= 2
    );
    b.ok(["stop", "-t", "1", "always"]);
    let count = b.inspect_container("always")["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(800));
    let doc = b.inspect_container("always");
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["RestartCount"], count);
}

#[test]
fn memory_limit_oom_kill_is_exit_137() {
    let b = Berth::with_busybox();
    let r = b.run([
        "run",
        "--name",
        "hog",
        "-m",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(r.code, 137, "{}", r.stderr);
    let doc = b.inspect_container("hog");
    assert_eq!(doc["State"]["OOMKilled"], true);
    assert_eq!(doc["State"]["ExitCode"], 137);
}

#[test]
fn wait_and_logs_follow() {
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "-d",
        "--name",
        "ww",
        "busybox",
        "sh",
        "-c",
        "echo first; sleep 0.5; echo second; exit 5",
    ]);
    let follow = b
        .command(["logs", "-f", "ww"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(b.ok(["wait", "ww"]), "5\n");
    let out = follow.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\n");
    assert_eq!(b.ok(["wait", "ww"]), "5\n");
}

#[test]
fn a_dead_monitor_is_never_shown_running() {
    let b = Berth::with_busybox();
    b.ok(["run", "-d", "--name", "orphan", "busybox", "sleep", "60"]);
    let id = id_of(&b, "orphan");
    let monitors = processes_with(&format!("monitor\0{id}"));
    assert_eq!(monitors.len(), 1, "one monitor per container");
    // SAFETY: signalling a process we found by its command line.
    unsafe { libc::kill(monitors[0], libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    let doc = b.inspect_container("orphan");
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["Running"], false);
    assert_eq!(b.ok(["ps", "-q"]), "");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&id)
    );
    // It can be started again.
    b.ok(["start", "orphan"]);
    assert_eq!(b.inspect_container("orphan")["State"]["Status"], "running");
}

#[test]
fn concurrent_starts_make_one_monitor() {
    let b = Berth::with_busybox();
    b.ok(["create", "--name", "race", "busybox", "sleep", "30"]);
    let children: Vec<_> = (0..6)
        .map(|_| b.command(["start", "race"]).spawn().unwrap())
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let id = id_of(&b, "race");
    assert_eq!(processes_with(&format!("monitor\0{id}")).len(), 1);
    // And concurrent stops are fine too.
    let children: Vec<_> = (0..4)
        .map(|_| {
            b.command(["stop", "-t", "1", "race"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(b.inspect_container("race")["State"]["Status"], "exited");
}

#[test]
fn nothing_leaks_after_rm_f() {
    let b = Berth::with_busybox();
    b.ok([
        "run", "-d", "--name", "leak", "-m", "32m", "busybox", "sleep", "60",
    ]);
    b.ok(["exec", "-d", "leak", "sleep", "61"]);
    let id = id_of(&b, "leak");
    let pid = b.inspect_container("leak")["State"]["Pid"]
        .as_i64()
        .unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(!cgroup_dirs(&id).is_empty());
    b.ok(["rm", "-f", "leak"]);
    assert!(b
        .fails(["inspect", "leak"])
        .stderr
        .contains("No such object"));
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&id)
    );
    assert!(processes_with(&id).is_empty(), "monitor left");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the container's init is still there"
    );
    assert!(!b.runroot().join("containers").join(&id).exists());
    assert!(!b.root().join("containers").join(&id).exists());
    assert!(!b.runroot().join("runtime").join(&id).exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&b.dir().display().to_string()),
        "mounts left under the test dir"
    );
}

#[test]
fn attach_sees_output_of_a_running_container() {
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; echo late; sleep 0.2",
    ]);
    let out = b.run(["attach", "talker"]);
    assert_eq!(out.stdout, "late\n");
    assert_eq!(out.code, 0);
}

#[test]
fn signals_are_forwarded_in_the_foreground() {
    let b = Berth::with_busybox();
    let child = b
        .command([
            "run",
            "--name",
            "fg",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.run(["logs", "fg"]).stdout.contains("ready") {
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\ngot-term\n");
}

/// `--rm` answers as soon as the container is gone from every listing and deletes its files
/// afterwards: once its monitor has exited, nothing of it may be left anywhere.
#[test]
fn rm_flag_leaves_nothing_behind_once_its_monitor_is_done() {
    let b = Berth::with_busybox();
    let id = b
        .ok(["run", "-d", "--rm", "busybox", "true"])
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_with(&format!("monitor\0{id}")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(processes_with(&format!("monitor\0{id}")).is_empty());
    assert!(b.fails(["inspect", &id]).stderr.contains("No such object"));
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs(&id)
    );
    assert!(!b.root().join("containers").join(&id).exists());
    assert!(!b.runroot().join("containers").join(&id).exists());
    assert!(!b.runroot().join("runtime").join(&id).exists());
    let leftovers: Vec<_> = std::fs::read_dir(b.root().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "left in tmp/: {leftovers:?}");
}

/// `--rm` containers need not survive a crash: their overlay skips the sync at unmount.
#[test]
fn rm_flag_mounts_a_volatile_overlay() {
    let b = Berth::with_busybox();
    let root_mount = |args: &[&str]| -> String {
        b.ok(args)
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap_or_default()
            .to_string()
    };
    let line = root_mount(&["run", "--rm", "busybox", "cat", "/proc/self/mountinfo"]);
    assert!(
        line.contains("overlay") && line.contains("volatile"),
        "{line}"
    );
    let line = root_mount(&[
        "run",
        "--name",
        "kept",
        "busybox",
        "cat",
        "/proc/self/mountinfo",
    ]);
    assert!(
        line.contains("overlay") && !line.contains("volatile"),
        "{line}"
    );
}

#[test]
fn a_finished_rm_container_never_brings_back_a_deleted_store() {
    if !berth_tests::is_root() {
        return;
    }
    let b = Berth::with_busybox();
    let root = b.root();
    let root_text = root.display().to_string();
    for _ in 0..3 {
        b.ok(["run", "--rm", "--network", "none", "busybox", "true"]);
        // The monitor still cleans up after answering; the user deletes the store meanwhile.
        std::fs::remove_dir_all(&root).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_with(&root_text).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            processes_with(&root_text).is_empty(),
            "monitors still running"
        );
        assert!(!root.exists(), "{root_text} came back");
        b.import_busybox("busybox");
    }
}
