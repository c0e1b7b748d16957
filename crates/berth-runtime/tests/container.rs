//! Real containers from a busybox rootfs, checked from the inside. Root only: skipped
//! otherwise. Run with `cargo test -p berth-runtime --test container`; the micro-benchmark
//! with `cargo test --release -p berth-runtime --test container -- --ignored bench`.

#[macro_use]
mod support;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_runtime::oci_spec::runtime::{
    LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
};
use berth_runtime::{wait, ExitStatus, RuntimeError, Stdio};
use support::{error_chain, host_mounts_mention, read_pty, set_user, status_field, Fixture};

fn main() {
    support::main(&[
        test!(pid_one_hostname_cwd_env),
        test!(masked_and_readonly_paths),
        test!(docker_default_capabilities_seccomp),
        test!(no_new_privileges),
        test!(non_root_user_and_groups),
        test!(rlimits_capped_at_hard_limit),
        test!(dev_has_docker_devices),
        test!(mounts_and_sysctls),
        test!(readonly_root),
        test!(exit_status_propagates),
        test!(killed_by_signal),
        test!(command_not_found_is_127),
        test!(command_not_executable_is_126),
        test!(stdin_and_clean_process_state),
        test!(terminal_gets_a_pty),
        test!(overlay_root_stays_in_the_container),
        test!(exec_joins_the_container),
        test!(exec_with_terminal_and_user),
        test!(cgroup_joined_and_removed),
        test!(pause_and_resume_freeze),
        test!(failed_create_leaves_nothing),
        test!(user_namespace_maps_root),
        // `cargo test --release -p berth-runtime --test container -- --ignored bench`
        ignored!(bench_create_start_wait_delete),
    ]);
}

/// Docker's 14 default capabilities as a /proc/<pid>/status mask.
const DOCKER_CAPS: &str = "00000000a80425fb";

fn sh(fixture: &Fixture, script: &str) -> berth_runtime::oci_spec::runtime::Spec {
    fixture.spec(&["sh", "-c", script])
}

fn pid_one_hostname_cwd_env() {
    let mut f = Fixture::new();
    let mut spec = sh(
        &f,
        "echo $$; hostname; pwd; echo $GREETING; cat /proc/1/cmdline | tr '\\0' ' '",
    );
    let process = spec.process_mut().as_mut().unwrap();
    process.set_cwd("/tmp".into());
    let mut env = process.env().clone().unwrap();
    env.push("GREETING=hello world".into());
    process.set_env(Some(env));
    let out = f.run(&spec);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["1", "berth-test", "/tmp", "hello world"],
        "{out:?}"
    );
    assert!(lines[4].starts_with("sh -c echo $$"), "{out:?}");
}

fn masked_and_readonly_paths() {
    let mut f = Fixture::new();
    // Check the masked and read-only paths this kernel has (it may lack /proc/kcore…).
    let masked_files: Vec<&str> = berth_runtime::spec_defaults::MASKED_PATHS
        .into_iter()
        .filter(|p| std::path::Path::new(p).is_file())
        .collect();
    let masked_dirs: Vec<&str> = berth_runtime::spec_defaults::MASKED_PATHS
        .into_iter()
        .filter(|p| std::path::Path::new(p).is_dir())
        .collect();
    assert!(!masked_files.is_empty() && !masked_dirs.is_empty());
    let script = format!(
        "for f in {files}; do stat -c '%t:%T' $f; wc -c < $f; done; \
         ls -A {dirs} | grep -v : | grep -c . ; \
         touch {dirs_first}/x 2>/dev/null || echo ro-masked-dir; \
         echo 1 > /proc/sys/kernel/core_uses_pid || echo ro-proc-sys; \
         grep -c ' /proc/fs ro,' /proc/self/mountinfo; \
         touch /sys/x 2>/dev/null || echo ro-sys",
        files = masked_files.join(" "),
        dirs = masked_dirs.join(" "),
        dirs_first = masked_dirs[0],
    );
    let out = f.run(&sh(&f, &script));
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Masked files are /dev/null (char 1:3, empty); masked directories are empty.
    let mut expected: Vec<&str> = masked_files.iter().flat_map(|_| ["1:3", "0"]).collect();
    expected.extend(["0", "ro-masked-dir", "ro-proc-sys", "1", "ro-sys"]);
    assert_eq!(lines, expected, "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
}

fn docker_default_capabilities_seccomp() {
    let mut f = Fixture::new();
    let out = f.run(&f.spec(&["cat", "/proc/self/status"]));
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let status = &out.stdout;
    assert_eq!(status_field(status, "CapEff"), DOCKER_CAPS);
    assert_eq!(status_field(status, "CapPrm"), DOCKER_CAPS);
    assert_eq!(status_field(status, "CapBnd"), DOCKER_CAPS);
    assert_eq!(status_field(status, "CapInh"), "0000000000000000");
    assert_eq!(status_field(status, "CapAmb"), "0000000000000000");
    // Docker keeps no_new_privileges off by default…
    assert_eq!(status_field(status, "NoNewPrivs"), "0");
    // …and still filters system calls.
    assert_eq!(status_field(status, "Seccomp"), "2");
    // Rust ignores SIGPIPE in the caller: the container must get default dispositions.
    assert_eq!(status_field(status, "SigIgn"), "0000000000000000");
    assert_eq!(status_field(status, "SigBlk"), "0000000000000000");
}

fn no_new_privileges() {
    let mut f = Fixture::new();
    let mut spec = f.spec(&["cat", "/proc/self/status"]);
    spec.process_mut()
        .as_mut()
        .unwrap()
        .set_no_new_privileges(Some(true));
    let out = f.run(&spec);
    assert_eq!(status_field(&out.stdout, "NoNewPrivs"), "1", "{out:?}");
    assert_eq!(status_field(&out.stdout, "Seccomp"), "2", "{out:?}");
}

fn non_root_user_and_groups() {
    let mut f = Fixture::new();
    let mut spec = sh(&f, "id -u; id -g; id -G; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; touch /root/x || echo denied");
    set_user(&mut spec, 1000, 1001, vec![10, 20]);
    let out = f.run(&spec);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..3], ["1000", "1001", "1001 10 20"], "{out:?}");
    // A non-root process keeps nothing effective or permitted, only the bounding set.
    assert_eq!(status_field(&out.stdout, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&out.stdout, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(&out.stdout, "CapBnd"), DOCKER_CAPS);
    assert_eq!(lines.last(), Some(&"denied"), "{out:?}");
}

fn rlimits_capped_at_hard_limit() {
    let mut f = Fixture::new();
    let mut spec = sh(&f, "ulimit -Sn; ulimit -Hn; ulimit -c");
    let current_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .expect("a finite nofile hard limit");
    let limits = vec![
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(1024u64)
            .hard(current_hard + 1_000_000)
            .build()
            .unwrap(),
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitCore)
            .soft(0u64)
            .hard(0u64)
            .build()
            .unwrap(),
    ];
    spec.process_mut()
        .as_mut()
        .unwrap()
        .set_rlimits(Some(limits));
    let out = f.run(&spec);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let expected = [
        "1024".to_string(),
        current_hard.to_string(),
        "0".to_string(),
    ];
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), expected, "{out:?}");
}

fn dev_has_docker_devices() {
    let mut f = Fixture::new();
    let out = f.run(&sh(
        &f,
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx core; do echo /dev/$l $(readlink /dev/$l); done; \
         test -e /dev/console || echo no-console; \
         echo ok > /dev/null && head -c 4 /dev/zero | wc -c; \
         ls /dev | tr '\\n' ' '",
    ));
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let expected = [
        "/dev/null character special file 1:3 666",
        "/dev/zero character special file 1:5 666",
        "/dev/full character special file 1:7 666",
        "/dev/random character special file 1:8 666",
        "/dev/urandom character special file 1:9 666",
        "/dev/tty character special file 5:0 666",
        "/dev/fd /proc/self/fd",
        "/dev/stdin /proc/self/fd/0",
        "/dev/stdout /proc/self/fd/1",
        "/dev/stderr /proc/self/fd/2",
        "/dev/ptmx pts/ptmx",
        "/dev/core /proc/kcore",
        "no-console",
        "4",
    ];
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..expected.len()], expected, "{out:?}");
    let listing: Vec<&str> = lines[expected.len()].split_whitespace().collect();
    let mut sorted = listing.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
            "stdin", "stdout", "tty", "urandom", "zero"
        ],
        "{out:?}"
    );
}

fn mounts_and_sysctls() {
    let mut f = Fixture::new();
    let host_dir = f.dir.path().join("volume");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("file"), "from the host\n").unwrap();
    let mut spec = sh(
        &f,
        "cat /data/file; touch /data/new 2>/dev/null || echo ro-volume; \
         grep -E ' /(proc|dev|dev/pts|dev/shm|dev/mqueue|sys|sys/fs/cgroup|data|tmp) ' /proc/self/mountinfo | cut -d' ' -f5,6,8 | sort; \
         cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
         ls /sys/fs/cgroup/memory/memory.limit_in_bytes",
    );
    let mut mounts = spec.mounts().clone().unwrap();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source(host_dir.clone())
            .options(vec![
                "rbind".to_string(),
                "ro".to_string(),
                "rprivate".to_string(),
            ])
            .build()
            .unwrap(),
    );
    mounts.push(
        MountBuilder::default()
            .destination("/tmp")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec!["nosuid".to_string(), "size=1m".to_string()])
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    let out = f.run(&spec);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["from the host", "ro-volume"], "{out:?}");
    let mounted = |dest: &str, fstype: &str, ro: bool| {
        assert!(
            lines.iter().any(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                fields[0] == dest
                    && fields[2] == fstype
                    && fields[1].split(',').next() == Some(if ro { "ro" } else { "rw" })
            }),
            "{dest} {fstype} ro={ro} not in {out:?}"
        )
    };
    mounted("/proc", "proc", false);
    mounted("/dev", "tmpfs", false);
    mounted("/dev/pts", "devpts", false);
    mounted("/dev/shm", "tmpfs", false);
    mounted("/dev/mqueue", "mqueue", false);
    mounted("/sys", "sysfs", true);
    mounted("/sys/fs/cgroup", "tmpfs", true);
    mounted("/data", "ext4", true);
    mounted("/tmp", "tmpfs", false);
    assert!(lines.contains(&"0"), "sysctl not applied: {out:?}");
    assert!(
        lines.contains(&"/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        "{out:?}"
    );
    assert!(!host_mounts_mention(&host_dir));
}

fn readonly_root() {
    let mut f = Fixture::new();
    let mut spec = sh(&f, "touch /x 2>/dev/null || echo ro-root; touch /dev/shm/x && echo rw-shm; grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo | cut -d' ' -f6");
    spec.root_mut().as_mut().unwrap().set_readonly(Some(true));
    let out = f.run(&spec);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["ro-root", "rw-shm"], "{out:?}");
    assert!(lines[2].starts_with("ro,"), "{out:?}");
    assert!(!f.rootfs.join("x").exists());
}

fn exit_status_propagates() {
    let mut f = Fixture::new();
    let out = f.run(&sh(&f, "echo to-stderr >&2; exit 7"));
    assert_eq!(out.status, ExitStatus::Exited(7));
    assert_eq!(out.stderr, "to-stderr\n");
}

fn killed_by_signal() {
    let mut f = Fixture::new();
    let created = f.create(&f.spec(&["sleep", "100"]), Stdio::default());
    created.start().unwrap();
    assert!(f.runtime.state(&f.id).unwrap().is_running());
    f.runtime.kill(&f.id, libc::SIGKILL).unwrap();
    let status = f.wait(created.pid);
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(status.code(), 137);
    assert!(matches!(
        f.runtime.kill(&f.id, libc::SIGTERM),
        Err(RuntimeError::NotRunning { .. })
    ));
    f.runtime.delete(&f.id).unwrap();
}

fn command_not_found_is_127() {
    for command in ["no-such-command", "/bin/no-such-command"] {
        let mut f = Fixture::new();
        let created = f.create(&f.spec(&[command]), Stdio::default());
        let err = created.start().unwrap_err();
        f.forget(created.pid);
        assert!(matches!(err, RuntimeError::NotFound { .. }), "{err}");
        assert_eq!(err.exit_code(), 127);
        assert!(err.to_string().contains(command), "{err}");
        f.runtime.delete(&f.id).unwrap();
    }
}

fn command_not_executable_is_126() {
    let mut f = Fixture::new();
    std::fs::write(f.rootfs.join("bin/script"), "#!/bin/sh\necho hi\n").unwrap();
    let created = f.create(&f.spec(&["/bin/script"]), Stdio::default());
    let err = created.start().unwrap_err();
    f.forget(created.pid);
    assert!(matches!(err, RuntimeError::CannotExecute { .. }), "{err}");
    assert_eq!(err.exit_code(), 126);
    f.runtime.delete(&f.id).unwrap();
}

fn stdin_and_clean_process_state() {
    let mut f = Fixture::new();
    let input = f.dir.path().join("input");
    File::create(&input)
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    // A file descriptor the caller leaked without CLOEXEC must not reach the container.
    let leaked = File::open("/dev/null").unwrap();
    let leaked_fd = std::os::fd::AsRawFd::as_raw_fd(&leaked);
    rustix::io::fcntl_setfd(&leaked, rustix::io::FdFlags::empty()).unwrap();
    let out = f.run_with_stdin(
        &sh(&f, "cat; ls /proc/self/fd | tr '\\n' ' '"),
        Some(File::open(&input).unwrap().into()),
    );
    drop(leaked);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[..2], ["line one", "line two"]);
    // 0, 1, 2 and the directory ls reads; nothing inherited (the caller's fd was {leaked_fd}).
    assert_eq!(
        lines[2].split_whitespace().count(),
        4,
        "leaked fd {leaked_fd}: {out:?}"
    );
}

fn terminal_gets_a_pty() {
    let mut f = Fixture::new();
    let mut spec = sh(
        &f,
        "tty; stty size; readlink /proc/self/fd/1; test -c /dev/console && echo console",
    );
    let process = spec.process_mut().as_mut().unwrap();
    process.set_terminal(Some(true));
    process.set_console_size(Some(
        berth_runtime::oci_spec::runtime::BoxBuilder::default()
            .height(24u64)
            .width(100u64)
            .build()
            .unwrap(),
    ));
    let mut created = f.create(&spec, Stdio::default());
    let master = created.pty_master.take().expect("a pty master");
    created.start().unwrap();
    let output = read_pty(master);
    let status = f.wait(created.pid);
    assert_eq!(status, ExitStatus::Exited(0), "{output}");
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(
        lines,
        ["/dev/pts/0", "24 100", "/dev/pts/0", "console"],
        "{output:?}"
    );
    f.runtime.delete(&f.id).unwrap();
}

fn overlay_root_stays_in_the_container() {
    let mut f = Fixture::new();
    let layers = f.dir.path().join("layers");
    let lower = layers.join("lower");
    let upper = layers.join("upper");
    let work = layers.join("work");
    std::fs::create_dir_all(&layers).unwrap();
    std::fs::rename(&f.rootfs, &lower).unwrap();
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&f.rootfs).unwrap();

    let mut spec = sh(&f, "echo written > /new-file; rm /bin/stat; ls /bin/stat 2>&1 || echo gone; grep -c ' / / .* - overlay ' /proc/self/mountinfo");
    let mut mounts = vec![MountBuilder::default()
        .destination("/")
        .typ("overlay")
        .source("overlay")
        .options(vec![
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ])
        .build()
        .unwrap()];
    mounts.extend(spec.mounts().clone().unwrap());
    spec.set_mounts(Some(mounts));

    let out_path = f.dir.path().join("out");
    let stdio = Stdio {
        stdout: Some(File::create(&out_path).unwrap().into()),
        ..Stdio::default()
    };
    let created = f.create(&spec, stdio);
    // Created and mounted, yet invisible on the host.
    assert!(
        !host_mounts_mention(&f.rootfs),
        "overlay visible on the host"
    );
    created.start().unwrap();
    let status = f.wait(created.pid);
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "{stdout}");
    assert!(stdout.contains("gone"), "{stdout}");
    assert!(stdout.trim_end().ends_with('1'), "{stdout}");
    f.runtime.delete(&f.id).unwrap();

    assert_eq!(
        std::fs::read_to_string(upper.join("new-file")).unwrap(),
        "written\n"
    );
    assert!(!lower.join("new-file").exists());
    assert!(
        lower.join("bin/stat").exists(),
        "the lower layer was changed"
    );
    assert!(
        std::fs::read_dir(&f.rootfs).unwrap().next().is_none(),
        "rootfs dir not empty on the host"
    );
    assert!(!host_mounts_mention(&f.rootfs), "overlay left on the host");
}

fn exec_joins_the_container() {
    let mut f = Fixture::new();
    let spec = f.spec(&["sleep", "100"]);
    f.write_config(&spec);
    let created = f.create(&spec, Stdio::default());
    created.start().unwrap();

    let out_path = f.dir.path().join("exec-out");
    let process = ProcessBuilder::default()
        .args(vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; pwd; echo $X; grep -E '^(CapEff|Seccomp)' /proc/self/status; cat /proc/self/cgroup | grep memory".to_string(),
        ])
        .env(vec!["PATH=/bin".to_string(), "X=exec-env".to_string()])
        .cwd("/proc")
        .capabilities(spec.process().as_ref().unwrap().capabilities().clone().unwrap())
        .build()
        .unwrap();
    let exec = f
        .runtime
        .exec(
            &f.id,
            &process,
            Stdio {
                stdout: Some(File::create(&out_path).unwrap().into()),
                ..Stdio::default()
            },
        )
        .unwrap_or_else(|e| panic!("exec: {}", error_chain(&e)));
    f.children.push(exec.pid);
    exec.start().unwrap();
    let status = f.wait(exec.pid);
    let out = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], "1", "{out}");
    assert!(
        lines[0].parse::<u32>().unwrap() < 10,
        "not in the container's pid namespace: {out}"
    );
    assert_eq!(lines[1].trim(), "sleep 100", "{out}");
    assert_eq!(lines[2..5], ["berth-test", "/proc", "exec-env"], "{out}");
    assert_eq!(status_field(&out, "CapEff"), DOCKER_CAPS);
    assert_eq!(status_field(&out, "Seccomp"), "2");
    assert!(
        lines.last().unwrap().ends_with(":memory:/"),
        "cgroup: {out}"
    );

    // Not found is reported by exec's start too, and the process is reaped.
    let missing = ProcessBuilder::default()
        .args(vec!["missing".to_string()])
        .cwd("/")
        .build()
        .unwrap();
    let exec = f.runtime.exec(&f.id, &missing, Stdio::default()).unwrap();
    let err = exec.start().unwrap_err();
    assert_eq!(err.exit_code(), 127, "{err}");

    f.runtime.kill(&f.id, libc::SIGKILL).unwrap();
    assert_eq!(f.wait(created.pid), ExitStatus::Signaled(libc::SIGKILL));
    assert!(matches!(
        f.runtime.exec(&f.id, &process, Stdio::default()),
        Err(RuntimeError::NotRunning { .. })
    ));
    f.runtime.delete(&f.id).unwrap();
}

fn exec_with_terminal_and_user() {
    let mut f = Fixture::new();
    let spec = f.spec(&["sleep", "100"]);
    f.write_config(&spec);
    let created = f.create(&spec, Stdio::default());
    created.start().unwrap();

    let mut process = ProcessBuilder::default()
        .args(vec![
            "sh".to_string(),
            "-c".to_string(),
            "tty; id -u".to_string(),
        ])
        .env(vec!["PATH=/bin".to_string()])
        .cwd("/")
        .terminal(true)
        .build()
        .unwrap();
    let user = berth_runtime::oci_spec::runtime::UserBuilder::default()
        .uid(123u32)
        .gid(123u32)
        .build()
        .unwrap();
    process.set_user(user);
    let mut exec = f.runtime.exec(&f.id, &process, Stdio::default()).unwrap();
    f.children.push(exec.pid);
    let master = exec.pty_master.take().expect("pty master");
    exec.start().unwrap();
    let output = read_pty(master);
    assert_eq!(f.wait(exec.pid), ExitStatus::Exited(0), "{output}");
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{output:?}");
    assert_eq!(lines[1], "123", "{output:?}");
    f.runtime.delete(&f.id).unwrap();
    f.wait(created.pid);
}

fn cgroup_joined_and_removed() {
    let mut f = Fixture::new();
    let created = f.create(&f.spec(&["sleep", "100"]), Stdio::default());
    let procs = std::fs::read_to_string(f.cgroup_dir("memory").join("cgroup.procs")).unwrap();
    assert_eq!(
        procs.trim(),
        created.pid.to_string(),
        "init not in its memory cgroup"
    );
    created.start().unwrap();
    f.runtime.delete(&f.id).unwrap();
    assert!(matches!(f.wait(created.pid), ExitStatus::Signaled(_)));
    for controller in ["memory", "pids", "freezer", "cpu"] {
        assert!(
            !f.cgroup_dir(controller).exists(),
            "{controller} cgroup left behind"
        );
    }
    assert!(!berth_runtime::State::dir(f.runtime.state_root(), &f.id).exists());
}

fn pause_and_resume_freeze() {
    let mut f = Fixture::new();
    let created = f.create(
        &sh(&f, "while true; do echo x >> /tmp/ticks; sleep 0.02; done"),
        Stdio::default(),
    );
    created.start().unwrap();
    let ticks = f.rootfs.join("tmp/ticks");
    let count = || {
        std::fs::read_to_string(&ticks)
            .map(|s| s.len())
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(150));
    f.runtime.pause(&f.id).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let frozen = count();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count(), frozen, "the container kept running while paused");
    f.runtime.resume(&f.id).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(count() > frozen, "the container did not resume");
    f.runtime.delete(&f.id).unwrap();
    f.wait(created.pid);
}

fn failed_create_leaves_nothing() {
    let f = Fixture::new();
    let mut spec = f.spec(&["true"]);
    let mut mounts = spec.mounts().clone().unwrap();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source(PathBuf::from("/nonexistent/source"))
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    let err = f
        .runtime
        .create(&f.id, &f.bundle, &spec, Stdio::default())
        .unwrap_err();
    let text = error_chain(&err);
    assert!(
        text.contains("/data") && text.contains("bind source"),
        "{text}"
    );
    assert!(f.runtime.state(&f.id).is_err());
    for controller in ["memory", "pids", "freezer"] {
        assert!(
            !f.cgroup_dir(controller).exists(),
            "{controller} cgroup left behind"
        );
    }
    // No child left to reap.
    assert!(rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG).is_err());
}

fn user_namespace_maps_root() {
    let mut f = Fixture::new();
    let mut spec = sh(&f, "cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox; echo hi > /dev/null && echo devnull-ok");
    let linux = spec.linux_mut().as_mut().unwrap();
    let mut namespaces = linux.namespaces().clone().unwrap();
    namespaces.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(namespaces));
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(100_000u32)
        .size(65_536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    // The group range Docker allows to ping is not mapped in this user namespace.
    linux
        .sysctl_mut()
        .as_mut()
        .unwrap()
        .remove("net.ipv4.ping_group_range");
    let out = f.run(&spec);
    assert_eq!(out.status, ExitStatus::Exited(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(lines[1], "0");
    // Host root is unmapped inside: files it owns show as the overflow uid.
    assert_eq!(lines[2], "65534");
    assert_eq!(lines[3], "devnull-ok", "{out:?}");
}

/// Median of create + start + wait + delete of `/bin/true`, Docker's default spec (all six
/// namespaces, /sys/fs/cgroup, masked paths, seccomp), state on tmpfs, 50 runs after 5 warm-up
/// runs.
fn bench_create_start_wait_delete() {
    let f = Fixture::new().state_on_tmpfs();
    let spec = f.spec(&["/bin/true"]);
    let mut samples = Vec::new();
    let mut phases: [Vec<Duration>; 4] = Default::default();
    let mut cpu = Duration::ZERO;
    for i in 0..55 {
        let id = format!("{}-b{i}", f.id);
        let mut spec = spec.clone();
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some(PathBuf::from(format!(
                "/{}/{id}",
                support::CGROUP_PARENT
            ))));
        let cpu_before = cpu_time();
        let started = Instant::now();
        let created = f
            .runtime
            .create(&id, &f.bundle, &spec, Stdio::default())
            .unwrap();
        let t_create = started.elapsed();
        created.start().unwrap();
        let t_start = started.elapsed();
        let status = wait(created.pid).unwrap();
        let t_wait = started.elapsed();
        f.runtime.delete(&id).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(status, ExitStatus::Exited(0));
        if i >= 5 {
            cpu += cpu_time() - cpu_before;
            samples.push(elapsed);
            for (phase, t) in phases.iter_mut().zip([
                t_create,
                t_start - t_create,
                t_wait - t_start,
                elapsed - t_wait,
            ]) {
                phase.push(t);
            }
        }
    }
    for phase in phases.iter_mut() {
        phase.sort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "median per phase: create {:.2} ms, start {:.2} ms, wait {:.2} ms, delete {:.2} ms",
        ms(phases[0][25]),
        ms(phases[1][25]),
        ms(phases[2][25]),
        ms(phases[3][25])
    );
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "create+start+wait+delete of /bin/true: median {:.2} ms, min {:.2} ms, max {:.2} ms over {} runs",
        median.as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    );
    println!(
        "CPU time (user + system, caller and container) per container: {:.2} ms",
        cpu.as_secs_f64() * 1e3 / samples.len() as f64
    );
}

/// User + system time of this process and its reaped children.
fn cpu_time() -> Duration {
    let total = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut usage);
            usage
        };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    total(libc::RUSAGE_SELF) + total(libc::RUSAGE_CHILDREN)
}
