//! `stats --no-stream`: a resource usage sample from each running container's cgroup.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::cgroups::{CgroupManager, CgroupStats};

use super::state::{Container, ContainerState};
use crate::{Engine, Result};

/// One row of `stats`.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub pids: u64,
}

/// The gap between the two CPU samples.
const SAMPLE: Duration = Duration::from_millis(200);

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .map_or(0, |kb| kb * 1024)
}

impl Engine {
    /// Samples `containers` (running ones; others show zeros).
    pub fn container_stats(&self, containers: &[Container]) -> Result<Vec<ContainerStats>> {
        let managers: Vec<Option<CgroupManager>> = containers
            .iter()
            .map(|c| {
                (c.state == ContainerState::Running || c.state == ContainerState::Paused)
                    .then(|| {
                        CgroupManager::new(Path::new("/sys/fs/cgroup"), &super::cgroup_path(&c.id))
                            .ok()
                    })
                    .flatten()
            })
            .collect();
        let sample = |m: &Option<CgroupManager>| m.as_ref().and_then(|m| m.stats().ok());
        let first: Vec<Option<CgroupStats>> = managers.iter().map(sample).collect();
        let t0 = Instant::now();
        if first.iter().any(Option::is_some) {
            std::thread::sleep(SAMPLE);
        }
        let wall = t0.elapsed().as_nanos().max(1) as f64;
        let host = host_memory();
        Ok(containers
            .iter()
            .zip(managers.iter())
            .zip(first)
            .map(|((c, m), before)| {
                let after = sample(m);
                let (cpu, usage, limit, pids) = match (before, after) {
                    (Some(b), Some(a)) => {
                        let cpu =
                            a.cpu_usage_ns.saturating_sub(b.cpu_usage_ns) as f64 / wall * 100.0;
                        let limit = if a.memory_limit == 0 || a.memory_limit >= host {
                            host
                        } else {
                            a.memory_limit
                        };
                        (
                            cpu,
                            a.memory_usage.saturating_sub(a.memory_inactive_file),
                            limit,
                            a.pids_current,
                        )
                    }
                    _ => (0.0, 0, 0, 0),
                };
                ContainerStats {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    cpu_percent: cpu,
                    memory_usage: usage,
                    memory_limit: limit,
                    pids,
                }
            })
            .collect())
    }
}
