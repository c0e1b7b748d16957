//! `logs`: the json-file log, filtered (`--since`, `--until`, `--tail`) and followed (`-f`)
//! until the container stops.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde::Deserialize;

use super::log_path;
use super::state::Container;
use crate::monitor::protocol::Frame;
use crate::{Engine, EngineError, Result};

/// `logs` flags.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// `--tail N` (None = all).
    pub tail: Option<usize>,
    /// Only entries at or after this time (nanoseconds since the epoch).
    pub since: Option<i64>,
    /// Only entries before this time.
    pub until: Option<i64>,
}

/// One log entry.
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl LogEntry {
    fn nanos(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.time)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0)
    }
}

impl Engine {
    /// Feeds the container's log entries to `sink`, following new ones with `follow`.
    pub fn container_logs(
        &self,
        name_or_id: &str,
        opts: &LogOptions,
        sink: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        let path = log_path(self.root(), &c.id);
        let io = |source| EngineError::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        };
        let keep = |e: &LogEntry| {
            let t = e.nanos();
            opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t < u)
        };
        // Follow: subscribe before reading, so nothing written in between is missed.
        let follow = if opts.follow && c.state.is_active() {
            self.follow_handles(&c, &path)
        } else {
            None
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let mut reader = BufReader::new(file);
        let mut entries: Vec<LogEntry> = Vec::new();
        let mut partial = String::new();
        read_entries(&mut reader, &mut partial, &mut |e| {
            if keep(&e) {
                entries.push(e);
            }
        })
        .map_err(io)?;
        let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
        for e in &entries[skip..] {
            sink(e).map_err(io)?;
        }
        drop(entries);
        let Some((inotify, mut monitor)) = follow else {
            return Ok(());
        };
        let _ = Frame::Hello(0).send(&mut monitor);
        loop {
            let mut fds = [
                super::sys::readable(&inotify),
                super::sys::readable(&monitor),
            ];
            super::sys::poll(&mut fds, -1).map_err(io)?;
            if fds[0].revents != 0 {
                let _ = inotify.read_events();
            }
            let mut err = None;
            read_entries(&mut reader, &mut partial, &mut |e| {
                if keep(&e) && err.is_none() {
                    err = sink(&e).err();
                }
            })
            .map_err(io)?;
            if let Some(e) = err {
                return Err(io(e));
            }
            if fds[1].revents != 0 {
                // Exit (or the monitor is gone): what is in the file now is everything.
                read_entries(&mut reader, &mut partial, &mut |e| {
                    if keep(&e) {
                        let _ = sink(&e);
                    }
                })
                .map_err(io)?;
                return Ok(());
            }
        }
    }

    fn follow_handles(
        &self,
        c: &Container,
        path: &std::path::Path,
    ) -> Option<(Inotify, std::os::unix::net::UnixStream)> {
        let monitor = self.connect_monitor(c).ok()?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        inotify.add_watch(path, AddWatchFlags::IN_MODIFY).ok()?;
        Some((inotify, monitor))
    }
}

/// Reads whole lines from `reader`, keeping an unfinished last line in `partial`.
fn read_entries(
    reader: &mut BufReader<File>,
    partial: &mut String,
    f: &mut dyn FnMut(LogEntry),
) -> std::io::Result<()> {
    loop {
        let n = reader.read_line(partial)?;
        if n == 0 {
            return Ok(());
        }
        if !partial.ends_with('\n') {
            // The writer is mid-line; the rest comes later.
            let back = partial.len() as i64;
            reader.seek(SeekFrom::Current(-back))?;
            partial.clear();
            return Ok(());
        }
        if let Ok(e) = serde_json::from_str::<LogEntry>(partial.trim_end()) {
            f(e);
        }
        partial.clear();
    }
}
