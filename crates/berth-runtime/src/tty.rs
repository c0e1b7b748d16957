//! The container's terminal (`process.terminal`).
//!
//! The pty is allocated *inside* the container, from its own devpts instance (`/dev/ptmx ->
//! pts/ptmx`), after `pivot_root` or `setns` into its mount namespace: the slave then shows up
//! as `/dev/pts/0` in the container and `tty`, `ttyname(3)` and `/proc/self/fd/0` agree. The
//! master goes back to the caller over the sync channel.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;

/// Errors while setting up the terminal.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step} for the container's terminal")]
pub struct TtyError {
    step: &'static str,
    #[source]
    source: io::Error,
}

fn failed(step: &'static str) -> impl FnOnce(rustix::io::Errno) -> TtyError {
    move |e| TtyError {
        step,
        source: e.into(),
    }
}

/// An allocated pty: the master for the caller, the slave for the process.
pub(crate) struct Pty {
    pub(crate) master: OwnedFd,
    pub(crate) slave: OwnedFd,
    /// The slave's path in the container (`/dev/pts/0`).
    pub(crate) slave_path: PathBuf,
}

/// Opens a pty pair in the current mount namespace's `/dev/ptmx`, sized `rows × cols` when
/// given.
pub(crate) fn open_pty(size: Option<(u16, u16)>) -> Result<Pty, TtyError> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(failed("open /dev/ptmx"))?;
    rustix::pty::unlockpt(&master).map_err(failed("unlock the pty"))?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(failed("name the pty slave"))?;
    let slave_path = PathBuf::from(name.to_string_lossy().into_owned());
    let slave = rustix::fs::open(
        &slave_path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed("open the pty slave"))?;
    if let Some((rows, cols)) = size {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, size).map_err(failed("set the window size"))?;
    }
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

/// Makes the slave the controlling terminal of the (new, see `setsid`) session and the
/// process's stdin, stdout and stderr.
pub(crate) fn attach(slave: &OwnedFd) -> Result<(), TtyError> {
    rustix::process::ioctl_tiocsctty(slave).map_err(failed("make the pty the controlling tty"))?;
    rustix::stdio::dup2_stdin(slave.as_fd()).map_err(failed("make the pty stdin"))?;
    rustix::stdio::dup2_stdout(slave.as_fd()).map_err(failed("make the pty stdout"))?;
    rustix::stdio::dup2_stderr(slave.as_fd()).map_err(failed("make the pty stderr"))?;
    Ok(())
}

/// Bind-mounts the slave on `/dev/console` (created as a mount point during rootfs set-up).
pub(crate) fn mount_console(slave_path: &Path) -> Result<(), TtyError> {
    nix::mount::mount(
        Some(slave_path),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| TtyError {
        step: "bind the pty on /dev/console",
        source: e.into(),
    })
}
