//! `top`: the container's processes, as the host's `ps` shows them (Docker runs `ps` too).

use std::path::Path;
use std::process::Command;

use berth_runtime::cgroups::CgroupManager;

use super::state::ContainerState;
use crate::{Engine, EngineError, Result};

/// `ps` output limited to the container's processes.
#[derive(Debug, Clone)]
pub struct TopOutput {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    pub fn top_container(&self, name_or_id: &str, ps_args: &[String]) -> Result<TopOutput> {
        let c = self.container(name_or_id)?;
        if !matches!(c.state, ContainerState::Running | ContainerState::Paused) {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let pids = CgroupManager::new(Path::new("/sys/fs/cgroup"), &super::cgroup_path(&c.id))
            .and_then(|m| m.pids())
            .map_err(|e| {
                EngineError::Conflict(format!("Container {} is not running: {e}", c.id))
            })?;
        let args: Vec<String> = if ps_args.is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.to_vec()
        };
        let out = Command::new("ps")
            .args(&args)
            .output()
            .map_err(|source| EngineError::Io {
                action: "run",
                path: "ps".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(EngineError::InvalidArgument(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

fn parse_ps(text: &str, pids: &[i32]) -> Result<TopOutput> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        EngineError::InvalidArgument("Couldn't find PID field in ps output".into())
    })?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may hold spaces.
        let mut row: Vec<String> = fields
            .iter()
            .take(titles.len() - 1)
            .map(|s| s.to_string())
            .collect();
        row.push(
            fields
                .get(titles.len() - 1..)
                .map(|r| r.join(" "))
                .unwrap_or_default(),
        );
        processes.push(row);
    }
    Ok(TopOutput { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_pid() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n";
        let top = parse_ps(text, &[42]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(
            top.processes,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
    }
}
