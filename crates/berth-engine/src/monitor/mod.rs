//! The per-container monitor: a small, single-threaded process that outlives the CLI.
//!
//! `berth start` re-executes the berth binary as `berth monitor <id>` (detached: in its own
//! session — see `container::sys::spawn_detached`), handing it the
//! container's lock (held for the monitor's whole life, which is how a dead monitor is
//! noticed) and one end of a socket pair, the first attach client. The monitor then:
//!
//! 1. creates and starts the container with the runtime, as **its** child, with pipes (or the
//!    pty master) for stdio;
//! 2. records `running` and answers the CLI with [`protocol::Frame::Started`] (or
//!    [`protocol::Frame::Error`] with 125/126/127);
//! 3. polls the container's output (written to the json-file log and to attached clients),
//!    client input and requests (stdin, resize, signal, stop) and the init's pidfd;
//! 4. when the init ends: drains the output, reads the cgroup's OOM flag, deletes the runtime
//!    container, records the exit, applies the restart policy (Docker's backoff: 100 ms doubling
//!    to 1 min, reset after 10 s of running) or `--rm`, tells every client
//!    [`protocol::Frame::Exit`], and exits.
//!
//! It allocates little and frees what set-up used (`malloc_trim`), and never starts a thread:
//! the runtime forks, and forking a multi-threaded process is unsafe.

pub mod log;
pub mod protocol;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_image::store::Store;
use berth_runtime::oci_spec::runtime::Spec;
use berth_runtime::{ExitStatus, RuntimeError, Stdio};
use rusqlite::{params, Connection};

use crate::container::state::{self, ContainerState, Exit};
use crate::container::sys::MonitorLock;
use crate::container::{self as ctr, Config, HostConfig};
use log::{JsonLog, Stream};
use protocol::{Frame, HELLO_OUTPUT, HELLO_STDIN};

/// Name of the attach socket in the container's run directory.
pub const SOCKET: &str = "attach.sock";

/// How much of the container's stdin is buffered before its sender is throttled.
const STDIN_HIGH_WATER: usize = 64 * 1024;
/// How long the output is drained after the init exits.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a started container runs before the monitor frees what set-up used.
const SETTLE: Duration = Duration::from_millis(100);
/// Docker's restart backoff.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// Manual-stop levels stored in the `manual_stop` column.
pub const STOPPED_BY_KILL: i64 = 1;
pub const STOPPED_BY_STOP: i64 = 2;

/// What `berth monitor` was given.
#[derive(Debug)]
pub struct MonitorArgs {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub id: String,
    /// The starting CLI's end of the socket pair.
    pub sync_fd: Option<RawFd>,
    /// The container's lock, already taken by the CLI.
    pub lock_fd: RawFd,
}

impl MonitorArgs {
    /// The command line `berth` starts its monitor with (after the program name).
    pub fn to_command_line(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--runroot".into(),
            self.runroot.clone().into(),
            "monitor".into(),
            self.id.clone().into(),
        ];
        if let Some(fd) = self.sync_fd {
            args.extend(["--sync-fd".into(), fd.to_string().into()]);
        }
        args.extend(["--lock-fd".into(), self.lock_fd.to_string().into()]);
        args
    }

    /// Reads back exactly what [`MonitorArgs::to_command_line`] writes, so that `main` can
    /// start a monitor without building the CLI's whole parser (and its logging) first: the
    /// monitor is on the path of every `run`. Anything else is `None`, for the full parser.
    pub fn from_command_line(args: &[OsString]) -> Option<MonitorArgs> {
        let text = |i: usize| args.get(i).and_then(|a| a.to_str());
        let fd = |i: usize| text(i)?.parse::<RawFd>().ok();
        if text(0)? != "--root" || text(2)? != "--runroot" || text(4)? != "monitor" {
            return None;
        }
        let (sync_fd, lock_at) = match text(6)? {
            "--sync-fd" => (Some(fd(7)?), 8),
            _ => (None, 6),
        };
        if text(lock_at)? != "--lock-fd" || args.len() != lock_at + 2 {
            return None;
        }
        Some(MonitorArgs {
            root: PathBuf::from(&args[1]),
            runroot: PathBuf::from(&args[3]),
            id: text(5)?.to_string(),
            sync_fd,
            lock_fd: fd(lock_at + 1)?,
        })
    }
}

/// Runs the monitor; returns the process exit status.
pub fn main(args: MonitorArgs) -> i32 {
    // SAFETY: the CLI passed these descriptors to us and nothing else in this process owns them.
    let lock = MonitorLock::from_fd(unsafe { ctr::sys::adopt_fd(args.lock_fd) });
    let sync = args.sync_fd.map(|fd| {
        // SAFETY: as above.
        UnixStream::from(unsafe { ctr::sys::adopt_fd(fd) })
    });
    let result = Monitor::new(&args, sync).and_then(|m| m.run());
    if let Ok(conn) = open_db(&args.root) {
        crate::volume::activate::container_stopped(&conn, &args.root, &args.id);
    }
    drop(lock);
    match result {
        Ok(()) => 0,
        Err(err) => {
            tracing::error!(%err, "monitor failed");
            1
        }
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    output: bool,
    stdin: bool,
    dead: bool,
}

impl Client {
    fn new(stream: UnixStream, output: bool) -> Client {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
        Client {
            stream,
            inbuf: Vec::new(),
            output,
            stdin: false,
            dead: false,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if !self.dead && self.stream.write_all(bytes).is_err() {
            self.dead = true;
        }
    }
}

/// What a client asked for, handled by the loop that owns the process.
enum Request {
    Stdin(Vec<u8>),
    Resize(u16, u16),
    Signal(i32, bool),
    Stop(i32),
}

enum Outcome {
    StartFailed(i32, String),
    Exited { code: i32, oom: bool },
}

struct Monitor {
    root: PathBuf,
    runroot: PathBuf,
    id: String,
    dir: PathBuf,
    run_dir: PathBuf,
    config: Config,
    host: HostConfig,
    was_created: bool,
    log: JsonLog,
    listener: Option<UnixListener>,
    /// The connection that read the container, kept to record its start and, for a container
    /// that ends before it settles, its exit: opening another costs a schema parse on the path
    /// of every `run`. Closed once the container has settled.
    startup_db: Option<Connection>,
    clients: Vec<Client>,
    /// `stop` asked: no restart.
    stop_requested: bool,
    /// `kill` by the user: `unless-stopped` stays down.
    killed: bool,
    /// The container's network, set up before its first start and kept across restarts.
    network: Option<crate::network::endpoint::Attachment>,
}

fn io_err(what: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {err}"))
}

impl Monitor {
    fn new(args: &MonitorArgs, sync: Option<UnixStream>) -> io::Result<Monitor> {
        let dir = ctr::container_dir(&args.root, &args.id);
        let run_dir = ctr::run_dir(&args.runroot, &args.id);
        let conn = open_db(&args.root)?;
        let container = state::load(&conn, &args.id)
            .map_err(|e| io_err("read the container", e))?
            .ok_or_else(|| io_err("read the container", "no such container"))?;
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(ctr::log_path(&args.root, &args.id))?;
        // The socket is bound by a relative name: runroot paths can be longer than a socket
        // address allows.
        std::env::set_current_dir(&run_dir)?;
        let _ = std::fs::remove_file(SOCKET);
        let listener = UnixListener::bind(SOCKET)?;
        listener.set_nonblocking(true)?;
        let mut clients = Vec::new();
        if let Some(sync) = sync {
            clients.push(Client::new(sync, true));
        }
        Ok(Monitor {
            root: args.root.clone(),
            runroot: args.runroot.clone(),
            id: args.id.clone(),
            dir,
            run_dir,
            config: container.config,
            host: container.host_config,
            was_created: container.state == ContainerState::Created || container.started_at == 0,
            log: JsonLog::new(log_file),
            listener: Some(listener),
            startup_db: Some(conn),
            clients,
            stop_requested: false,
            killed: false,
            network: None,
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut delay = Duration::ZERO;
        let mut failed_setup = self.attach_network().err();
        loop {
            let began = Instant::now();
            let outcome = match failed_setup.take() {
                Some(message) => Outcome::StartFailed(125, message),
                None => self.run_once()?,
            };
            match outcome {
                Outcome::StartFailed(code, message) => {
                    let conn = self.db()?;
                    self.release_network(&conn);
                    let mut leftovers = Vec::new();
                    if self.host.auto_remove {
                        leftovers = self.remove(&conn);
                    } else {
                        let state = if self.was_created {
                            ContainerState::Created
                        } else {
                            ContainerState::Exited
                        };
                        conn.execute(
                            "UPDATE containers SET state = ?2, exit_code = ?3, error = ?4, pid = 0,
                                finished_at = CASE WHEN ?2 = 'exited' THEN ?5 ELSE finished_at END
                             WHERE id = ?1",
                            params![self.id, state.as_str(), code, message, ctr::now_nanos()],
                        )
                        .map_err(|e| io_err("record the failed start", e))?;
                    }
                    drop(conn);
                    self.close_listener();
                    self.broadcast(&Frame::Error(code, message));
                    remove_leftovers(&leftovers);
                    return Ok(());
                }
                Outcome::Exited { code, oom } => {
                    let ran = began.elapsed();
                    // `--rm` deletes the runtime's state after answering the client (below).
                    let deferred = self.host.auto_remove;
                    if !deferred {
                        self.delete_runtime();
                    }
                    let conn = self.db()?;
                    let tx = conn
                        .unchecked_transaction()
                        .map_err(|e| io_err("record the exit", e))?;
                    let (manual, restarts): (i64, i64) = tx
                        .query_row(
                            "SELECT manual_stop, restart_count FROM containers WHERE id = ?1",
                            [&self.id],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .map_err(|e| io_err("record the exit", e))?;
                    let stopped = self.stop_requested || manual >= STOPPED_BY_STOP;
                    let killed = self.killed || manual >= STOPPED_BY_KILL;
                    // `update --restart` may have changed it since this monitor started.
                    let policy = &ctr::update::stored_restart_policy(&tx, &self.id)
                        .unwrap_or_else(|_| self.host.restart_policy.clone());
                    let restart = policy.should_restart(code, restarts, stopped)
                        && !(policy.name == "unless-stopped" && killed);
                    let exit = Exit {
                        code,
                        oom_killed: oom,
                        finished_at: ctr::now_nanos(),
                    };
                    crate::events::died(&tx, &self.id, code);
                    if !restart && self.host.auto_remove {
                        tx.commit().map_err(|e| io_err("record the exit", e))?;
                        self.release_network(&conn);
                        let leftovers = self.remove(&conn);
                        drop(conn);
                        self.close_listener();
                        self.broadcast(&Frame::Exit(code));
                        // The container is gone from every listing and the client has its
                        // answer: the slow part (on ext4 each freed directory or file can cost
                        // a millisecond) no longer holds up `run --rm`.
                        self.delete_runtime();
                        remove_leftovers(&leftovers);
                        return Ok(());
                    }
                    if deferred {
                        self.delete_runtime();
                    }
                    state::record_exit(&tx, &self.id, exit, restart)
                        .map_err(|e| io_err("record the exit", e))?;
                    tx.commit().map_err(|e| io_err("record the exit", e))?;
                    if !restart {
                        // After the commit: the exit's transaction must not see the
                        // teardown's writes under its feet.
                        self.release_network(&conn);
                        drop(conn);
                        self.close_listener();
                        self.broadcast(&Frame::Exit(code));
                        return Ok(());
                    }
                    drop(conn);
                    self.broadcast(&Frame::Exit(code));
                    delay = if ran >= BACKOFF_RESET_AFTER || delay.is_zero() {
                        BACKOFF_START
                    } else {
                        (delay * 2).min(BACKOFF_MAX)
                    };
                    trim_heap();
                    if !self.wait_backoff(delay)? {
                        let conn = self.db()?;
                        self.release_network(&conn);
                        state::set_state(&conn, &self.id, ContainerState::Exited)
                            .map_err(|e| io_err("record the stop", e))?;
                        drop(conn);
                        self.close_listener();
                        self.broadcast(&Frame::Exit(code));
                        return Ok(());
                    }
                    self.was_created = false;
                }
            }
        }
    }

    /// Sets up the container's network (see `network::endpoint`); the error is the message
    /// the starting CLI prints.
    fn attach_network(&mut self) -> Result<(), String> {
        let conn = open_db(&self.root).map_err(|e| e.to_string())?;
        let container = state::load(&conn, &self.id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no such container: {}", self.id))?;
        let attachment =
            crate::network::endpoint::setup(&conn, &self.root, &self.runroot, &container)
                .map_err(|e| e.to_string())?;
        self.network = Some(attachment);
        Ok(())
    }

    /// Tears the network down after the container's final exit.
    fn release_network(&mut self, conn: &Connection) {
        if let Err(err) = crate::network::endpoint::teardown(conn, &self.runroot, &self.id) {
            tracing::warn!(%err, "failed to tear down the container's network");
        }
        // Closing the reservation sockets frees the host ports.
        self.network = None;
    }

    /// One life of the container: create, start, serve, reap.
    fn run_once(&mut self) -> io::Result<Outcome> {
        let tty = self.config.tty;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (in_r, in_w) = if self.config.open_stdin && !tty {
            let (r, w) = pipe()?;
            set_nonblocking(&w)?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let stdio = if tty {
            Stdio::default()
        } else {
            Stdio {
                stdin: in_r,
                stdout: Some(out_w),
                stderr: Some(err_w),
            }
        };
        let spec = Spec::load(self.dir.join("config.json"))
            .map_err(|e| io_err("read the container's config.json", e))?;
        let runtime = ctr::runtime(&self.runroot);
        // A runtime state left by a monitor that was killed is stale: we hold the lock.
        if runtime.state(&self.id).is_ok() {
            let _ = runtime.delete(&self.id);
        }
        let created = match runtime.create(&self.id, &self.dir, &spec, stdio) {
            Ok(created) => created,
            Err(err) => return Ok(Outcome::StartFailed(err.exit_code(), error_text(&err))),
        };
        drop(spec);
        let pid = created.pid;
        if let Err(err) = created.start() {
            let _ = runtime.delete(&self.id);
            return Ok(Outcome::StartFailed(err.exit_code(), error_text(&err)));
        }
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).expect("positive pid"),
            rustix::process::PidfdFlags::empty(),
        )?;
        let master = created.pty_master;
        if let Some(m) = &master {
            set_nonblocking(m)?;
        }
        {
            let conn = self.db()?;
            conn.execute(
                "UPDATE containers SET state = 'running', pid = ?2, monitor_pid = ?3, started_at = ?4,
                    exit_code = 0, oom_killed = 0, error = '', manual_stop = 0
                 WHERE id = ?1",
                params![self.id, pid, std::process::id() as i32, ctr::now_nanos()],
            )
            .map_err(|e| io_err("record the start", e))?;
            crate::events::container(&conn, &self.id, "start", &[]);
            // Kept to record the exit of a container that ends before it settles.
            self.startup_db = Some(conn);
        }
        self.stop_requested = false;
        self.killed = false;
        self.broadcast(&Frame::Started(pid));
        // What set-up used is given back once the container has settled, not before: one
        // that ends at once (`run --rm IMG true`) is answered without waiting for that.
        let mut settle_at = Some(Instant::now() + SETTLE);

        let mut out = if tty { None } else { Some(out_r) };
        let mut err = if tty { None } else { Some(err_r) };
        let mut pty = master;
        let mut stdin = in_w;
        let mut pending: Vec<u8> = Vec::new();
        // The attached client's input ended: close the container's stdin once it is written.
        let mut close_stdin = false;
        let mut status: Option<ExitStatus> = None;
        let mut drain_deadline: Option<Instant> = None;
        let mut buf = [0u8; 16 * 1024];

        loop {
            if status.is_some() && out.is_none() && err.is_none() && pty.is_none() {
                break;
            }
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8 + self.clients.len());
            let mut push = |fd: RawFd, events: i16| {
                fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                fds.len() - 1
            };
            let i_pid = status
                .is_none()
                .then(|| push(pidfd.as_raw_fd(), libc::POLLIN));
            let i_out = out.as_ref().map(|f| push(f.as_raw_fd(), libc::POLLIN));
            let i_err = err.as_ref().map(|f| push(f.as_raw_fd(), libc::POLLIN));
            let i_pty = pty.as_ref().map(|f| {
                let ev = if pending.is_empty() || status.is_some() {
                    libc::POLLIN
                } else {
                    libc::POLLIN | libc::POLLOUT
                };
                push(f.as_raw_fd(), ev)
            });
            let i_stdin = stdin
                .as_ref()
                .filter(|_| !pending.is_empty())
                .map(|f| push(f.as_raw_fd(), libc::POLLOUT));
            let i_listen = self
                .listener
                .as_ref()
                .map(|l| push(l.as_raw_fd(), libc::POLLIN));
            let first_client = fds.len();
            let throttled = pending.len() >= STDIN_HIGH_WATER;
            for c in &self.clients {
                let events = if throttled && c.stdin {
                    0
                } else {
                    libc::POLLIN
                };
                fds.push(libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events,
                    revents: 0,
                });
            }
            let wake = [drain_deadline, settle_at].into_iter().flatten().min();
            let timeout = match wake {
                Some(at) => {
                    (at.saturating_duration_since(Instant::now()).as_micros()).div_ceil(1000) as i32
                }
                None => -1,
            };
            let ready = ctr::sys::poll(&mut fds, timeout)?;
            if settle_at.is_some_and(|at| Instant::now() >= at) {
                settle_at = None;
                self.startup_db = None;
                trim_heap();
            }
            if ready == 0 && drain_deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let has =
                |i: Option<usize>, fds: &[libc::pollfd]| i.is_some_and(|i| fds[i].revents != 0);

            if has(i_out, &fds) && !self.pump(&mut out, Stream::Stdout, &mut buf) {
                out = None;
            }
            if has(i_err, &fds) && !self.pump(&mut err, Stream::Stderr, &mut buf) {
                err = None;
            }
            if let Some(i) = i_pty {
                let rev = fds[i].revents;
                if rev & libc::POLLOUT != 0 {
                    if let Some(m) = &pty {
                        write_pending(m, &mut pending);
                    }
                }
                if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                    && !self.pump(&mut pty, Stream::Stdout, &mut buf)
                {
                    pty = None;
                }
            }
            if has(i_stdin, &fds) {
                if let Some(w) = &stdin {
                    if !write_pending(w, &mut pending) {
                        stdin = None;
                        pending.clear();
                    }
                }
            }
            if has(i_listen, &fds) {
                self.accept();
            }
            let mut requests = Vec::new();
            for (k, c) in self.clients.iter_mut().enumerate() {
                if fds.get(first_client + k).is_some_and(|p| p.revents != 0) {
                    read_client(c, &mut requests);
                }
            }
            for request in requests {
                match request {
                    Request::Stdin(data) if data.is_empty() => {
                        if !tty && self.config.stdin_once {
                            close_stdin = true;
                        }
                    }
                    Request::Stdin(data) => {
                        if stdin.is_some() || pty.is_some() {
                            pending.extend_from_slice(&data);
                        }
                    }
                    Request::Resize(rows, cols) => {
                        if let Some(m) = &pty {
                            let size = rustix::termios::Winsize {
                                ws_row: rows,
                                ws_col: cols,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            let _ = rustix::termios::tcsetwinsize(m, size);
                        }
                    }
                    Request::Signal(sig, manual) => {
                        self.killed |= manual;
                        if status.is_none() {
                            ctr::sys::signal(pid, sig);
                        }
                    }
                    Request::Stop(sig) => {
                        self.stop_requested = true;
                        if status.is_none() {
                            ctr::sys::signal(pid, sig);
                        }
                    }
                }
            }
            if close_stdin && pending.is_empty() {
                stdin = None;
            }
            self.clients.retain(|c| !c.dead);
            if has(i_pid, &fds) {
                status =
                    Some(berth_runtime::wait(pid).map_err(|e| io_err("reap the container", e))?);
                drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                stdin = None;
                pending = Vec::new();
            }
        }
        drop((out, err, pty, stdin));
        self.log.finish()?;
        let status = status.expect("loop ends after the exit");
        let oom = berth_runtime::cgroups::CgroupManager::new(
            std::path::Path::new("/sys/fs/cgroup"),
            &ctr::cgroup_path(&self.id),
        )
        .and_then(|c| c.oom_killed())
        .unwrap_or(false);
        Ok(Outcome::Exited {
            code: status.code(),
            oom,
        })
    }

    /// Reads once from an output source; false when it is finished.
    fn pump(&mut self, source: &mut Option<OwnedFd>, stream: Stream, buf: &mut [u8]) -> bool {
        let Some(fd) = source.as_ref() else {
            return false;
        };
        match rustix::io::read(fd, &mut *buf) {
            Ok(0) => false,
            Ok(n) => {
                let data = &buf[..n];
                if let Err(err) = self.log.write(stream, data) {
                    tracing::warn!(%err, "failed to write the container log");
                }
                let frame = match stream {
                    Stream::Stdout => Frame::Stdout(data.to_vec()),
                    Stream::Stderr => Frame::Stderr(data.to_vec()),
                };
                let mut bytes = Vec::with_capacity(n + 5);
                frame.encode(&mut bytes);
                for c in self.clients.iter_mut().filter(|c| c.output) {
                    c.send(&bytes);
                }
                true
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => true,
            Err(_) => false,
        }
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(false);
            self.clients.push(Client::new(stream, false));
        }
    }

    /// Sends `frame` to every client (output frames only to output clients); an exit or error
    /// also ends every connection.
    fn broadcast(&mut self, frame: &Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        let last = matches!(frame, Frame::Exit(_) | Frame::Error(..));
        for c in &mut self.clients {
            c.send(&bytes);
        }
        if last {
            self.clients.clear();
        }
    }

    fn close_listener(&mut self) {
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(self.run_dir.join(SOCKET));
        }
    }

    /// Waits out the restart delay while serving clients; false when a `stop` cancelled the
    /// restart.
    fn wait_backoff(&mut self, delay: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(true);
            }
            let mut fds = Vec::new();
            if let Some(l) = &self.listener {
                fds.push(ctr::sys::readable(l));
            }
            let first = fds.len();
            for c in &self.clients {
                fds.push(ctr::sys::readable(&c.stream));
            }
            ctr::sys::poll(&mut fds, left.as_millis().max(1) as i32)?;
            if first == 1 && fds[0].revents != 0 {
                self.accept();
            }
            let mut requests = Vec::new();
            for (k, c) in self.clients.iter_mut().enumerate() {
                if fds.get(first + k).is_some_and(|p| p.revents != 0) {
                    read_client(c, &mut requests);
                }
            }
            self.clients.retain(|c| !c.dead);
            if requests.iter().any(|r| matches!(r, Request::Stop(_))) {
                return Ok(false);
            }
        }
    }

    /// A connection for one short piece of work.
    fn db(&mut self) -> io::Result<Connection> {
        match self.startup_db.take() {
            Some(conn) => Ok(conn),
            None => open_db(&self.root),
        }
    }

    /// The runtime's container: its cgroups and state.
    fn delete_runtime(&self) {
        if let Err(err) = ctr::runtime(&self.runroot).delete(&self.id) {
            tracing::warn!(%err, "failed to delete the runtime container");
        }
    }

    /// `--rm`: deletes the row and moves the container's directory out of `containers/` into
    /// the store's `tmp/` (a rename, so the container is gone at once); returns what is left
    /// to delete. Should the monitor die before deleting it, the store sweeps `tmp/` entries of
    /// dead processes.
    fn remove(&self, conn: &Connection) -> Vec<PathBuf> {
        crate::events::container(conn, &self.id, "destroy", &[]);
        if let Err(err) = conn.execute("DELETE FROM containers WHERE id = ?1", [&self.id]) {
            tracing::warn!(%err, "failed to delete the container row");
        }
        if let Err(err) = crate::volume::mounts::container_removed(conn, &self.root, &self.id, true)
        {
            tracing::warn!(%err, "failed to remove the container's anonymous volumes");
        }
        let trash = Store::temp_path_under(&self.root, &format!("removed-{}", self.id));
        let dir = match std::fs::rename(&self.dir, &trash) {
            Ok(()) => trash,
            Err(_) => self.dir.clone(),
        };
        vec![dir, self.run_dir.clone()]
    }
}

fn remove_leftovers(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Reads what a client sent and turns whole frames into requests.
fn read_client(c: &mut Client, requests: &mut Vec<Request>) {
    let mut buf = [0u8; 4096];
    match c.stream.read(&mut buf) {
        Ok(0) | Err(_) => {
            c.dead = true;
            return;
        }
        Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
    }
    loop {
        match Frame::decode(&c.inbuf) {
            Ok(Some((frame, used))) => {
                c.inbuf.drain(..used);
                match frame {
                    Frame::Hello(flags) => {
                        c.output = flags & HELLO_OUTPUT != 0;
                        c.stdin = flags & HELLO_STDIN != 0;
                    }
                    Frame::Stdin(data) => requests.push(Request::Stdin(data)),
                    Frame::Resize(r, col) => requests.push(Request::Resize(r, col)),
                    Frame::Signal { signal, manual } => {
                        requests.push(Request::Signal(signal, manual))
                    }
                    Frame::Stop(signal) => requests.push(Request::Stop(signal)),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                c.dead = true;
                break;
            }
        }
    }
    if c.inbuf.is_empty() && c.inbuf.capacity() > 8192 {
        c.inbuf = Vec::new();
    }
}

/// Writes as much of `pending` as `fd` takes; false when the reader is gone.
fn write_pending(fd: &OwnedFd, pending: &mut Vec<u8>) -> bool {
    while !pending.is_empty() {
        match rustix::io::write(fd, pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(rustix::io::Errno::AGAIN) => return true,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    if pending.capacity() > STDIN_HIGH_WATER * 2 {
        *pending = Vec::new();
    }
    true
}

pub(crate) fn error_text(err: &RuntimeError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}

/// The metadata database, opened for one short piece of work.
pub(crate) fn open_db(root: &std::path::Path) -> io::Result<Connection> {
    berth_image::store::open_connection(&root.join("berth.db"))
        .map_err(|e| io_err("open the database", e))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Gives memory freed after set-up back to the kernel (the monitor's resident size is what
/// every running container costs), and drops the page-table entries of the file-backed,
/// never-written pages start-up touched (argument parsing, the runtime, SQLite, libc): the
/// loop refaults only the few pages it uses, from the page cache.
fn trim_heap() {
    trim_heap_only();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            // A mapping header: `start-end perms offset dev inode path`.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                current = None;
                continue;
            };
            current =
                (path.starts_with('/') && !perms.contains('w')).then_some((start, end - start));
        } else if first == "Anonymous:" {
            // Only mappings with no private (written) pages: code and read-only data exactly
            // as in the file. RELRO pages, written by the dynamic linker, are anonymous and
            // keep their mapping.
            if let (Some((start, len)), Some("0")) = (current.take(), fields.next()) {
                ctr::sys::drop_code_pages(start, len);
            }
        }
    }
}

fn trim_heap_only() {
    // SAFETY: malloc_trim only walks glibc's own heap.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_round_trips() {
        for sync_fd in [Some(8), None] {
            let args = MonitorArgs {
                root: "/var/lib/berth".into(),
                runroot: "/run/berth".into(),
                id: "abc".into(),
                sync_fd,
                lock_fd: 6,
            };
            let back = MonitorArgs::from_command_line(&args.to_command_line()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{args:?}"));
        }
    }

    #[test]
    fn other_command_lines_are_left_to_the_cli_parser() {
        let parse = |tail: &[&str]| {
            let args: Vec<OsString> = ["--root", "r", "--runroot", "rr"]
                .iter()
                .chain(tail)
                .map(OsString::from)
                .collect();
            MonitorArgs::from_command_line(&args)
        };
        assert!(parse(&["monitor", "id", "--lock-fd", "6"]).is_some());
        for tail in [
            &["ps"][..],
            &["monitor", "id"],
            &["monitor", "id", "--lock-fd"],
            &["monitor", "id", "--lock-fd", "x"],
            &["monitor", "id", "--lock-fd", "6", "extra"],
        ] {
            assert!(parse(tail).is_none(), "{tail:?}");
        }
    }
}
