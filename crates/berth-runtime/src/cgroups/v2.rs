//! cgroup v2 (unified hosts): one directory, controllers enabled from the root down.
//!
//! A v2 cgroup has a controller's files only if its parent lists the controller in
//! `cgroup.subtree_control`, so `apply` enables cpu, memory and pids (and cpuset when the
//! spec pins cpus or memory nodes) in every ancestor, as far as the root offers them.
//! Device rules need an eBPF program on v2; berth does not load one yet and logs that the
//! rules are not enforced.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use super::fs::{self, Backoff};
use super::{
    kill_all, pins_cpus_or_mems, shares_to_weight, wait_empty, CgroupError, CgroupStats, Result,
    FREEZE_TIMEOUT,
};

/// The v2 backend.
#[derive(Debug)]
pub(super) struct V2 {
    root: PathBuf,
    relative: String,
    dir: PathBuf,
}

/// `pids.max` for an OCI limit: 0 and negative mean unlimited.
pub(super) fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// A limit in bytes, -1 meaning unlimited.
fn bytes_or_max(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

/// runc's `ConvertMemorySwapToCgroupV2Value`: OCI's swap is memory+swap, v2's
/// `memory.swap.max` is swap alone. `None` leaves the file alone.
fn swap_max(memory: &LinuxMemory) -> Result<Option<String>> {
    let limit = memory.limit().unwrap_or(0);
    let invalid = |reason: String| CgroupError::InvalidResources { reason };
    Ok(match memory.swap() {
        // memory unlimited and swap unset: both unlimited, as on v1
        None | Some(0) if limit == -1 => Some("max".to_owned()),
        None | Some(0) => None,
        Some(-1) => Some("max".to_owned()),
        Some(swap) if swap < 0 => return Err(invalid(format!("invalid swap limit {swap}"))),
        Some(_) if limit <= 0 => {
            return Err(invalid(
                "a memory+swap limit needs a memory limit on cgroup v2".to_owned(),
            ))
        }
        Some(swap) if swap < limit => {
            return Err(invalid(format!(
                "memory+swap limit {swap} is below the memory limit {limit}"
            )))
        }
        Some(swap) => Some((swap - limit).to_string()),
    })
}

/// `cpu.max`: "$QUOTA $PERIOD", with `max` for no quota.
fn cpu_max(cpu: &LinuxCpu) -> Option<String> {
    if cpu.quota().is_none() && cpu.period().is_none() {
        return None;
    }
    let quota = match cpu.quota() {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_owned(),
    };
    match cpu.period().filter(|p| *p != 0) {
        Some(period) => Some(format!("{quota} {period}")),
        None => Some(quota),
    }
}

impl V2 {
    pub(super) fn new(root: &Path, relative: &str) -> V2 {
        V2 {
            root: root.to_owned(),
            relative: relative.to_owned(),
            dir: root.join(relative),
        }
    }

    pub(super) fn apply(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let pins = resources.is_some_and(pins_cpus_or_mems);
        let mut wanted: Vec<&str> = vec!["cpu", "memory", "pids"];
        if pins {
            wanted.push("cpuset");
        }
        self.create(&wanted, resources)?;
        match resources {
            Some(resources) => self.write_limits(resources),
            None => Ok(()),
        }
    }

    /// Writes new limits to an existing cgroup; creates nothing, so a container that is
    /// gone is an error rather than an empty cgroup left behind.
    pub(super) fn update(&self, resources: &LinuxResources) -> Result<()> {
        if !self.dir.is_dir() {
            return Err(CgroupError::NotFound {
                path: self.dir.clone(),
            });
        }
        self.write_limits(resources)
    }

    fn write_limits(&self, resources: &LinuxResources) -> Result<()> {
        let cpu = resources.cpu().as_ref();
        let dir = &self.dir;

        if let Some(memory) = resources.memory() {
            if let Some(limit) = memory.limit() {
                fs::write(dir, "memory.max", &bytes_or_max(limit))?;
            }
            if let Some(swap) = swap_max(memory)? {
                fs::write(dir, "memory.swap.max", &swap)?;
            }
            if let Some(reservation) = memory.reservation() {
                fs::write(dir, "memory.low", &bytes_or_max(reservation))?;
            }
            if memory.swappiness().is_some() || memory.disable_oom_killer() == Some(true) {
                tracing::debug!("cgroup v2 has no swappiness or OOM-killer switch: ignored");
            }
        }

        if let Some(cpu) = cpu {
            if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
                fs::write(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
            }
            if let Some(max) = cpu_max(cpu) {
                fs::write(dir, "cpu.max", &max)?;
            }
            if let Some(burst) = cpu.burst() {
                fs::write(dir, "cpu.max.burst", &burst.to_string())?;
            }
            if let Some(idle) = cpu.idle() {
                fs::write(dir, "cpu.idle", &idle.to_string())?;
            }
            if let Some(cpus) = cpu.cpus() {
                fs::write(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = cpu.mems() {
                fs::write(dir, "cpuset.mems", mems)?;
            }
        }

        if let Some(pids) = resources.pids() {
            fs::write(dir, "pids.max", &pids_max(pids.limit()))?;
        }

        if resources.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            tracing::warn!(cgroup = %dir.display(), "device rules are not enforced on cgroup v2 yet (needs an eBPF device program)");
        }

        if let Some(unified) = resources.unified() {
            for (key, value) in unified {
                if key.is_empty() || key.contains('/') || key.starts_with('.') {
                    return Err(CgroupError::InvalidResources {
                        reason: format!("unified key {key:?} is not a cgroup file name"),
                    });
                }
                fs::write(dir, key, value)?;
            }
        }
        Ok(())
    }

    /// Creates the directory and enables `wanted` controllers on the way down. A controller
    /// the root does not offer is skipped unless `resources` need it.
    fn create(&self, wanted: &[&str], resources: Option<&LinuxResources>) -> Result<()> {
        let available = fs::read(&self.root, "cgroup.controllers")?;
        let available: Vec<&str> = available.split_whitespace().collect();
        for controller in wanted {
            if !available.contains(controller) {
                if let Some(needed_for) = needs(controller, resources) {
                    return Err(CgroupError::MissingController {
                        controller: static_name(controller),
                        root: self.root.clone(),
                        needed_for,
                    });
                }
            }
        }
        let enable: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| available.contains(c))
            .collect();

        let mut parent = self.root.clone();
        for component in self.relative.split('/') {
            if !enable.is_empty() {
                let enabled = fs::read(&parent, "cgroup.subtree_control")?;
                let enabled: Vec<&str> = enabled.split_whitespace().collect();
                let missing: Vec<String> = enable
                    .iter()
                    .filter(|c| !enabled.contains(c))
                    .map(|c| format!("+{c}"))
                    .collect();
                if !missing.is_empty() {
                    fs::write(&parent, "cgroup.subtree_control", &missing.join(" "))?;
                }
            }
            let dir = parent.join(component);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(CgroupError::Create { path: dir, err }),
            }
            parent = dir;
        }
        Ok(())
    }

    pub(super) fn add_task(&self, pid: i32) -> Result<()> {
        fs::write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    pub(super) fn freeze(&self) -> Result<()> {
        fs::write(&self.dir, "cgroup.freeze", "1")?;
        let mut backoff = Backoff::new(FREEZE_TIMEOUT);
        loop {
            if self.is_frozen()? {
                return Ok(());
            }
            if !backoff.wait() {
                let _ = fs::write(&self.dir, "cgroup.freeze", "0");
                return Err(CgroupError::FreezeTimeout {
                    path: self.dir.clone(),
                    state: "frozen",
                    waited: backoff.elapsed(),
                });
            }
        }
    }

    pub(super) fn thaw(&self) -> Result<()> {
        fs::write(&self.dir, "cgroup.freeze", "0")
    }

    pub(super) fn is_frozen(&self) -> Result<bool> {
        Ok(fs::read_keyed(&self.dir, "cgroup.events", "frozen")? == Some(1))
    }

    pub(super) fn pids(&self) -> Result<Vec<i32>> {
        fs::procs(&self.dir)
    }

    pub(super) fn oom_killed(&self) -> Result<bool> {
        match fs::read_keyed(&self.dir, "memory.events", "oom_kill") {
            Ok(kills) => Ok(kills.unwrap_or(0) > 0),
            // no memory controller, so no OOM kills of this cgroup's own
            Err(CgroupError::Read { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    pub(super) fn stats(&self) -> Result<CgroupStats> {
        let dir = &self.dir;
        let optional = |file: &str| -> Result<Option<u64>> {
            match fs::read_u64(dir, file) {
                Ok(v) => Ok(Some(v)),
                Err(CgroupError::Read { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
                    Ok(None)
                }
                Err(err) => Err(err),
            }
        };
        let mut stats = CgroupStats {
            memory_usage: optional("memory.current")?.unwrap_or(0),
            memory_limit: optional("memory.max")?.unwrap_or(u64::MAX),
            pids_current: optional("pids.current")?.unwrap_or(0),
            ..CgroupStats::default()
        };
        if stats.memory_usage > 0 {
            stats.memory_inactive_file =
                fs::read_keyed(dir, "memory.stat", "inactive_file")?.unwrap_or(0);
        }
        // cpu.stat exists without the cpu controller
        stats.cpu_usage_ns = fs::read_keyed(dir, "cpu.stat", "usage_usec")?
            .unwrap_or(0)
            .saturating_mul(1000);
        Ok(stats)
    }

    pub(super) fn destroy(&self) -> Vec<CgroupError> {
        let mut errors = Vec::new();
        let pids = match fs::procs(&self.dir) {
            Ok(pids) => pids,
            Err(CgroupError::Read { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
                return errors
            }
            Err(err) => {
                errors.push(err);
                Vec::new()
            }
        };
        let populated = !pids.is_empty()
            || fs::read_keyed(&self.dir, "cgroup.events", "populated")
                .ok()
                .flatten()
                == Some(1);
        if populated {
            // cgroup.kill (Linux 5.14) kills the whole subtree at once, frozen or not.
            if self.dir.join("cgroup.kill").exists() {
                if let Err(err) = fs::write(&self.dir, "cgroup.kill", "1") {
                    errors.push(err);
                }
            } else {
                if let Err(err) = self.freeze() {
                    errors.push(err);
                }
                let pids = self.pids().unwrap_or(pids);
                kill_all(&self.dir, &pids, &mut errors);
                if let Err(err) = self.thaw() {
                    errors.push(err);
                }
            }
            if let Err(err) = wait_empty(&self.dir) {
                errors.push(err);
            }
        }
        if let Err(err) = fs::remove_tree(&self.dir) {
            errors.push(err);
        }
        errors
    }
}

/// The resource that needs `controller`, if `resources` set one.
fn needs(controller: &str, resources: Option<&LinuxResources>) -> Option<&'static str> {
    let r = resources?;
    match controller {
        "memory" if r.memory().is_some() => Some("memory limits"),
        "pids" if r.pids().is_some() => Some("the pids limit"),
        "cpu"
            if r.cpu().as_ref().is_some_and(|c| {
                c.shares().is_some_and(|s| s != 0) || c.quota().is_some() || c.period().is_some()
            }) =>
        {
            Some("cpu weight and quota")
        }
        "cpuset" => Some("cpus/mems pinning"),
        _ => None,
    }
}

fn static_name(controller: &str) -> &'static str {
    match controller {
        "cpu" => "cpu",
        "memory" => "memory",
        "pids" => "pids",
        _ => "cpuset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };
    use std::fs as stdfs;

    /// A fake v2 root offering cpu, memory and pids, with `berth/c1` created.
    fn fixture() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        stdfs::write(root.join("cgroup.controllers"), "cpuset cpu io memory pids").unwrap();
        stdfs::write(root.join("cgroup.subtree_control"), "memory").unwrap();
        stdfs::create_dir_all(root.join("berth/c1")).unwrap();
        stdfs::write(root.join("berth/cgroup.subtree_control"), "").unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "pids.max",
        ] {
            stdfs::write(root.join("berth/c1").join(f), "").unwrap();
        }
        tmp
    }

    fn content(root: &Path, file: &str) -> String {
        stdfs::read_to_string(root.join(file)).unwrap()
    }

    #[test]
    fn writes_converted_limits() {
        let tmp = fixture();
        let v2 = V2::new(tmp.path(), "berth/c1");
        let resources = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(96 << 20)
                    .reservation(16 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
            .build()
            .unwrap();
        v2.apply(Some(&resources)).unwrap();
        let root = tmp.path();
        // controllers enabled top-down, only the missing ones
        assert_eq!(content(root, "cgroup.subtree_control"), "+cpu +pids");
        assert_eq!(
            content(root, "berth/cgroup.subtree_control"),
            "+cpu +memory +pids"
        );
        assert_eq!(content(root, "berth/c1/memory.max"), "67108864");
        assert_eq!(content(root, "berth/c1/memory.swap.max"), "33554432");
        assert_eq!(content(root, "berth/c1/memory.low"), "16777216");
        assert_eq!(content(root, "berth/c1/cpu.weight"), "39"); // 1 + (1022 * 9999) / 262142
        assert_eq!(content(root, "berth/c1/cpu.max"), "50000 100000");
        assert_eq!(content(root, "berth/c1/pids.max"), "max");
    }

    #[test]
    fn runc_conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        let mem = |limit: Option<i64>, swap: Option<i64>| {
            let mut b = LinuxMemoryBuilder::default();
            if let Some(l) = limit {
                b = b.limit(l);
            }
            if let Some(s) = swap {
                b = b.swap(s);
            }
            swap_max(&b.build().unwrap())
        };
        assert_eq!(mem(Some(100), Some(300)).unwrap().as_deref(), Some("200"));
        assert_eq!(mem(Some(100), Some(-1)).unwrap().as_deref(), Some("max"));
        assert_eq!(mem(Some(-1), None).unwrap().as_deref(), Some("max"));
        assert_eq!(mem(Some(100), None).unwrap(), None);
        assert!(mem(None, Some(300)).is_err());
        assert!(mem(Some(300), Some(100)).is_err());
        let cpu = |quota: Option<i64>, period: Option<u64>| {
            let mut b = LinuxCpuBuilder::default();
            if let Some(q) = quota {
                b = b.quota(q);
            }
            if let Some(p) = period {
                b = b.period(p);
            }
            cpu_max(&b.build().unwrap())
        };
        assert_eq!(cpu(Some(-1), Some(100_000)).as_deref(), Some("max 100000"));
        assert_eq!(cpu(Some(20_000), None).as_deref(), Some("20000"));
        assert_eq!(cpu(None, None), None);
        assert_eq!(pids_max(-1), "max");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(7), "7");
    }

    #[test]
    fn update_writes_only_the_named_limits_of_an_existing_cgroup() {
        let tmp = fixture();
        let pids = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .build()
            .unwrap();
        let missing = V2::new(tmp.path(), "berth/gone");
        assert!(matches!(
            missing.update(&pids),
            Err(CgroupError::NotFound { .. })
        ));
        assert!(!tmp.path().join("berth/gone").exists());
        let v2 = V2::new(tmp.path(), "berth/c1");
        v2.update(&pids).unwrap();
        let root = tmp.path();
        assert_eq!(content(root, "berth/c1/pids.max"), "5");
        assert_eq!(content(root, "berth/c1/memory.max"), "");
        // nothing is enabled or created on the way
        assert_eq!(content(root, "cgroup.subtree_control"), "memory");
    }

    #[test]
    fn missing_controller_needed_by_a_limit_is_an_error() {
        let tmp = fixture();
        stdfs::write(tmp.path().join("cgroup.controllers"), "cpu").unwrap();
        let v2 = V2::new(tmp.path(), "berth/c1");
        let resources = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap();
        let err = v2.apply(Some(&resources)).unwrap_err().to_string();
        assert!(err.contains("pids"), "{err}");
        // without a pids limit the same host is fine
        v2.apply(None).unwrap();
    }
}
