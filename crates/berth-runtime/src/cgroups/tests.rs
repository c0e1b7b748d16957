//! Root-only tests against the host's real cgroup filesystem: every test works in its own
//! `/berth-test-<pid>-<n>` cgroup, removed by a guard even when the test fails. They skip
//! when not root or when a controller they need is missing. The host's v1 hierarchies are
//! used under `/sys/fs/cgroup`; on a hybrid host the (controller-less) cgroup2 at
//! `/sys/fs/cgroup/unified` exercises the v2 freezer, kill and removal paths.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use super::*;

const ROOT: &str = "/sys/fs/cgroup";

fn unique_path() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/berth-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Destroys the cgroup when dropped, whatever happened in the test.
struct Guard(CgroupManager);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(err) = self.0.destroy() {
            eprintln!("cleanup of {}: {err}", self.0.path());
        }
    }
}

impl std::ops::Deref for Guard {
    type Target = CgroupManager;
    fn deref(&self) -> &CgroupManager {
        &self.0
    }
}

/// Reaps the child (killing it first) when dropped.
struct Child(Pid);

impl Child {
    /// Forks a child that sleeps in `pause()` until killed.
    fn sleeping() -> Child {
        // SAFETY: the child only calls pause/_exit, which are async-signal-safe.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            },
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            pid => Child(Pid::from_raw(pid)),
        }
    }

    fn pid(&self) -> i32 {
        self.0.as_raw()
    }

    /// Waits for the child and returns how it ended.
    fn wait(self) -> WaitStatus {
        let status = waitpid(self.0, None).expect("waitpid");
        std::mem::forget(self);
        status
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        false
    } else {
        eprintln!("skipped: needs root");
        true
    }
}

/// A manager for a fresh test cgroup on the v1 host root, or None (skip) when the host is
/// not v1 or lacks `controllers`.
fn v1_manager(controllers: &[&str]) -> Option<Guard> {
    if skip_unless_root() {
        return None;
    }
    let mgr = CgroupManager::new(Path::new(ROOT), &unique_path()).expect("new");
    if mgr.is_v2() {
        eprintln!("skipped: {ROOT} is cgroup v2");
        return None;
    }
    for c in controllers {
        if !Path::new(ROOT).join(c).is_dir() {
            eprintln!("skipped: no {c} hierarchy");
            return None;
        }
    }
    Some(Guard(mgr))
}

/// A manager on the host's cgroup2 (`/sys/fs/cgroup` if unified, else `unified/`).
fn v2_manager() -> Option<Guard> {
    if skip_unless_root() {
        return None;
    }
    for root in [ROOT, "/sys/fs/cgroup/unified"] {
        if let Ok(mgr) = CgroupManager::new(Path::new(root), &unique_path()) {
            if mgr.is_v2() {
                return Some(Guard(mgr));
            }
        }
    }
    eprintln!("skipped: no cgroup2 mount");
    None
}

fn v1_file(controller: &str, path: &str, file: &str) -> String {
    let p: PathBuf = [ROOT, controller, path.trim_start_matches('/'), file]
        .iter()
        .collect();
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn limits() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(32 << 20)
                .swap(64 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(20_000)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn v1_limits_are_written() {
    let Some(cg) = v1_manager(&["memory", "cpu", "pids"]) else {
        return;
    };
    cg.apply(Some(&limits())).unwrap();
    let path = cg.path().to_owned();
    assert_eq!(
        v1_file("memory", &path, "memory.limit_in_bytes"),
        "33554432"
    );
    if Path::new(ROOT)
        .join("memory/memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            v1_file("memory", &path, "memory.memsw.limit_in_bytes"),
            "67108864"
        );
    }
    assert_eq!(v1_file("cpu", &path, "cpu.shares"), "512");
    assert_eq!(v1_file("cpu", &path, "cpu.cfs_quota_us"), "20000");
    assert_eq!(v1_file("cpu", &path, "cpu.cfs_period_us"), "100000");
    assert_eq!(v1_file("pids", &path, "pids.max"), "64");

    // update: raise the limit above the current memory+swap limit (swap is written first)
    let raised = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(128 << 20)
                .swap(256 << 20)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .build()
        .unwrap();
    cg.update(&raised).unwrap();
    assert_eq!(
        v1_file("memory", &path, "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(v1_file("pids", &path, "pids.max"), "max");

    let stats = cg.stats().unwrap();
    assert_eq!(stats.memory_limit, 128 << 20);
    assert_eq!(stats.pids_current, 0);
}

/// `update` writes limits only to a cgroup that exists: a container that is gone must not
/// leave an empty cgroup behind.
#[test]
fn update_refuses_a_missing_cgroup() {
    let pids = || {
        LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(8).build().unwrap())
            .build()
            .unwrap()
    };
    for cg in [v1_manager(&["pids"]), v2_manager()].into_iter().flatten() {
        let err = cg.update(&pids()).unwrap_err();
        assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");
        assert!(cg.pids().is_err(), "update created {}", cg.path());
    }
    if let Some(cg) = v1_manager(&["pids"]) {
        cg.apply(None).unwrap();
        cg.update(&pids()).unwrap();
        assert_eq!(v1_file("pids", cg.path(), "pids.max"), "8");
    }
}

/// add_task, pids, freeze/thaw, destroy killing the task and removing every directory.
fn lifecycle(cg: &Guard, dirs: &[PathBuf]) {
    cg.apply(None).unwrap();
    for d in dirs {
        assert!(d.is_dir(), "{} not created", d.display());
    }
    let child = Child::sleeping();
    cg.add_task(child.pid()).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.pid()]);

    assert!(!cg.is_frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    // destroy a frozen cgroup: it must thaw, kill and remove
    cg.freeze().unwrap();
    cg.destroy().unwrap();
    match child.wait() {
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => {}
        other => panic!("child not killed by destroy: {other:?}"),
    }
    for d in dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // destroying again is fine
    cg.destroy().unwrap();
}

#[test]
fn v1_task_freeze_pids_destroy() {
    let Some(cg) = v1_manager(&["freezer", "pids", "memory"]) else {
        return;
    };
    let rel = cg.path().trim_start_matches('/').to_owned();
    let dirs: Vec<PathBuf> = ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"]
        .iter()
        .map(|c| Path::new(ROOT).join(c))
        .filter(|p| p.is_dir())
        .map(|p| p.join(&rel))
        .collect();
    lifecycle(&cg, &dirs);
}

#[test]
fn v2_task_freeze_pids_destroy() {
    let Some(cg) = v2_manager() else { return };
    let root = if Path::new(ROOT).join("cgroup.controllers").exists() {
        PathBuf::from(ROOT)
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    };
    let dir = root.join(cg.path().trim_start_matches('/'));
    lifecycle(&cg, &[dir]);
}

#[test]
fn v1_oom_kill_is_reported() {
    let Some(cg) = v1_manager(&["memory"]) else {
        return;
    };
    let limit = 8 << 20;
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(Some(&resources)).unwrap();
    assert!(!cg.oom_killed().unwrap());

    // The child waits on a pipe until it is in the cgroup, then touches 64 MiB.
    let (rd, wr) = nix::unistd::pipe().unwrap();
    // SAFETY: the child uses only read, mmap, memory writes and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a stack buffer from a valid fd.
        unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&rd),
                b.as_mut_ptr().cast(),
                1,
            )
        };
        let size = 64usize << 20;
        // SAFETY: a fresh private anonymous mapping, written only within its bounds.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                libc::_exit(2);
            }
            let p = p.cast::<u8>();
            for off in (0..size).step_by(4096) {
                p.add(off).write_volatile(1);
            }
            libc::_exit(0);
        }
    }
    let child = Child(Pid::from_raw(pid));
    drop(rd);
    cg.add_task(pid).unwrap();
    nix::unistd::write(&wr, b"x").unwrap();
    match child.wait() {
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => {}
        other => panic!("child not OOM-killed: {other:?}"),
    }
    assert!(cg.oom_killed().unwrap());
}

/// Cost of a container's cgroup lifecycle on this host; prints the medians.
#[test]
fn lifecycle_timing() {
    let Some(first) = v1_manager(&[]).or_else(v2_manager) else {
        return;
    };
    drop(first);
    let root = Path::new(ROOT);
    let (mut create, mut add, mut destroy) = (Vec::new(), Vec::new(), Vec::new());
    let resources = limits();
    for _ in 0..30 {
        let child = Child::sleeping();
        let t = Instant::now();
        let cg = CgroupManager::new(root, &unique_path()).unwrap();
        if cg.is_v2() && !root.join("cgroup.controllers").exists() {
            return;
        }
        cg.apply(Some(&resources)).unwrap();
        create.push(t.elapsed());
        let guard = Guard(cg);
        let t = Instant::now();
        guard.add_task(child.pid()).unwrap();
        add.push(t.elapsed());
        // the container exits before teardown, as in `run --rm`
        drop(child);
        let t = Instant::now();
        guard.destroy().unwrap();
        destroy.push(t.elapsed());
    }
    // teardown with a live task (kill path)
    let mut kill = Vec::new();
    for _ in 0..10 {
        let child = Child::sleeping();
        let cg = Guard(CgroupManager::new(root, &unique_path()).unwrap());
        cg.apply(Some(&resources)).unwrap();
        cg.add_task(child.pid()).unwrap();
        let t = Instant::now();
        cg.destroy().unwrap();
        kill.push(t.elapsed());
        drop(child);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (c, a, d, k) = (
        median(&mut create),
        median(&mut add),
        median(&mut destroy),
        median(&mut kill),
    );
    eprintln!(
        "cgroups ({}): new+apply {c:?}, add_task {a:?}, destroy (empty) {d:?}, total {:?}; \
         destroy with a live task {k:?}",
        if CgroupManager::new(root, "/x").unwrap().is_v2() {
            "v2"
        } else {
            "v1"
        },
        c + a + d
    );
}

#[test]
fn invalid_paths_are_refused() {
    for bad in ["/", "", "/berth/../etc", "/berth//x", "./x"] {
        let err = CgroupManager::new(Path::new(ROOT), bad).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(validate_path("/berth/abc/").unwrap(), "berth/abc");
}

#[test]
fn destroy_error_lists_every_failure() {
    let err = CgroupError::Destroy {
        path: "/berth/x".into(),
        errors: vec![
            CgroupError::Remove {
                path: "/sys/fs/cgroup/memory/berth/x".into(),
                err: io::Error::from_raw_os_error(libc::EBUSY),
            },
            CgroupError::Remove {
                path: "/sys/fs/cgroup/pids/berth/x".into(),
                err: io::Error::from_raw_os_error(libc::EBUSY),
            },
        ],
    };
    let msg = err.to_string();
    assert!(
        msg.contains("memory/berth/x") && msg.contains("pids/berth/x"),
        "{msg}"
    );
    assert!(msg.contains("busy"), "{msg}");
}
