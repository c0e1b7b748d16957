//! The few system calls the container verbs make directly (the runtime does the rest): mount
//! namespace and overlay for a stopped container's files, the monitor's lock, and spawning the
//! monitor detached from the CLI. All of the engine's `unsafe` for containers is here.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Moves this process into a new mount namespace where nothing propagates back to the host.
pub fn private_mount_namespace() -> io::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    Ok(())
}

/// Mounts an overlay with options `data` on `target`.
pub fn mount_overlay(target: &Path, data: &str) -> io::Result<()> {
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )?;
    Ok(())
}

/// The monitor's lock file: held (exclusive `flock`) by a container's monitor for its whole
/// life, so "can I take the lock?" is "is the monitor gone?". The lock belongs to the open file
/// description: a CLI that takes it and passes the descriptor to the monitor it spawns hands
/// the lock over without a gap; it is released when the last descriptor closes (never
/// explicitly, so dropping the CLI's copy keeps the monitor's lock).
pub struct MonitorLock(File);

/// Result of trying the lock.
pub enum LockAttempt {
    Taken(MonitorLock),
    /// Someone (the monitor, or a starting CLI) holds it.
    Busy,
}

fn try_flock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

impl MonitorLock {
    /// Tries to take `<run_dir>/lock` without waiting, creating the directory and file.
    pub fn try_take(run_dir: &Path) -> io::Result<LockAttempt> {
        std::fs::create_dir_all(run_dir)?;
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(run_dir.join("lock"))?;
        Ok(if try_flock(&file)? {
            LockAttempt::Taken(MonitorLock(file))
        } else {
            LockAttempt::Busy
        })
    }

    /// Only probes the lock: true when a monitor holds it. A missing file means no monitor.
    pub fn is_held(run_dir: &Path) -> bool {
        let Ok(file) = File::open(run_dir.join("lock")) else {
            return false;
        };
        matches!(try_flock(&file), Ok(false))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Wraps an inherited, already locked descriptor (the monitor's side).
    pub fn from_fd(fd: OwnedFd) -> MonitorLock {
        MonitorLock(File::from(fd))
    }
}

/// Spawns `exe args…` as the leader of a new session (the CLI's terminal and the signals sent
/// to its process group never reach it), with stdio on `/dev/null` and `keep` (the lock and the
/// sync socket) inherited. Returns once it has exec'd.
///
/// One `posix_spawn` (glibc clones with `CLONE_VM | CLONE_VFORK`: no copy of the CLI's page
/// tables) rather than the classic double fork, which cost `run` about 0.7 ms. The spawned
/// process is this process's child until this process exits; nothing here waits for it, so a
/// long-lived caller must reap its children (or ignore `SIGCHLD`).
pub fn spawn_detached(exe: &Path, args: &[&std::ffi::OsStr], keep: &[RawFd]) -> io::Result<()> {
    use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let c_string = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let mut argv = vec![c_string(exe.as_os_str().as_bytes())?];
    for arg in args {
        argv.push(c_string(arg.as_bytes())?);
    }
    let env = std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            c_string(&pair)
        })
        .collect::<io::Result<Vec<CString>>>()?;

    let mut actions = PosixSpawnFileActions::init()?;
    for fd in 0..3 {
        let flags = if fd == 0 {
            nix::fcntl::OFlag::O_RDONLY
        } else {
            nix::fcntl::OFlag::O_WRONLY
        };
        actions.add_open(fd, "/dev/null", flags, nix::sys::stat::Mode::empty())?;
    }
    // Austin Group issue 411 (glibc ≥ 2.29): dup2 of a descriptor onto itself clears its
    // close-on-exec flag in the child only.
    for &fd in keep {
        actions.add_dup2(fd, fd)?;
    }
    let mut attr = PosixSpawnAttr::init()?;
    // Rust ignores SIGPIPE and the attach loop blocks signals: the monitor starts clean.
    let mut default_signals = nix::sys::signal::SigSet::empty();
    default_signals.add(nix::sys::signal::Signal::SIGPIPE);
    attr.set_sigdefault(&default_signals)?;
    attr.set_sigmask(&nix::sys::signal::SigSet::empty())?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::from_bits_retain(libc::POSIX_SPAWN_SETSID as libc::c_int),
    )?;
    posix_spawn(exe, &actions, &attr, &argv, &env)?;
    Ok(())
}

/// A connected pair of unix stream sockets (close-on-exec).
pub fn socket_pair() -> io::Result<(UnixStream, UnixStream)> {
    UnixStream::pair()
}

/// Takes ownership of an inherited descriptor number (the monitor's lock and sync socket).
///
/// # Safety
/// `fd` must be open and owned by nobody else in this process.
pub unsafe fn adopt_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller promises the descriptor is open and unowned.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    owned
}

/// Sends `signal` to `pid` (the monitor's own, not yet reaped child: its pid cannot have been
/// reused).
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A [`poll`] entry that waits for `fd` to become readable.
pub fn readable(fd: impl AsFd) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Blocks the signals in `mask` for this thread and returns a non-blocking descriptor that
/// reads them, so a [`poll`] loop can handle them between its other descriptors.
pub fn signal_fd(mask: &SigSet) -> io::Result<SignalFd> {
    mask.thread_block()?;
    Ok(SignalFd::with_flags(
        mask,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// `poll(2)` over raw descriptors, retried on `EINTR`; `timeout_ms` < 0 waits forever.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `madvise(MADV_DONTNEED)` on a read-only file mapping without private pages: drops the
/// page-table entries only; the pages come back from the page cache on the next use.
pub fn drop_code_pages(start: usize, len: usize) {
    // SAFETY: the range is a whole private, non-writable file mapping of this process with no
    // anonymous (modified) pages, checked by the caller from /proc/self/smaps: its contents
    // are exactly the file's, so MADV_DONTNEED cannot change what it reads.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}
