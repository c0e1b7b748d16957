//! The runtime's record of a container: `<state root>/<id>/state.json`.
//!
//! It holds what later verbs need without the caller: the init pid *and its start time* (from
//! `/proc/<pid>/stat`), so a recycled pid is never mistaken for the container, the bundle (for
//! exec's seccomp profile) and the cgroup path. It is written once, atomically (temporary file
//! + rename), at the end of `create`.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading or writing the state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No state for this id.
    #[error("container {id} not found in the runtime state")]
    NotFound {
        /// The container id.
        id: String,
    },
    /// A container with this id exists already.
    #[error("container {id} already exists in the runtime state")]
    AlreadyExists {
        /// The container id.
        id: String,
    },
    /// An I/O step failed.
    #[error("failed to {step} {}", path.display())]
    Io {
        /// The failed step.
        step: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not valid state JSON.
    #[error("failed to parse {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// What the runtime remembers about a created container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The container id.
    pub id: String,
    /// The init process's pid, in the caller's pid namespace.
    pub pid: i32,
    /// The init process's start time (clock ticks after boot, `/proc/<pid>/stat` field 22).
    pub pid_start_time: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The cgroup path (`linux.cgroupsPath`, or `/berth/<id>`).
    pub cgroup_path: String,
    /// Creation time, RFC 3339.
    pub created: String,
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter (`R`, `S`, `Z`…).
    pub state: char,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

impl State {
    /// The directory holding the state of container `id`.
    pub fn dir(state_root: &Path, id: &str) -> PathBuf {
        state_root.join(id)
    }

    /// Reads the state of container `id`.
    pub fn load(state_root: &Path, id: &str) -> Result<State, StateError> {
        let path = Self::dir(state_root, id).join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound { id: id.to_string() })
            }
            Err(source) => {
                return Err(StateError::Io {
                    step: "read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Parse { path, source })
    }

    /// Writes the state atomically; the container's directory must not hold a state yet.
    pub(crate) fn save(&self, state_root: &Path) -> Result<(), StateError> {
        let dir = Self::dir(state_root, &self.id);
        let io_err = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source: io::Error| StateError::Io { step, path, source }
        };
        std::fs::create_dir_all(state_root).map_err(io_err("create", state_root))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::AlreadyExists {
                    id: self.id.clone(),
                })
            }
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
        let tmp = dir.join(".state.json.tmp");
        let json = serde_json::to_vec(self).map_err(|source| StateError::Parse {
            path: tmp.clone(),
            source,
        })?;
        std::fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
        let path = dir.join("state.json");
        std::fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))
    }

    /// True while the init process exists, is not a zombie, and is the same process (same
    /// start time) that was created.
    pub fn is_running(&self) -> bool {
        matches!(proc_stat(self.pid), Ok(Some(stat))
            if stat.start_time == self.pid_start_time && !matches!(stat.state, 'Z' | 'X'))
    }
}

/// Reads `/proc/<pid>/stat`; `None` if there is no such process.
pub fn proc_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::SRCH) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    parse_stat(&text).map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unparsable /proc/{pid}/stat"),
        )
    })
}

/// Parses the fields after the command name, which may itself contain spaces and parentheses.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was the state; the start time is field 22.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (a b) (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_found() {
        let stat = proc_stat(std::process::id() as i32).unwrap().unwrap();
        assert!(matches!(stat.state, 'R' | 'S'));
        assert!(proc_stat(i32::MAX).unwrap().is_none());
    }

    #[test]
    fn save_load_round_trip() {
        let root = tempfile::tempdir().unwrap();
        let state = State {
            id: "c1".into(),
            pid: std::process::id() as i32,
            pid_start_time: proc_stat(std::process::id() as i32)
                .unwrap()
                .unwrap()
                .start_time,
            bundle: "/b".into(),
            cgroup_path: "/berth/c1".into(),
            created: "2024-01-01T00:00:00Z".into(),
        };
        state.save(root.path()).unwrap();
        assert_eq!(State::load(root.path(), "c1").unwrap(), state);
        assert!(state.is_running());
        assert!(matches!(
            state.save(root.path()),
            Err(StateError::AlreadyExists { .. })
        ));
        assert!(matches!(
            State::load(root.path(), "c2"),
            Err(StateError::NotFound { .. })
        ));
        let stale = State {
            pid_start_time: state.pid_start_time + 1,
            ..state
        };
        assert!(!stale.is_running());
    }
}
