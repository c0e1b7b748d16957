//! The runtime's raw kernel interface: the few system calls that neither `rustix` nor `nix`
//! wraps safely (a fork-like `clone(2)` with namespace flags, the raw signal disposition
//! reset, `close_range(2)`, `mount_setattr(2)`, `pidfd_send_signal(2)`, `_exit(2)`).
//!
//! All of the runtime's own kernel-facing `unsafe` (the `cgroups` and `seccomp` modules keep
//! theirs) lives here, so the contracts can be audited in one place (youki keeps the same
//! boundary in `syscall/linux.rs`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Which side of a [`clone_process`] call we are on.
pub(crate) enum CloneResult {
    /// In the parent; holds the child's pid (in the parent's pid namespace).
    Parent(i32),
    /// In the new child process.
    Child,
}

/// Forks the calling process with `clone(2)` and the given `CLONE_NEW*` flags.
///
/// The raw system call is used with a null stack, which makes it behave exactly like `fork(2)`
/// (the child runs on a copy-on-write copy of the caller's stack and returns here), while still
/// accepting namespace flags in the same call: one system call creates the process *and* its
/// mount, pid, uts, ipc, net and user namespaces. `clone3` would add nothing we use (no
/// `CLONE_INTO_CGROUP` on v1 hosts) and is blocked by some seccomp sandboxes, so plain `clone`
/// keeps one code path. glibc's `fork` wrapper cannot take namespace flags, and `unshare` cannot
/// move the caller itself into a new pid namespace.
///
/// The child must only run code that is safe after a fork of a single-threaded process and must
/// leave with `_exit`, never by returning into the caller's code.
///
/// # Safety
///
/// The calling process must be single-threaded. Like after `fork(2)` without glibc's atfork
/// handlers, locks held by *other* threads (malloc arenas, stdio) would stay locked forever in
/// the child. [`thread_count`] lets callers check this.
pub(crate) unsafe fn clone_process(namespace_flags: u64) -> io::Result<CloneResult> {
    let flags = namespace_flags | libc::SIGCHLD as u64;
    // SAFETY: `clone` with a null stack pointer and no CLONE_VM/CLONE_THREAD/CLONE_SETTLS gives
    // the child a private copy of the address space, like fork(2); the pointer arguments
    // (parent_tid, child_tid, tls) are unused (0) because no flag asks for them. The caller
    // guarantees the process is single-threaded (see the function's safety contract).
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(pid as i32)),
    }
}

/// Number of threads of the calling process, from the link count of `/proc/self/task`
/// (`nlink = 2 + threads`): one `stat(2)`, no parsing.
pub(crate) fn thread_count() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self/task")?
        .nlink()
        .saturating_sub(2))
}

/// Resets every catchable signal to its default disposition and unblocks all signals.
///
/// Ignored signals and the signal mask survive `execve(2)`; the caller (a Rust program, which
/// ignores `SIGPIPE` at start-up, or a monitor with its own mask) must not leak them into the
/// container process. Handlers are reset too, because they point into the caller's code.
pub(crate) fn reset_signals() -> io::Result<()> {
    // The raw system call, not glibc's sigaction(3): glibc refuses to touch the two real-time
    // signals it reserves (32, 33), and those can arrive ignored from the caller's ancestors.
    // An all-zero kernel `struct sigaction` is SIG_DFL, no flags, empty mask on every
    // architecture; 4 words cover the largest layout.
    let default_action = [0u64; 4];
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default_action` (valid for the call, large enough for the
        // kernel's struct) and writes nothing (null old-action pointer); 8 is the size of the
        // kernel's signal set.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: `set` is a valid, initialised sigset_t living across the call.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every file descriptor from `first` up as close-on-exec (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`, Linux ≥ 5.11), so nothing of the caller leaks into the container.
pub(crate) fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range takes plain integers and only changes fd flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends signal number `signal` (any, including real-time ones) to the process behind `pidfd`.
///
/// A pidfd names one process for its whole life, so a recycled pid can never be signalled by
/// mistake once the pidfd has been checked.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a null siginfo pointer
    // (meaning "as kill(2) would") and zero flags; nothing is written to our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the process now, like `_exit(2)`: no atexit handlers, no flushing of stdio buffers
/// inherited from the caller (which would duplicate the caller's pending output).
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it terminates the process without returning.
    unsafe { libc::_exit(code) }
}

/// `MOUNT_ATTR_*` bits of `mount_setattr(2)` (`<linux/mount.h>`).
pub(crate) mod mount_attr {
    pub(crate) const RDONLY: u64 = 0x1;
    pub(crate) const NOSUID: u64 = 0x2;
    pub(crate) const NODEV: u64 = 0x4;
    pub(crate) const NOEXEC: u64 = 0x8;
    pub(crate) const NODIRATIME: u64 = 0x80;
}

/// Sets `attr_set` ([`mount_attr`] bits) on the mount at `path` and on every mount below it,
/// in one `mount_setattr(2)` call with `AT_RECURSIVE` (Linux ≥ 5.12), where a remount per
/// mount would take one system call each.
pub(crate) fn set_mount_attributes_recursive(path: &str, attr_set: u64) -> io::Result<()> {
    /// `struct mount_attr`.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let path = std::ffi::CString::new(path).map_err(|_| io::ErrorKind::InvalidInput)?;
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is a NUL-terminated string and `attr` a `struct mount_attr` of the size
    // passed; both outlive the call, and the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
