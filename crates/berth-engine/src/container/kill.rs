//! `kill`: a signal to the container's init, through its monitor.

use super::state::{Container, ContainerState};
use crate::monitor::protocol::Frame;
use crate::monitor::STOPPED_BY_KILL;
use crate::{Engine, EngineError, Result};

/// Signal names Docker accepts (with or without `SIG`, any case) and numbers.
pub fn parse_signal(text: &str) -> Result<i32> {
    let bad = || EngineError::InvalidArgument(format!("Invalid signal: {text}"));
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+').parse().map_err(|_| bad())?
        };
        return Ok(libc::SIGRTMIN() + off);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('-').parse().map_err(|_| bad())?
        };
        return Ok(libc::SIGRTMAX() - off);
    }
    let full = format!("SIG{name}");
    full.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

impl Engine {
    /// `kill -s SIGNAL`: Docker's "manually stopped" for `unless-stopped`, then the signal.
    pub fn kill_container(&self, name_or_id: &str, signal: &str) -> Result<Container> {
        let signo = parse_signal(signal)?;
        let c = self.container(name_or_id)?;
        if !matches!(
            c.state,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        ) {
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {name_or_id}: Container {} is not running",
                c.id
            )));
        }
        self.store().db().conn().execute(
            "UPDATE containers SET manual_stop = MAX(manual_stop, ?2) WHERE id = ?1",
            rusqlite::params![c.id, STOPPED_BY_KILL],
        )?;
        if c.state == ContainerState::Restarting {
            return Ok(c);
        }
        let mut stream = self.connect_monitor(&c)?;
        Frame::Signal {
            signal: signo,
            manual: true,
        }
        .send(&mut stream)
        .map_err(|source| EngineError::Io {
            action: "signal",
            path: c.id.clone(),
            source,
        })?;
        self.container_event(&c.id, "kill", &[("signal", &signo.to_string())]);
        if c.state == ContainerState::Paused && signo == libc::SIGKILL {
            self.thaw_for_stop(&c);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
