//! The client side of the monitor's attach protocol: `run`/`start -a`/`attach` streams
//! (output out, stdin in, signals forwarded, Ctrl-P Ctrl-Q to detach, terminal resizes) and the
//! plain "tell me when it exits" connection that `wait` and `stop` use.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::signal::{SigSet, Signal};

use super::state::{Container, ContainerState};
use super::{run_dir, sys};
use crate::monitor::protocol::{Frame, HELLO_OUTPUT, HELLO_STDIN};
use crate::monitor::SOCKET;
use crate::{Engine, EngineError, Result};

/// Docker's default detach keys: Ctrl-P, Ctrl-Q.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Signals forwarded to the container in the foreground (Docker's `--sig-proxy`).
const PROXIED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How an attached session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited with this status.
    Exited(i32),
    /// The user detached with Ctrl-P Ctrl-Q.
    Detached,
    /// The monitor went away without saying how the container ended.
    Lost,
}

/// What the attached client does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// The container has a tty: raw mode here, resizes forwarded.
    pub tty: bool,
    /// Forward INT/TERM/… to the container (not with a tty, where they are keystrokes).
    pub sig_proxy: bool,
}

/// Connects to the monitor of the container with run directory `run_dir`.
pub fn connect(run_dir: &Path) -> io::Result<UnixStream> {
    // Through the directory's descriptor: the full path may be longer than a socket address.
    let dir = std::fs::File::open(run_dir)?;
    let path = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), SOCKET);
    UnixStream::connect(path)
}

impl Engine {
    /// Connects to a running container's monitor.
    pub fn connect_monitor(&self, container: &Container) -> Result<UnixStream> {
        connect(&run_dir(self.runroot(), &container.id)).map_err(|_| {
            EngineError::Conflict(format!("Container {} is not running", container.id))
        })
    }

    /// `attach`: connects to the container's monitor for its output (and stdin).
    pub fn attach_container(&self, name_or_id: &str) -> Result<(Container, UnixStream)> {
        let container = self.container(name_or_id)?;
        match container.state {
            ContainerState::Running | ContainerState::Restarting => {}
            ContainerState::Paused => {
                return Err(EngineError::Conflict(
                    "You cannot attach to a paused container, unpause it first".into(),
                ))
            }
            _ => {
                return Err(EngineError::Conflict(
                    "You cannot attach to a stopped container, start it first".into(),
                ))
            }
        }
        let stream = self.connect_monitor(&container)?;
        self.container_event(&container.id, "attach", &[]);
        Ok((container, stream))
    }
}

/// Waits on a monitor connection for the container's exit status; `None` when the monitor
/// closed without one (it had finished: read the database).
pub fn wait_exit(stream: &mut UnixStream) -> Option<i32> {
    if Frame::Hello(0).send(stream).is_err() {
        return None;
    }
    loop {
        match Frame::recv(stream) {
            Ok(Some(Frame::Exit(code))) | Ok(Some(Frame::Error(code, _))) => return Some(code),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// Restores the terminal mode on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: rustix::termios::Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Option<RawMode<'a>> {
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(self.fd, rustix::termios::OptionalActions::Now, &self.saved);
    }
}

fn write_fd(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Streams an attached session until the container exits or the user detaches.
pub fn stream(mut conn: UnixStream, opts: AttachOptions) -> io::Result<AttachEnd> {
    let stdin_fd = io::stdin().as_fd().try_clone_to_owned()?;
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut flags = HELLO_OUTPUT;
    if opts.stdin {
        flags |= HELLO_STDIN;
    }
    // A container that exits at once may be over before we get here: its monitor has then sent
    // the output and the exit and closed the connection, so writes fail with EPIPE while all
    // of it still waits to be read below. Failed writes must never end the session.
    let _ = Frame::Hello(flags).send(&mut conn);

    let is_tty = rustix::termios::isatty(&stdin_fd);
    let _raw = if opts.tty && opts.stdin && is_tty {
        RawMode::enter(stdin_fd.as_fd())
    } else {
        None
    };
    if opts.tty {
        if let Ok(size) = rustix::termios::tcgetwinsize(&stdout) {
            if size.ws_row > 0 {
                let _ = Frame::Resize(size.ws_row, size.ws_col).send(&mut conn);
            }
        }
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    if opts.sig_proxy && !opts.tty {
        for s in PROXIED {
            mask.add(s);
        }
    }
    let sigfd = sys::signal_fd(&mask)?;

    let mut stdin_open = opts.stdin;
    let mut inbuf: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut prev_ctrl_p = false;
    loop {
        let mut fds = vec![sys::readable(&conn), sys::readable(&sigfd)];
        if stdin_open {
            fds.push(sys::readable(&stdin_fd));
        }
        sys::poll(&mut fds, -1)?;
        if fds[0].revents != 0 {
            let n = match conn.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                return Ok(AttachEnd::Lost);
            }
            inbuf.extend_from_slice(&buf[..n]);
            while let Some((frame, used)) = Frame::decode(&inbuf)? {
                inbuf.drain(..used);
                match frame {
                    Frame::Stdout(d) => write_fd(stdout.as_fd(), &d),
                    Frame::Stderr(d) => write_fd(stderr.as_fd(), &d),
                    Frame::Exit(code) | Frame::Error(code, _) => {
                        return Ok(AttachEnd::Exited(code))
                    }
                    _ => {}
                }
            }
        }
        if fds[1].revents != 0 {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH {
                    if let Ok(size) = rustix::termios::tcgetwinsize(&stdout) {
                        let _ = Frame::Resize(size.ws_row, size.ws_col).send(&mut conn);
                    }
                } else {
                    let _ = Frame::Signal {
                        signal: signo,
                        manual: false,
                    }
                    .send(&mut conn);
                }
            }
        }
        if stdin_open && fds.get(2).is_some_and(|p| p.revents != 0) {
            let n = match rustix::io::read(&stdin_fd, &mut buf) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
                Err(_) => 0,
            };
            if n == 0 {
                stdin_open = false;
                let _ = Frame::Stdin(Vec::new()).send(&mut conn);
                continue;
            }
            let data = &buf[..n];
            if opts.tty {
                // Ctrl-P Ctrl-Q detaches; a lone Ctrl-P is held until the next key.
                let mut out = Vec::with_capacity(n + 1);
                for &b in data {
                    if prev_ctrl_p {
                        prev_ctrl_p = false;
                        if b == DETACH_KEYS[1] {
                            if !out.is_empty() {
                                let _ = Frame::Stdin(out).send(&mut conn);
                            }
                            return Ok(AttachEnd::Detached);
                        }
                        out.push(DETACH_KEYS[0]);
                    }
                    if b == DETACH_KEYS[0] {
                        prev_ctrl_p = true;
                    } else {
                        out.push(b);
                    }
                }
                if !out.is_empty() && Frame::Stdin(out).send(&mut conn).is_err() {
                    stdin_open = false;
                }
            } else if Frame::Stdin(data.to_vec()).send(&mut conn).is_err() {
                stdin_open = false;
            }
        }
        let _ = io::stdout().flush();
    }
}
