//! A container's resource limits ([`Resources`], part of its `HostConfig`) as OCI
//! `linux.resources`: what `start` writes into `config.json` for a new cgroup, and what
//! `update` writes to a running one.
//!
//! The two differ on purpose. A new cgroup starts unlimited, so the spec names only the limits
//! that are set. An update names only the groups of limits the user changed, and spells out
//! "unlimited" (-1) where a setting went back to none, as Docker's `toContainerdResources`
//! does; everything else in the live cgroup stays as it is.

use berth_runtime::oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The CFS period `--cpus` uses, in µs (Docker's 100 ms).
const NANO_CPUS_PERIOD: i64 = 100_000;

/// A container's resource limits (Docker's `Resources`): part of its `HostConfig`, and what an
/// update changes, where 0 (or `None`) leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    pub memory: i64,
    /// Memory plus swap; -1 for unlimited swap.
    pub memory_swap: i64,
    /// `--memory-reservation`: the soft limit.
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    /// `--cpu-period`/`--cpu-quota` in µs, the CFS form of `--cpus` (which excludes them);
    /// a quota of -1 is none.
    pub cpu_period: i64,
    pub cpu_quota: i64,
    /// 0 or less: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// The memory+swap limit the kernel gets: without `--memory-swap`, Docker allows as
    /// much swap as memory.
    pub fn effective_memory_swap(&self) -> i64 {
        if self.memory > 0 && self.memory_swap == 0 {
            self.memory * 2
        } else {
            self.memory_swap
        }
    }

    /// The CFS (period, quota) in µs, from `--cpus` or from `--cpu-period`/`--cpu-quota`;
    /// 0 means not set.
    pub fn cfs_period_quota(&self) -> (i64, i64) {
        if self.nano_cpus > 0 {
            (
                NANO_CPUS_PERIOD,
                self.nano_cpus * NANO_CPUS_PERIOD / 1_000_000_000,
            )
        } else {
            (self.cpu_period, self.cpu_quota)
        }
    }
}

/// Writes the limits `host` sets into the spec's `linux.resources` object.
pub(crate) fn write_spec_resources(host: &Resources, resources: &mut Value) {
    if host.memory > 0 {
        resources["memory"]["limit"] = json!(host.memory);
        resources["memory"]["swap"] = json!(host.effective_memory_swap());
    }
    if host.memory_reservation > 0 {
        resources["memory"]["reservation"] = json!(host.memory_reservation);
    }
    if host.cpu_shares > 0 {
        resources["cpu"]["shares"] = json!(host.cpu_shares);
    }
    let (period, quota) = host.cfs_period_quota();
    if period > 0 {
        resources["cpu"]["period"] = json!(period);
    }
    if quota != 0 {
        resources["cpu"]["quota"] = json!(quota);
    }
    if let Some(limit) = host.pids_limit.filter(|l| *l > 0) {
        resources["pids"] = json!({ "limit": limit });
    }
}

/// Replaces the limits in a written spec (`config.json`) by those of `host`, leaving the
/// rest of `linux.resources` (device rules) alone.
pub(crate) fn rewrite_spec_resources(host: &Resources, spec: &mut Value) {
    let resources = &mut spec["linux"]["resources"];
    if let Some(object) = resources.as_object_mut() {
        for key in ["memory", "cpu", "pids"] {
            object.remove(key);
        }
    }
    write_spec_resources(host, resources);
}

/// The limits to write to the live cgroup of a container whose settings are now `host`,
/// for the groups of settings `changed` touches.
pub(crate) fn cgroup_update(host: &Resources, changed: &Resources) -> LinuxResources {
    let unlimited_unless_positive = |v: i64| if v > 0 { v } else { -1 };
    let mut resources = LinuxResources::default();

    let mut memory = LinuxMemory::default();
    if changed.memory != 0 || changed.memory_swap != 0 {
        // Both together: a v2 swap limit is computed from the memory limit, and v1 must
        // order the two writes so that memory never exceeds memory+swap.
        memory.set_limit(Some(unlimited_unless_positive(host.memory)));
        let swap = host.effective_memory_swap();
        memory.set_swap(Some(if host.memory > 0 && swap != 0 {
            swap
        } else {
            -1
        }));
    }
    if changed.memory_reservation != 0 {
        memory.set_reservation(Some(host.memory_reservation));
    }
    if memory != LinuxMemory::default() {
        resources.set_memory(Some(memory));
    }

    let mut cpu = LinuxCpu::default();
    if changed.cpu_shares != 0 {
        cpu.set_shares(Some(host.cpu_shares as u64));
    }
    if changed.nano_cpus != 0 || changed.cpu_period != 0 || changed.cpu_quota != 0 {
        let (period, quota) = host.cfs_period_quota();
        cpu.set_period((period > 0).then_some(period as u64));
        cpu.set_quota(Some(if quota == 0 { -1 } else { quota }));
    }
    if cpu != LinuxCpu::default() {
        resources.set_cpu(Some(cpu));
    }

    if changed.pids_limit.is_some() {
        let mut pids = LinuxPids::default();
        pids.set_limit(unlimited_unless_positive(host.pids_limit.unwrap_or(0)));
        resources.set_pids(Some(pids));
    }
    resources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_resources_follow_docker() {
        let host = Resources {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            pids_limit: Some(0),
            ..Resources::default()
        };
        let mut resources = json!({ "devices": [] });
        write_spec_resources(&host, &mut resources);
        assert_eq!(
            resources,
            json!({
                "devices": [],
                "memory": { "limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20 },
                "cpu": { "shares": 512, "period": 100_000, "quota": 150_000 },
            })
        );
        let host = Resources {
            cpu_period: 50_000,
            cpu_quota: 25_000,
            pids_limit: Some(10),
            ..Resources::default()
        };
        let mut spec = json!({ "linux": { "resources": resources } });
        rewrite_spec_resources(&host, &mut spec);
        assert_eq!(
            spec["linux"]["resources"],
            json!({
                "devices": [],
                "cpu": { "period": 50_000, "quota": 25_000 },
                "pids": { "limit": 10 },
            })
        );
    }

    #[test]
    fn cgroup_updates_name_only_what_changed() {
        let host = Resources {
            memory: 64 << 20,
            memory_swap: 96 << 20,
            cpu_shares: 256,
            pids_limit: Some(0),
            ..Resources::default()
        };
        let changed = Resources {
            pids_limit: Some(-1),
            ..Resources::default()
        };
        let r = cgroup_update(&host, &changed);
        assert!(r.memory().is_none() && r.cpu().is_none());
        assert_eq!(r.pids().as_ref().unwrap().limit(), -1);

        let changed = Resources {
            memory_swap: 96 << 20,
            cpu_shares: 256,
            ..Resources::default()
        };
        let r = cgroup_update(&host, &changed);
        let memory = r.memory().as_ref().unwrap();
        assert_eq!(memory.limit(), Some(64 << 20));
        assert_eq!(memory.swap(), Some(96 << 20));
        assert_eq!(memory.reservation(), None);
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!((cpu.shares(), cpu.quota()), (Some(256), None));
        assert!(r.pids().is_none());

        let changed = Resources {
            nano_cpus: 500_000_000,
            ..Resources::default()
        };
        let host = Resources {
            nano_cpus: 500_000_000,
            ..host
        };
        let cpu = cgroup_update(&host, &changed).cpu().clone().unwrap();
        assert_eq!((cpu.period(), cpu.quota()), (Some(100_000), Some(50_000)));
    }
}
