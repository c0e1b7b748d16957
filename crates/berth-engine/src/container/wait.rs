//! `wait`: block until the container stops, then its exit status.

use std::time::{Duration, Instant};

use super::attach;
use super::state::Container;
use crate::monitor::protocol::Frame;
use crate::{Engine, Result};

/// How waiting on a monitor ended.
pub enum Waited {
    Exit(i32),
    TimedOut,
    /// The monitor closed without an exit frame: it had finished.
    Closed,
}

/// Waits for the exit frame on a connection that already said hello, up to `timeout`.
pub fn wait_frame(
    stream: &mut std::os::unix::net::UnixStream,
    timeout: Option<Duration>,
) -> Waited {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Waited::TimedOut;
        }
        let _ = stream.set_read_timeout(left);
        match Frame::recv(stream) {
            Ok(Some(Frame::Exit(code))) | Ok(Some(Frame::Error(code, _))) => {
                return Waited::Exit(code)
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Waited::Closed,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Waited::TimedOut
            }
            Err(_) => return Waited::Closed,
        }
    }
}

impl Engine {
    /// Waits until the container is not running; returns its exit status.
    pub fn wait_container(&self, name_or_id: &str) -> Result<i32> {
        let c = self.container(name_or_id)?;
        self.wait_loaded(&c)
    }

    pub fn wait_loaded(&self, c: &Container) -> Result<i32> {
        if c.state.is_active() {
            if let Ok(mut stream) = self.connect_monitor(c) {
                if let Some(code) = attach::wait_exit(&mut stream) {
                    return Ok(code);
                }
            }
        }
        // Not running, or the monitor finished as we connected: the database knows.
        let c = match self.container(&c.id) {
            Ok(c) => c,
            Err(_) => return Ok(c.exit_code),
        };
        Ok(c.exit_code)
    }
}
