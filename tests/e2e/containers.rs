//! Containers end to end on the busybox fixture: create/run/start, exit codes, command
//! semantics, ps, inspect, logs, exec, tty and stdin, names, isolation, diff/commit/cp/export.

use std::time::{Duration, Instant};

use berth_tests::Berth;
use serde_json::Value;

#[test]
fn run_exit_codes_follow_docker() {
    let b = Berth::with_busybox();
    assert_eq!(b.ok(["run", "--rm", "busybox", "echo", "hello"]), "hello\n");
    assert_eq!(b.run(["run", "--rm", "busybox", "false"]).code, 1);
    assert_eq!(
        b.run(["run", "--rm", "busybox", "sh", "-c", "exit 3"]).code,
        3
    );
    let r = b.run(["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    let r = b.run(["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(r.stderr.contains("no-such-command"), "{}", r.stderr);
    assert_eq!(
        b.run([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "sleep 5 & kill -9 $!; wait $!"
        ])
        .code,
        137
    );
    let r = b.run(["run", "--rm", "--restart", "bogus", "busybox", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert_eq!(
        b.run([
            "run",
            "--rm",
            "--pull",
            "never",
            "no-such-image-here",
            "true"
        ])
        .code,
        125
    );
    assert_eq!(
        b.run(["run", "--rm", "--bogus-flag", "busybox", "true"])
            .code,
        125
    );
    // Nothing stays behind from any of these.
    assert_eq!(b.ok(["ps", "-aq"]), "");
}

#[test]
fn stdout_and_stderr_are_separate() {
    let b = Berth::with_busybox();
    let r = b.run([
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
}

#[test]
fn create_then_start_and_logs_after_exit() {
    let b = Berth::with_busybox();
    let id = b.ok([
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    assert_eq!(b.inspect_container("c1")["State"]["Status"], "created");
    let ps = b.ok(["ps", "-a"]);
    assert!(ps.lines().nth(1).unwrap().contains("Created"), "{ps}");
    let r = b.run(["start", "-a", "c1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "one\n");
    assert_eq!(r.stderr, "two\n");
    let doc = b.inspect_container(&id[..12]);
    assert_eq!(doc["State"]["Status"], "exited");
    assert_eq!(doc["State"]["ExitCode"], 0);
    let logs = b.run(["logs", "c1"]);
    assert_eq!(logs.stdout, "one\n");
    assert_eq!(logs.stderr, "two\n");
    // The json-file log is Docker's format.
    let log = std::fs::read_to_string(doc["LogPath"].as_str().unwrap()).unwrap();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "one\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    // Start again: logs accumulate.
    b.ok(["start", "-a", "c1"]);
    assert_eq!(b.ok(["logs", "c1"]), "one\none\n");
    assert_eq!(b.ok(["logs", "--tail", "2", "c1"]), "one\n");
    let stamped = b.ok(["logs", "-t", "c1"]);
    assert!(
        stamped.starts_with("20") && stamped.contains("Z one"),
        "{stamped}"
    );
}

/// A container that exits at once can be over, its monitor gone, before `run` says hello to
/// it: the output and exit status it sent must still arrive.
#[test]
fn output_of_a_container_that_exits_at_once_is_never_lost() {
    let b = Berth::with_busybox();
    for _ in 0..20 {
        assert_eq!(b.ok(["run", "--rm", "busybox", "echo", "hello"]), "hello\n");
    }
}

#[test]
fn rm_flag_removes_the_container() {
    let b = Berth::with_busybox();
    b.ok(["run", "--rm", "--name", "gone", "busybox", "true"]);
    assert_eq!(b.ok(["ps", "-aq"]), "");
    assert!(b
        .fails(["inspect", "gone"])
        .stderr
        .contains("No such object"));
    let containers = b.root().join("containers");
    assert_eq!(
        std::fs::read_dir(containers)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn detached_run_ps_columns_and_filters() {
    let b = Berth::with_busybox();
    let id = b.ok([
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "30",
    ]);
    let id = id.trim().to_string();
    b.ok(["create", "--name", "idle", "busybox", "true"]);
    let ps = b.ok(["ps"]);
    let header: Vec<&str> = ps
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert_eq!(
        ps.lines().count(),
        2,
        "only running containers by default: {ps}"
    );
    let row = ps.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&id[..12]) && row.contains("busybox") && row.contains("\"sleep 30\""),
        "{row}"
    );
    assert!(row.contains("Up ") && row.ends_with("web"), "{row}");
    assert_eq!(b.ok(["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(b.ok(["ps", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(b.ok(["ps", "-a", "--format", "{{.Names}}"]), "idle\nweb\n");
    assert_eq!(
        b.ok([
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}"
        ]),
        "idle\n"
    );
    assert_eq!(
        b.ok([
            "ps",
            "--filter",
            "label=tier=front",
            "--format",
            "{{.Names}}"
        ]),
        "web\n"
    );
    assert_eq!(
        b.ok(["ps", "-a", "--filter", "name=id", "--format", "{{.Names}}"]),
        "idle\n"
    );
    assert_eq!(b.ok(["ps", "-n", "1", "--format", "{{.Names}}"]), "idle\n");
    assert_eq!(
        b.ok(["ps", "-l", "--format", "{{.Names}} {{.State}}"]),
        "idle created\n"
    );
    assert_eq!(
        b.ok(["ps", "--format", "{{.Status}}"])
            .split_whitespace()
            .next(),
        Some("Up")
    );
    assert!(b.ok(["ps", "-s"]).lines().next().unwrap().contains("SIZE"));
    assert_eq!(b.run(["ps", "--filter", "bogus=1"]).code, 1);
    let json = b.ok(["ps", "--format", "json"]);
    let row: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["Names"], "web");
}

#[test]
fn name_conflicts_get_dockers_error() {
    let b = Berth::with_busybox();
    let id = b.ok(["create", "--name", "same", "busybox", "true"]);
    let r = b.run(["create", "--name", "same", "busybox", "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("The container name \"/same\" is already in use by container")
            && r.stderr.contains(id.trim()),
        "{}",
        r.stderr
    );
    assert_eq!(
        b.run(["run", "--name", "same", "busybox", "true"]).code,
        125
    );
    assert_eq!(
        b.run(["create", "--name", "bad name!", "busybox", "true"])
            .code,
        125
    );
    // rename, and its conflicts.
    b.ok(["create", "--name", "other", "busybox", "true"]);
    assert_eq!(b.run(["rename", "other", "same"]).code, 1);
    b.ok(["rename", "other", "renamed"]);
    assert_eq!(b.inspect_container("renamed")["Name"], "/renamed");
    // Generated names look like Docker's.
    b.ok(["create", "busybox", "true"]);
    let names = b.ok(["ps", "-a", "--format", "{{.Names}}"]);
    assert!(names.lines().any(|n| n.contains('_')), "{names}");
}

#[test]
fn two_containers_never_see_each_others_writes() {
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "--name",
        "ca",
        "busybox",
        "sh",
        "-c",
        "echo a > /tmp/f; rm /bin/ls",
    ]);
    b.ok([
        "run",
        "--name",
        "cb",
        "busybox",
        "sh",
        "-c",
        "echo b > /tmp/f",
    ]);
    let upper = |name: &str| {
        b.root()
            .join("containers")
            .join(b.inspect_container(name)["Id"].as_str().unwrap())
            .join("upper")
    };
    assert_eq!(
        std::fs::read_to_string(upper("ca").join("tmp/f")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(upper("cb").join("tmp/f")).unwrap(),
        "b\n"
    );
    // A new container from the image sees neither write: the image is unchanged.
    assert_eq!(
        b.run(["run", "--rm", "busybox", "test", "-e", "/tmp/f"])
            .code,
        1
    );
    b.ok(["run", "--rm", "busybox", "ls", "/"]);
    let diff_a = b.ok(["diff", "ca"]);
    assert!(
        diff_a.contains("A /tmp/f") && diff_a.contains("D /bin/ls") && diff_a.contains("C /bin"),
        "{diff_a}"
    );
    let diff_b = b.ok(["diff", "cb"]);
    assert!(
        diff_b.contains("A /tmp/f") && !diff_b.contains("/bin/ls"),
        "{diff_b}"
    );
}

#[test]
fn entrypoint_cmd_and_shell_form() {
    let b = Berth::new();
    let tar = b.busybox_tar();
    b.ok([
        "import".as_ref(),
        "-c".as_ref(),
        "ENTRYPOINT [\"echo\", \"ep\"]".as_ref(),
        "-c".as_ref(),
        "CMD [\"default\"]".as_ref(),
        tar.as_os_str(),
        "epimg".as_ref(),
    ]);
    b.ok([
        "import".as_ref(),
        "-c".as_ref(),
        "CMD echo shell $HOME".as_ref(),
        tar.as_os_str(),
        "shimg".as_ref(),
    ]);
    assert_eq!(b.ok(["run", "--rm", "epimg"]), "ep default\n");
    assert_eq!(b.ok(["run", "--rm", "epimg", "x", "y"]), "ep x y\n");
    // --entrypoint resets CMD.
    assert_eq!(
        b.ok(["run", "--rm", "--entrypoint", "/bin/echo", "epimg"]),
        "\n"
    );
    assert_eq!(
        b.ok(["run", "--rm", "--entrypoint", "/bin/echo", "epimg", "z"]),
        "z\n"
    );
    // Shell form goes through /bin/sh -c.
    assert_eq!(b.ok(["run", "--rm", "shimg"]), "shell /root\n");
    let doc = {
        let id = b.ok(["create", "shimg"]);
        b.inspect_container(id.trim())
    };
    assert_eq!(doc["Path"], "/bin/sh");
    assert_eq!(doc["Args"][0], "-c");
}

#[test]
fn env_workdir_user_hostname_flags() {
    let b = Berth::with_busybox();
    let env_file = b.dir().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n\n").unwrap();
    let out = b.ok([
        "run".as_ref(),
        "--rm".as_ref(),
        "-e".as_ref(),
        "A=1".as_ref(),
        "--env-file".as_ref(),
        env_file.as_os_str(),
        "-w".as_ref(),
        "/tmp".as_ref(),
        "-h".as_ref(),
        "myhost".as_ref(),
        "busybox".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        "echo $A $FROM_FILE $(pwd) $(hostname) $HOSTNAME".as_ref(),
    ]);
    assert_eq!(out, "1 yes /tmp myhost myhost\n");
    assert_eq!(
        b.ok(["run", "--rm", "-u", "nobody", "busybox", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(
        b.ok(["run", "--rm", "-u", "1234:5678", "busybox", "id"])
            .trim(),
        "uid=1234 gid=5678 groups=5678"
    );
    assert_eq!(
        b.run(["run", "--rm", "-u", "nosuchuser", "busybox", "true"])
            .code,
        125
    );
    // The default hostname is the short ID.
    let id = b.ok(["create", "busybox", "hostname"]);
    assert_eq!(b.ok(["start", "-a", id.trim()]).trim(), &id[..12]);
}

#[test]
fn tty_and_stdin() {
    let b = Berth::with_busybox();
    assert_eq!(
        b.ok([
            "run",
            "--rm",
            "-t",
            "busybox",
            "sh",
            "-c",
            "test -t 0 && tty"
        ])
        .trim(),
        "/dev/pts/0"
    );
    assert_eq!(b.run(["run", "--rm", "busybox", "test", "-t", "1"]).code, 1);
    let r = b.run_with_input(
        ["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"],
        b"piped in\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "piped in\ndone\n");
    // Without -i the container gets no stdin.
    let r = b.run_with_input(["run", "--rm", "busybox", "cat"], b"ignored\n");
    assert_eq!(r.stdout, "");
}

#[test]
fn exec_sees_the_container() {
    let b = Berth::with_busybox();
    b.ok(["run", "-d", "--name", "box", "busybox", "sleep", "30"]);
    let ps = b.ok(["exec", "box", "ps"]);
    assert!(
        ps.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("sleep 30")),
        "{ps}"
    );
    assert_eq!(b.run(["exec", "box", "sh", "-c", "exit 4"]).code, 4);
    assert_eq!(
        b.ok([
            "exec",
            "-e",
            "X=y",
            "-w",
            "/tmp",
            "box",
            "sh",
            "-c",
            "echo $X $(pwd)"
        ]),
        "y /tmp\n"
    );
    assert_eq!(b.ok(["exec", "-u", "nobody", "box", "id", "-u"]), "65534\n");
    assert_eq!(b.run(["exec", "box", "nonexistent"]).code, 127);
    assert_eq!(
        b.ok(["exec", "-t", "box", "sh", "-c", "tty"]).trim(),
        "/dev/pts/0"
    );
    let r = b.run_with_input(["exec", "-i", "box", "cat"], b"via exec\n");
    assert_eq!(r.stdout, "via exec\n");
    b.ok(["exec", "-d", "box", "sh", "-c", "echo detached > /tmp/d"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.ok(["exec", "box", "cat", "/tmp/d"]), "detached\n");
    let top = b.ok(["top", "box"]);
    assert!(top.starts_with("UID") && top.contains("sleep 30"), "{top}");
    b.ok(["stop", "-t", "0", "box"]);
    let r = b.run(["exec", "box", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("is not running"), "{}", r.stderr);
}

#[test]
fn inspect_has_dockers_shape() {
    let b = Berth::with_busybox();
    b.ok([
        "create",
        "--name",
        "shape",
        "-m",
        "32m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:2",
        "-l",
        "k=v",
        "--stop-signal",
        "SIGUSR1",
        "busybox",
        "sleep",
        "5",
    ]);
    let doc = b.inspect_container("shape");
    assert_eq!(doc["Name"], "/shape");
    assert_eq!(doc["Path"], "sleep");
    assert_eq!(doc["Args"][0], "5");
    assert_eq!(doc["State"]["Status"], "created");
    assert_eq!(doc["State"]["Running"], false);
    assert_eq!(doc["Config"]["Cmd"][0], "sleep");
    assert_eq!(doc["Config"]["Image"], "busybox");
    assert_eq!(doc["Config"]["Labels"]["k"], "v");
    assert_eq!(doc["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(doc["HostConfig"]["Memory"], 32 << 20);
    assert_eq!(doc["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(doc["HostConfig"]["PidsLimit"], 50);
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(doc["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(doc["RestartCount"], 0);
    assert!(doc["Image"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(doc["GraphDriver"]["Name"], "overlay");
    assert!(doc["NetworkSettings"]["Networks"].is_object());
    let fmt = b.ok([
        "inspect",
        "-f",
        "{{.State.Status}} {{.HostConfig.Memory}}",
        "shape",
    ]);
    assert_eq!(fmt, format!("created {}\n", 32 << 20));
    assert_eq!(b.run(["container", "inspect", "nope"]).code, 1);
}

#[test]
fn cp_both_ways_and_refuses_symlink_escapes() {
    let b = Berth::with_busybox();
    b.ok(["run", "--name", "cpbox", "busybox", "sh", "-c",
        "mkdir -p /data/sub && echo inside > /data/sub/f && ln -s / /escape && ln -s ../../../../../../.. /up"]);
    let host = b.dir().join("host");
    std::fs::create_dir(&host).unwrap();
    // From the container.
    b.ok(["cp".as_ref(), "cpbox:/data".as_ref(), host.as_os_str()]);
    assert_eq!(
        std::fs::read_to_string(host.join("data/sub/f")).unwrap(),
        "inside\n"
    );
    b.ok([
        "cp".as_ref(),
        "cpbox:/data/sub/f".as_ref(),
        host.join("copy").as_os_str(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("copy")).unwrap(),
        "inside\n"
    );
    // To the container.
    std::fs::write(host.join("new"), "from host\n").unwrap();
    b.ok([
        "cp".as_ref(),
        host.join("new").as_os_str(),
        "cpbox:/data/".as_ref(),
    ]);
    // Through crafted symlinks: everything lands inside the container.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    let on_host = std::path::Path::new("/tmp").join(&marker);
    let _ = std::fs::remove_file(&on_host);
    b.ok([
        "cp".as_ref(),
        host.join("new").as_os_str(),
        format!("cpbox:/escape/tmp/{marker}").as_ref(),
    ]);
    assert!(
        !on_host.exists(),
        "cp followed a container symlink out of the container"
    );
    b.ok([
        "cp".as_ref(),
        host.join("new").as_os_str(),
        format!("cpbox:/up/tmp/{marker}-up").as_ref(),
    ]);
    assert!(
        !std::path::Path::new("/tmp")
            .join(format!("{marker}-up"))
            .exists(),
        "cp followed ../ out"
    );
    let upper = b
        .root()
        .join("containers")
        .join(b.inspect_container("cpbox")["Id"].as_str().unwrap())
        .join("upper");
    assert!(upper.join("tmp").join(&marker).exists());
    assert!(upper.join("tmp").join(format!("{marker}-up")).exists());
    assert_eq!(
        std::fs::read_to_string(upper.join("data/new")).unwrap(),
        "from host\n"
    );
    // Reading through the symlink also stays inside: /escape/etc/passwd is the container's.
    b.ok([
        "cp".as_ref(),
        "cpbox:/escape/etc/passwd".as_ref(),
        host.join("passwd").as_os_str(),
    ]);
    let passwd = std::fs::read_to_string(host.join("passwd")).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0:root:/root:/bin/sh\nnobody"),
        "{passwd}"
    );
    assert_ne!(
        b.run(["cp".as_ref(), "cpbox:/missing".as_ref(), host.as_os_str()])
            .code,
        0
    );
}

#[test]
fn commit_export_and_prune() {
    let b = Berth::with_busybox();
    b.ok([
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /tmp/file",
    ]);
    let id = b.ok([
        "commit",
        "-m",
        "my message",
        "-a",
        "me",
        "-c",
        "CMD [\"cat\", \"/tmp/file\"]",
        "src",
        "snap:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(b.ok(["run", "--rm", "snap:1"]), "committed\n");
    let history = b.ok(["history", "--no-trunc", "snap:1"]);
    assert!(history.contains("my message"), "{history}");
    let image: Value = serde_json::from_str(&b.ok(["image", "inspect", "snap:1"])).unwrap();
    assert_eq!(image[0]["Author"], "me");
    assert_eq!(image[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    // export: the merged file system.
    let out = b.command(["export", "src"]).output().unwrap();
    assert!(out.status.success());
    let names = berth_tests::tar_names(&out.stdout);
    assert!(
        names.iter().any(|n| n.ends_with("bin/busybox")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with("tmp/file")), "{names:?}");
    // prune removes stopped containers only.
    b.ok(["run", "-d", "--name", "alive", "busybox", "sleep", "30"]);
    let pruned = b.ok(["container", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert_eq!(b.ok(["ps", "-a", "--format", "{{.Names}}"]), "alive\n");
    // An image a container uses cannot be removed.
    assert_ne!(b.run(["rmi", "busybox"]).code, 0);
}

#[test]
fn read_only_tmpfs_caps_and_network_modes() {
    let b = Berth::with_busybox();
    assert_ne!(
        b.run(["run", "--rm", "--read-only", "busybox", "touch", "/x"])
            .code,
        0
    );
    b.ok([
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "busybox",
        "touch",
        "/tmp/x",
    ]);
    let caps = b.ok([
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(caps.contains("0000000000000000"), "{caps}");
    let caps = b.ok([
        "run",
        "--rm",
        "busybox",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(!caps.contains("0000000000000000"), "{caps}");
    let links = b.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let links = b.ok(["run", "--rm", "busybox", "ls", "/sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["eth0", "lo"]);
    // Other tests add and remove links on the host meanwhile: only the links present both
    // before and after must show.
    let host_links = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = host_links();
    let links = b.ok([
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let seen: std::collections::BTreeSet<String> =
        links.split_whitespace().map(str::to_string).collect();
    let stable: Vec<_> = before.intersection(&host_links()).cloned().collect();
    assert!(stable.len() > 1, "the host has links besides lo");
    for link in &stable {
        assert!(seen.contains(link), "{link} missing from {links}");
    }
    let limit = b.ok([
        "run",
        "--rm",
        "-m",
        "64m",
        "busybox",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let pids = b.ok([
        "run",
        "--rm",
        "--pids-limit",
        "20",
        "busybox",
        "cat",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(pids.trim(), "20");
    let nofile = b.ok([
        "run",
        "--rm",
        "--ulimit",
        "nofile=256:512",
        "busybox",
        "sh",
        "-c",
        "ulimit -n",
    ]);
    assert_eq!(nofile.trim(), "256");
}

#[test]
fn stats_no_stream_lists_running_containers() {
    let b = Berth::with_busybox();
    b.ok(["run", "-d", "--name", "st", "busybox", "sleep", "30"]);
    let out = b.ok(["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CONTAINER ID")
            && header.contains("MEM USAGE / LIMIT")
            && header.contains("PIDS"),
        "{header}"
    );
    let row = lines.next().unwrap();
    assert!(row.contains("st") && row.contains('%'), "{row}");
    let started = Instant::now();
    b.ok([
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "st",
    ]);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn init_runs_the_command_under_an_init() {
    if !std::path::Path::new("/usr/bin/tini-static").exists() {
        eprintln!("skipped: no tini-static on this host");
        return;
    }
    let b = Berth::with_busybox();
    let ps = b.ok(["run", "--rm", "--init", "busybox", "ps"]);
    let first = ps.lines().nth(1).unwrap();
    assert!(
        first.trim_start().starts_with("1 ") && first.contains("docker-init"),
        "{ps}"
    );
}
