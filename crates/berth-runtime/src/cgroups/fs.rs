//! Reading and writing cgroup interface files, every error naming the file.
//!
//! Writes open the file without `O_CREAT`/`O_TRUNC`: a cgroup file that is missing means the
//! kernel lacks the feature, and creating it (possible only on a test's tmpfs) would hide that.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::{CgroupError, Result};

/// Writes `data` to the interface file `dir/file` in one `write(2)`.
pub(super) fn write(dir: &Path, file: &str, data: &str) -> Result<()> {
    let path = dir.join(file);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(data.as_bytes()))
        .map_err(|err| CgroupError::Write {
            path,
            data: data.to_owned(),
            err,
        })
}

/// Reads the interface file `dir/file`.
pub(super) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|err| CgroupError::Read { path, err })
}

/// Reads a file holding one number, or `max` (→ `u64::MAX`).
pub(super) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let content = read(dir, file)?;
    parse_u64(&content).ok_or_else(|| CgroupError::Parse {
        path: dir.join(file),
        content,
    })
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.trim() {
        "max" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// The value of `key` in a flat-keyed file (`key value` per line, e.g. `memory.events`).
pub(super) fn keyed(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| parse_u64(v)).flatten()
    })
}

/// Reads `key` from the flat-keyed file `dir/file`; `None` if the key is absent.
pub(super) fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    Ok(keyed(&read(dir, file)?, key))
}

/// The pids listed in `dir/cgroup.procs`.
pub(super) fn procs(dir: &Path) -> Result<Vec<i32>> {
    let content = read(dir, "cgroup.procs")?;
    content
        .lines()
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
                path: dir.join("cgroup.procs"),
                content: content.clone(),
            })
        })
        .collect()
}

/// Creates `dir` and its missing parents.
pub(super) fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|err| CgroupError::Create {
        path: dir.to_owned(),
        err,
    })
}

/// Removes the cgroup directory `dir`; a missing one is fine. Retries `EBUSY` for a while,
/// because killed tasks leave the cgroup asynchronously.
pub(super) fn remove_dir(dir: &Path, timeout: Duration) -> Result<()> {
    let mut backoff = Backoff::new(timeout);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && backoff.wait() => continue,
            Err(err) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    err,
                })
            }
        }
    }
}

/// How long `remove_tree` retries a directory the kernel still calls busy.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Removes `dir` after any cgroups the container created below it, deepest first.
pub(super) fn remove_tree(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&entry.path())?;
                }
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(CgroupError::Remove {
                path: dir.to_owned(),
                err,
            })
        }
    }
    remove_dir(dir, REMOVE_TIMEOUT)
}

/// Sleeps between polls: 20 µs growing by half up to 2 ms, until `timeout` has passed.
/// Killed tasks usually leave their cgroup within a few hundred microseconds.
pub(super) struct Backoff {
    start: Instant,
    timeout: Duration,
    step: Duration,
}

impl Backoff {
    pub(super) fn new(timeout: Duration) -> Backoff {
        Backoff {
            start: Instant::now(),
            timeout,
            step: Duration::from_micros(20),
        }
    }

    /// Sleeps and returns true, or returns false once the timeout has passed.
    pub(super) fn wait(&mut self) -> bool {
        if self.start.elapsed() >= self.timeout {
            return false;
        }
        thread::sleep(self.step);
        self.step = (self.step * 3 / 2).min(Duration::from_millis(2));
        true
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(2));
        assert_eq!(keyed(events, "oom"), Some(3));
        assert_eq!(keyed(events, "missing"), None);
        assert_eq!(parse_u64("max\n"), Some(u64::MAX));
        assert_eq!(parse_u64("1234\n"), Some(1234));
    }

    #[test]
    fn errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), "pids.max", "10").unwrap_err().to_string();
        assert!(err.contains("pids.max") && err.contains("\"10\""), "{err}");
        let err = read(tmp.path(), "memory.max").unwrap_err().to_string();
        assert!(err.contains("memory.max"), "{err}");
    }
}
