//! The few system calls the container verbs make directly (the runtime does the rest): mount
//! namespace and overlay for a stopped container's files, the monitor's lock, and spawning the
//! monitor detached from the CLI. All of the engine's `unsafe` for containers is here.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::mount::MsFlags;

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

/// Spawns `exe args…` as a session leader that is *not* a child of this process (double
/// fork), with stdio on `/dev/null` and `keep` (the lock and the sync socket) inherited.
/// Returns once the intermediate child has exited; the grandchild has exec'd by then (std's
/// spawn waits for exec through its close-on-exec error pipe, which the grandchild holds).
pub fn spawn_detached(exe: &Path, args: &[&std::ffi::OsStr], keep: &[RawFd]) -> io::Result<()> {
    let keep: Vec<RawFd> = keep.to_vec();
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (setsid, fork, _exit, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            match libc::fork() {
                -1 => return Err(io::Error::last_os_error()),
                0 => {}
                _ => libc::_exit(0),
            }
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    child.wait()?;
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
