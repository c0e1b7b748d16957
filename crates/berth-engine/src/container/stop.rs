//! `stop` and `restart`: the stop signal, then SIGKILL after the timeout.

use std::time::Duration;

use super::kill::parse_signal;
use super::start::StartOutcome;
use super::state::{Container, ContainerState};
use super::wait::{wait_frame, Waited};
use crate::monitor::protocol::Frame;
use crate::monitor::STOPPED_BY_STOP;
use crate::{Engine, EngineError, Result};

/// Docker's default stop timeout.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

impl Engine {
    /// Stops the container: its stop signal (or `signal`), SIGKILL after `timeout` seconds
    /// (its `StopTimeout`, else 10; negative waits forever). Stopping a stopped container is
    /// fine.
    pub fn stop_container(
        &self,
        name_or_id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<Container> {
        let c = self.container(name_or_id)?;
        self.stop_loaded(&c, timeout, signal)?;
        if c.state.is_active() {
            self.container_event(&c.id, "stop", &[]);
        }
        Ok(c)
    }

    pub(crate) fn stop_loaded(
        &self,
        c: &Container,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        if !c.state.is_active() {
            return Ok(());
        }
        let signo = parse_signal(signal.unwrap_or(c.config.stop_signal()))?;
        let timeout = timeout
            .or(c.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        self.store().db().conn().execute(
            "UPDATE containers SET manual_stop = ?2 WHERE id = ?1",
            rusqlite::params![c.id, STOPPED_BY_STOP],
        )?;
        let Ok(mut stream) = self.connect_monitor(c) else {
            self.reconcile(c.clone())?;
            return Ok(());
        };
        let io = |source| EngineError::Io {
            action: "stop",
            path: c.id.clone(),
            source,
        };
        Frame::Hello(0).send(&mut stream).map_err(io)?;
        Frame::Stop(signo).send(&mut stream).map_err(io)?;
        self.container_event(&c.id, "kill", &[("signal", &signo.to_string())]);
        if c.state == ContainerState::Paused {
            self.thaw_for_stop(c);
        }
        let limit = (timeout >= 0).then(|| Duration::from_secs(timeout as u64));
        if let Waited::TimedOut = wait_frame(&mut stream, limit) {
            tracing::info!(id = %c.id, timeout, "container did not stop in time; killing it");
            self.container_event(&c.id, "kill", &[("signal", &libc::SIGKILL.to_string())]);
            Frame::Signal {
                signal: libc::SIGKILL,
                manual: false,
            }
            .send(&mut stream)
            .map_err(io)?;
            if let Waited::TimedOut = wait_frame(&mut stream, Some(Duration::from_secs(30))) {
                return Err(EngineError::Conflict(format!(
                    "container {} did not exit after SIGKILL",
                    c.id
                )));
            }
        }
        // The exit is recorded: let go of volume mounts now rather than when the monitor ends.
        crate::volume::activate::container_stopped(self.store().db().conn(), self.root(), &c.id);
        Ok(())
    }

    /// `restart`: stop (if running), then start.
    pub fn restart_container(
        &self,
        name_or_id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<StartOutcome> {
        let c = self.container(name_or_id)?;
        let was_active = c.state.is_active();
        self.stop_loaded(&c, timeout, signal)?;
        if was_active {
            self.container_event(&c.id, "stop", &[]);
            self.wait_for_monitor_exit(&c.id);
        }
        let c = self.container(&c.id)?;
        let id = c.id.clone();
        let started = self.start_loaded(c)?;
        self.container_event(&id, "restart", &[]);
        Ok(started)
    }

    /// The old monitor reports the exit a moment before it lets go of the container's lock;
    /// a start in that moment would take the busy lock for a running container and do
    /// nothing. Waits (bounded) for the lock to be free.
    fn wait_for_monitor_exit(&self, id: &str) {
        let dir = self.container_run_dir(id);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while super::sys::MonitorLock::is_held(&dir) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
