//! `update`: live limits of running and paused containers (read back from inside the container
//! and from `inspect`), stored limits of stopped ones applied at the next start, the restart
//! policy changing a running container's fate, and Docker's errors.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::{is_root, Berth};
use serde_json::Value;

/// Containers and cgroups need root.
macro_rules! needs_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Whether the host has the unified (v2) cgroup hierarchy.
fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A cgroup file as the container sees it (its own cgroup is the root of its view):
/// `v1` is `controller/file`, `v2` the unified name.
fn cgroup_file(b: &Berth, name: &str, v1: &str, v2: &str) -> String {
    let file = if cgroup_v2() { v2 } else { v1 };
    b.ok(["exec", name, "cat", &format!("/sys/fs/cgroup/{file}")])
        .trim()
        .to_string()
}

fn pids_max(b: &Berth, name: &str) -> String {
    cgroup_file(b, name, "pids/pids.max", "pids.max")
}

fn memory_max(b: &Berth, name: &str) -> String {
    cgroup_file(b, name, "memory/memory.limit_in_bytes", "memory.max")
}

fn host_config(b: &Berth, name: &str) -> Value {
    b.inspect_container(name)["HostConfig"].clone()
}

/// `run -d --network none --name NAME FLAGS… busybox CMD…`.
fn run_detached(b: &Berth, name: &str, flags: &[&str], cmd: &[&str]) {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(flags);
    args.push("busybox");
    args.extend_from_slice(cmd);
    b.ok(args);
}

/// Polls `inspect` until `done` holds, failing after ten seconds.
fn wait_for(b: &Berth, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let doc = b.inspect_container(name);
        if done(&doc) {
            return doc;
        }
        assert!(Instant::now() < deadline, "never settled: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn update_changes_the_limits_of_a_running_and_a_paused_container() {
    needs_root!();
    let b = Berth::with_busybox();
    run_detached(
        &b,
        "web",
        &["-m", "64m", "--pids-limit", "20"],
        &["sleep", "1000"],
    );
    assert_eq!(pids_max(&b, "web"), "20");
    let out = b.ok([
        "update",
        "-m",
        "100m",
        "--memory-swap",
        "200m",
        "--pids-limit",
        "8",
        "--cpu-shares",
        "512",
        "--cpus",
        "0.5",
        "web",
    ]);
    assert_eq!(out, "web\n", "the name, as given");
    assert_eq!(pids_max(&b, "web"), "8");
    assert_eq!(memory_max(&b, "web"), (100u64 << 20).to_string());
    if cgroup_v2() {
        assert_eq!(cgroup_file(&b, "web", "", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(cgroup_file(&b, "web", "cpu/cpu.cfs_quota_us", ""), "50000");
        assert_eq!(cgroup_file(&b, "web", "cpu/cpu.shares", ""), "512");
        assert_eq!(
            cgroup_file(&b, "web", "memory/memory.memsw.limit_in_bytes", ""),
            (200u64 << 20).to_string()
        );
    }
    let host = host_config(&b, "web");
    assert_eq!(host["Memory"], 100 << 20);
    assert_eq!(host["MemorySwap"], 200 << 20);
    assert_eq!(host["PidsLimit"], 8);
    assert_eq!(host["CpuShares"], 512);
    assert_eq!(host["NanoCpus"], 500_000_000);

    // Paused: the frozen cgroup takes the limit too; -1 means unlimited.
    b.ok(["pause", "web"]);
    assert_eq!(
        b.ok(["container", "update", "--pids-limit", "-1", "web"]),
        "web\n"
    );
    b.ok(["unpause", "web"]);
    assert_eq!(pids_max(&b, "web"), "max");
    assert_eq!(host_config(&b, "web")["PidsLimit"], 0);
    assert_eq!(b.inspect_container("web")["State"]["Status"], "running");
}

#[test]
fn pids_limit_is_enforced_after_update() {
    needs_root!();
    let b = Berth::with_busybox();
    run_detached(&b, "forky", &[], &["sleep", "1000"]);
    let spawn_sleeps = "for i in 1 2 3 4 5 6 7 8; do sleep 0.2 & done; wait; echo spawned";
    // Unlimited at first: eight background sleeps start (and end before the exec does).
    assert_eq!(
        b.ok(["exec", "forky", "sh", "-c", spawn_sleeps]).trim(),
        "spawned"
    );
    b.ok(["update", "--pids-limit", "5", "forky"]);
    // init + sh + three sleeps reach the limit: the fourth fork fails.
    let r = b.run(["exec", "forky", "sh", "-c", spawn_sleeps]);
    assert_ne!(r.code, 0, "forks past the limit succeeded: {}", r.stdout);
    assert!(r.stderr.contains("can't fork"), "{}", r.stderr);
}

#[test]
fn update_of_a_stopped_container_applies_at_the_next_start() {
    needs_root!();
    let b = Berth::with_busybox();
    let show = if cgroup_v2() {
        "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max"
    } else {
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    b.ok([
        "create",
        "--network",
        "none",
        "--name",
        "later",
        "busybox",
        "sh",
        "-c",
        show,
    ]);
    assert_eq!(
        b.ok([
            "update",
            "--pids-limit",
            "7",
            "-m",
            "50m",
            "--memory-swap",
            "-1",
            "later"
        ]),
        "later\n"
    );
    let host = host_config(&b, "later");
    assert_eq!(
        (host["PidsLimit"].clone(), host["MemorySwap"].clone()),
        (7.into(), (-1).into())
    );
    assert_eq!(b.inspect_container("later")["State"]["Status"], "created");
    let mut expected = format!("7\n{}\n", 50u64 << 20);
    assert_eq!(b.ok(["start", "-a", "later"]), expected);

    // Exited now; the next update shows at the next start as well.
    b.ok(["update", "--pids-limit", "9", "later"]);
    expected = format!("9\n{}\n", 50u64 << 20);
    assert_eq!(b.ok(["start", "-a", "later"]), expected);
}

#[test]
fn restart_policy_update_takes_effect_on_a_running_container() {
    needs_root!();
    let b = Berth::with_busybox();
    // Exits with 3 once /tmp/go exists (and at once on every restart after that).
    let wait_for_go = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3";
    run_detached(&b, "flaky", &[], &["sh", "-c", wait_for_go]);
    b.ok(["update", "--restart", "on-failure:2", "flaky"]);
    b.ok(["exec", "flaky", "touch", "/tmp/go"]);
    let doc = wait_for(&b, "flaky", |d| {
        d["State"]["Status"] == "exited" && d["RestartCount"] == 2
    });
    assert_eq!(doc["State"]["ExitCode"], 3);
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);

    // The other way round: `always` turned off before the container exits.
    run_detached(
        &b,
        "steady",
        &["--restart", "always"],
        &["sh", "-c", wait_for_go],
    );
    b.ok(["update", "--restart", "no", "steady"]);
    b.ok(["exec", "steady", "touch", "/tmp/go"]);
    let doc = wait_for(&b, "steady", |d| d["State"]["Status"] == "exited");
    assert_eq!(doc["RestartCount"], 0);
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["Name"], "no");
}

#[test]
fn bad_updates_fail_like_docker_and_change_nothing() {
    needs_root!();
    let b = Berth::with_busybox();
    run_detached(&b, "box", &["-m", "64m"], &["sleep", "1000"]);
    let before = host_config(&b, "box");
    let refused = |args: &[&str], code: i32, message: &str| {
        let r = b.run(args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert_eq!(host_config(&b, "box"), before, "{args:?} changed the store");
    };
    refused(
        &["update", "-m", "100m", "--memory-swap", "50m", "box"],
        1,
        "Error response from daemon: Minimum memoryswap limit should be larger than memory limit, see usage",
    );
    refused(
        &["update", "--memory-swap", "32m", "box"],
        1,
        "Minimum memoryswap limit should be larger than memory limit",
    );
    // Docker stored twice the memory as memory+swap at create: 200m exceeds it.
    refused(
        &["update", "-m", "200m", "box"],
        1,
        "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
    );
    refused(
        &["update", "-m", "1m", "box"],
        1,
        "Minimum memory limit allowed is 6MB",
    );
    refused(
        &["update", "box"],
        1,
        "you must provide one or more flags when using this command",
    );
    refused(
        &["update", "-m", "lots", "box"],
        125,
        "invalid size: 'lots'",
    );
    refused(
        &["update", "--restart", "sometimes", "box"],
        125,
        "unknown policy 'sometimes'",
    );
    refused(
        &["update", "--cpus", "0.5", "--cpu-quota", "20000", "box"],
        1,
        "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
    );

    // An unknown container fails alone: the others are updated, and the exit status is 1.
    let r = b.run(["update", "--pids-limit", "12", "nosuch", "box"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "box\n");
    assert_eq!(
        r.stderr.trim(),
        "Error response from daemon: No such container: nosuch"
    );
    assert_eq!(host_config(&b, "box")["PidsLimit"], 12);

    // --rm containers keep their restart policy.
    run_detached(&b, "brief", &["--rm"], &["sleep", "1000"]);
    let r = b.run(["update", "--restart", "always", "brief"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(host_config(&b, "brief")["RestartPolicy"]["Name"], "no");
}

#[test]
fn memory_below_current_usage_fails_as_the_kernel_says() {
    needs_root!();
    if cgroup_v2() {
        // v2 takes such a limit and reclaims (or OOM-kills) instead of refusing it.
        eprintln!("skipped: cgroup v1 behaviour");
        return;
    }
    let b = Berth::with_busybox();
    // 30 MiB in a tmpfs are charged to the container and cannot be reclaimed (no swap room).
    run_detached(
        &b,
        "full",
        &["--tmpfs", "/data"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/data/f bs=1M count=30 && touch /tmp/filled && sleep 1000",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.run(["exec", "full", "test", "-e", "/tmp/filled"]).code != 0 {
        assert!(Instant::now() < deadline, "the tmpfs was never filled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = host_config(&b, "full");
    let r = b.run(["update", "-m", "10m", "--memory-swap", "10m", "full"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("Error response from daemon: Cannot update container ")
            && r.stderr.contains("memory.limit_in_bytes")
            && r.stderr.contains("Device or resource busy"),
        "{}",
        r.stderr
    );
    assert_eq!(
        host_config(&b, "full"),
        before,
        "the store must stay as it was"
    );
    let unlimited: u64 = memory_max(&b, "full").parse().unwrap();
    assert!(unlimited > 1 << 50, "the limit changed to {unlimited}");
    // A limit above the usage is taken.
    b.ok(["update", "-m", "100m", "--memory-swap", "100m", "full"]);
    assert_eq!(memory_max(&b, "full"), (100u64 << 20).to_string());
}
