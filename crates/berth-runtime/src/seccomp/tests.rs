//! Kernel-level tests: install real filters in forked children, and timing.

use std::time::Instant;

use oci_spec::runtime::Capability;

use super::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What a child observed, one bit per failed expectation (0 = all as expected).
type Failures = i32;

/// Forks; the child sets no_new_privs, installs `program`, runs `check` and exits with its
/// failure bits. Returns the child's exit status.
fn in_filtered_child(program: &BpfProgram, check: fn() -> Failures) -> i32 {
    // SAFETY: the child only makes raw syscalls (prctl, seccomp, the probes) and `_exit`s;
    // it never returns into the test harness or allocates on success paths.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain prctl on the calling thread.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 || install(program).is_err() {
            // SAFETY: _exit never returns and runs no destructors in the forked child.
            unsafe { libc::_exit(100) };
        }
        let failures = check();
        // SAFETY: as above.
        unsafe { libc::_exit(failures) };
    }
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("filtered child did not exit normally: {other:?}"),
    }
}

/// `syscall(nr, a0, a1)` → Ok(ret) or Err(errno).
fn raw(
    nr: libc::c_long,
    a0: libc::c_long,
    a1: libc::c_long,
) -> std::result::Result<libc::c_long, i32> {
    // SAFETY: the probes pass only integers or null pointers.
    let rc = unsafe { libc::syscall(nr, a0, a1, 0, 0, 0) };
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

/// Probes run under Docker's default profile for the default capabilities.
fn default_caps_probes() -> Failures {
    let mut f = 0;
    let mut expect = |bit: i32, ok: bool| {
        if !ok {
            f |= 1 << bit;
        }
    };
    // SAFETY: getpid has no preconditions.
    expect(
        0,
        raw(libc::SYS_getpid, 0, 0) == Ok(libc::c_long::from(unsafe { libc::getpid() })),
    );
    expect(
        1,
        raw(libc::SYS_unshare, libc::CLONE_NEWNS as _, 0) == Err(libc::EPERM),
    );
    expect(2, raw(libc::SYS_mount, 0, 0) == Err(libc::EPERM));
    expect(3, raw(libc::SYS_clone3, 0, 0) == Err(libc::ENOSYS));
    expect(4, raw(libc::SYS_setns, -1, 0) == Err(libc::EPERM));
    // clone with a namespace flag is refused by the argument rule (before the kernel sees it)
    expect(
        5,
        raw(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as _,
            0,
        ) == Err(libc::EPERM),
    );
    // socket(AF_VSOCK) refused, socket(AF_UNIX) allowed
    expect(
        6,
        raw(
            libc::SYS_socket,
            libc::AF_VSOCK as _,
            libc::SOCK_STREAM as _,
        ) == Err(libc::EPERM),
    );
    let unix = raw(libc::SYS_socket, libc::AF_UNIX as _, libc::SOCK_STREAM as _);
    expect(7, unix.is_ok());
    // personality: query allowed, ADDR_NO_RANDOMIZE refused
    expect(8, raw(libc::SYS_personality, 0xffff_ffff, 0).is_ok());
    expect(
        9,
        raw(libc::SYS_personality, 0x0040_0000, 0) == Err(libc::EPERM),
    );
    // a syscall newer than the profile gets ENOSYS (listns, Linux 6.18)
    expect(10, raw(470, 0, 0) == Err(libc::ENOSYS));
    // fork (clone without namespace flags) still works
    // SAFETY: the grandchild _exits at once.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: _exit in the forked grandchild.
        unsafe { libc::_exit(0) };
    }
    expect(11, pid > 0);
    f
}

#[test]
fn default_profile_blocks_namespaces_and_mount_but_not_getpid() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let program = compile(&docker_default(&DOCKER_DEFAULT_CAPS)).unwrap();
    let failures = in_filtered_child(&program, default_caps_probes);
    assert_eq!(
        failures, 0,
        "failed probes (bit = probe number): {failures:#b}"
    );
}

#[test]
fn cap_sys_admin_profile_allows_unshare() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut caps = DOCKER_DEFAULT_CAPS.to_vec();
    caps.push(Capability::SysAdmin);
    let program = compile(&docker_default(&caps)).unwrap();
    let failures = in_filtered_child(&program, || {
        let mut f = 0;
        // root in the child, so the kernel grants it once the filter lets it through
        if raw(libc::SYS_unshare, libc::CLONE_NEWNS as _, 0).is_err() {
            f |= 1;
        }
        // clone3 with a NULL args pointer reaches the kernel: EFAULT or EINVAL, not ENOSYS
        if raw(libc::SYS_clone3, 0, 0) == Err(libc::ENOSYS) {
            f |= 2;
        }
        f
    });
    assert_eq!(failures, 0, "failed probes: {failures:#b}");
}

#[test]
fn install_rejects_empty_program() {
    assert!(matches!(
        install(&Vec::new()),
        Err(SeccompError::EmptyProgram)
    ));
}

/// Compile cost of the default profile (runs on every container start); prints the figures.
#[test]
fn compile_time_of_default_profile() {
    let profile = docker_default(&DOCKER_DEFAULT_CAPS);
    let mut samples = Vec::with_capacity(200);
    let mut len = 0;
    for _ in 0..200 {
        let start = Instant::now();
        let program = compile(&profile).unwrap();
        samples.push(start.elapsed());
        len = program.len();
    }
    samples.sort();
    let mut gen = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        let p = docker_default(&DOCKER_DEFAULT_CAPS);
        gen.push(start.elapsed());
        std::hint::black_box(p);
    }
    gen.sort();
    eprintln!(
        "seccomp: default profile → {len} BPF instructions; compile median {:?} (p90 {:?}); \
         docker_default() median {:?}",
        samples[100], samples[180], gen[100]
    );
    // Generous bound: this catches an accidental blow-up, not a regression of microseconds.
    assert!(samples[100].as_millis() < 20);
}
