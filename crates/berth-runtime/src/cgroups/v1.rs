//! cgroup v1 (legacy and hybrid hosts): one directory per controller hierarchy.
//!
//! Every container joins the memory, cpu, cpuacct, pids, freezer and devices hierarchies
//! that are mounted (co-mounts such as `cpu,cpuacct` count once); cpuset only when the spec
//! pins cpus or memory nodes, because a new v1 cpuset starts empty and must be filled from
//! its parent before it accepts tasks.

use std::fs as stdfs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::fs::{self, Backoff};
use super::{
    kill_all, pins_cpus_or_mems, wait_empty, CgroupError, CgroupStats, Result, FREEZE_TIMEOUT,
};

const MEMORY: u16 = 1 << 0;
const CPU: u16 = 1 << 1;
const CPUACCT: u16 = 1 << 2;
const PIDS: u16 = 1 << 3;
const FREEZER: u16 = 1 << 4;
const DEVICES: u16 = 1 << 5;
const CPUSET: u16 = 1 << 6;

/// The hierarchies every container joins when they are mounted.
const ALWAYS: u16 = MEMORY | CPU | CPUACCT | PIDS | FREEZER | DEVICES;

fn controller_bit(name: &str) -> u16 {
    match name {
        "memory" => MEMORY,
        "cpu" => CPU,
        "cpuacct" => CPUACCT,
        "pids" => PIDS,
        "freezer" => FREEZER,
        "devices" => DEVICES,
        "cpuset" => CPUSET,
        _ => 0,
    }
}

/// `memory.limit_in_bytes` of an unlimited v1 cgroup is `PAGE_COUNTER_MAX` pages, a bit
/// under `i64::MAX`; anything from here up means unlimited.
const V1_UNLIMITED: u64 = 0x7fff_ffff_ffff_0000;

/// A mounted v1 hierarchy and the container's directory in it.
#[derive(Debug)]
struct Hierarchy {
    controllers: u16,
    mount: PathBuf,
    dir: PathBuf,
}

/// The v1 backend.
#[derive(Debug)]
pub(super) struct V1 {
    root: PathBuf,
    relative: String,
    hierarchies: Vec<Hierarchy>,
}

impl V1 {
    /// Finds the mounted hierarchies: the directories (not symlinks) of `root` whose names,
    /// split at commas, are controllers berth uses.
    pub(super) fn new(root: &Path, relative: &str) -> Result<V1> {
        let detect = |err| CgroupError::Detect {
            path: root.to_owned(),
            err,
        };
        let mut hierarchies = Vec::with_capacity(8);
        for entry in stdfs::read_dir(root).map_err(detect)? {
            let entry = entry.map_err(detect)?;
            if !entry.file_type().map_err(detect)?.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let controllers = name.split(',').fold(0, |acc, c| acc | controller_bit(c));
            if controllers != 0 {
                let mount = entry.path();
                hierarchies.push(Hierarchy {
                    controllers,
                    dir: mount.join(relative),
                    mount,
                });
            }
        }
        Ok(V1 {
            root: root.to_owned(),
            relative: relative.to_owned(),
            hierarchies,
        })
    }

    fn find(&self, controller: u16) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers & controller != 0)
    }

    fn require(&self, controller: u16, needed_for: &'static str) -> Result<&Hierarchy> {
        self.find(controller)
            .ok_or_else(|| CgroupError::MissingController {
                controller: match controller {
                    MEMORY => "memory",
                    CPU => "cpu",
                    CPUACCT => "cpuacct",
                    PIDS => "pids",
                    FREEZER => "freezer",
                    DEVICES => "devices",
                    _ => "cpuset",
                },
                root: self.root.clone(),
                needed_for,
            })
    }

    pub(super) fn apply(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let pins = resources.is_some_and(pins_cpus_or_mems);
        for h in &self.hierarchies {
            if h.controllers & ALWAYS != 0 {
                fs::create_dir(&h.dir)?;
            } else if pins && h.controllers & CPUSET != 0 {
                self.create_cpuset(h)?;
            }
        }
        match resources {
            Some(resources) => self.write_limits(resources),
            None => Ok(()),
        }
    }

    /// Writes new limits to an existing cgroup; creates nothing, so a container that is
    /// gone is an error rather than an empty cgroup left behind.
    pub(super) fn update(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(h) = self.representative() {
            if !h.dir.is_dir() {
                return Err(CgroupError::NotFound {
                    path: h.dir.clone(),
                });
            }
        }
        self.write_limits(resources)
    }

    fn write_limits(&self, resources: &LinuxResources) -> Result<()> {
        let cpu = resources.cpu().as_ref();
        let pins = pins_cpus_or_mems(resources);
        if let Some(memory) = resources.memory() {
            let h = self.require(MEMORY, "memory limits")?;
            if let Some(limit) = memory.limit() {
                let swap = memory.swap();
                match fs::write(&h.dir, "memory.limit_in_bytes", &limit.to_string()) {
                    Ok(()) => {
                        if let Some(swap) = swap {
                            write_memsw(&h.dir, swap)?;
                        }
                    }
                    // Raising the limit above the current memory+swap limit: swap first.
                    Err(CgroupError::Write { err, .. })
                        if err.raw_os_error() == Some(libc::EINVAL) && swap.is_some() =>
                    {
                        write_memsw(&h.dir, swap.unwrap_or(-1))?;
                        fs::write(&h.dir, "memory.limit_in_bytes", &limit.to_string())?;
                    }
                    Err(err) => return Err(err),
                }
            } else if let Some(swap) = memory.swap() {
                write_memsw(&h.dir, swap)?;
            }
            if let Some(reservation) = memory.reservation() {
                fs::write(
                    &h.dir,
                    "memory.soft_limit_in_bytes",
                    &reservation.to_string(),
                )?;
            }
            if let Some(swappiness) = memory.swappiness() {
                if swappiness > 100 {
                    return Err(CgroupError::InvalidResources {
                        reason: format!("memory swappiness {swappiness} is above 100"),
                    });
                }
                fs::write(&h.dir, "memory.swappiness", &swappiness.to_string())?;
            }
            if memory.disable_oom_killer() == Some(true) {
                fs::write(&h.dir, "memory.oom_control", "1")?;
            }
        }

        if let Some(cpu) = cpu {
            let wants_cfs = cpu.shares().is_some_and(|s| s != 0)
                || cpu.period().is_some()
                || cpu.quota().is_some()
                || cpu.burst().is_some();
            if wants_cfs {
                let h = self.require(CPU, "cpu shares and quota")?;
                if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
                    fs::write(&h.dir, "cpu.shares", &shares.to_string())?;
                }
                // The period first: the kernel checks the quota against it.
                if let Some(period) = cpu.period().filter(|p| *p != 0) {
                    fs::write(&h.dir, "cpu.cfs_period_us", &period.to_string())?;
                }
                if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
                    fs::write(&h.dir, "cpu.cfs_quota_us", &quota.to_string())?;
                }
                if let Some(burst) = cpu.burst() {
                    fs::write(&h.dir, "cpu.cfs_burst_us", &burst.to_string())?;
                }
            }
            if pins {
                let h = self.require(CPUSET, "cpus/mems pinning")?;
                if let Some(cpus) = cpu.cpus() {
                    fs::write(&h.dir, "cpuset.cpus", cpus)?;
                }
                if let Some(mems) = cpu.mems() {
                    fs::write(&h.dir, "cpuset.mems", mems)?;
                }
            }
        }

        if let Some(pids) = resources.pids() {
            let h = self.require(PIDS, "the pids limit")?;
            fs::write(&h.dir, "pids.max", &super::v2::pids_max(pids.limit()))?;
        }

        if let Some(devices) = resources.devices().as_deref().filter(|d| !d.is_empty()) {
            let h = self.require(DEVICES, "device rules")?;
            for rule in devices {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                fs::write(&h.dir, file, &device_rule(rule))?;
            }
        }

        if resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::InvalidResources {
                reason: "`unified` resources need a cgroup v2 host".to_owned(),
            });
        }
        Ok(())
    }

    /// Creates the cpuset directory level by level, giving each new level its parent's
    /// cpus and memory nodes (a v1 cpuset starts empty and refuses tasks while empty).
    fn create_cpuset(&self, h: &Hierarchy) -> Result<()> {
        let mut parent = h.mount.clone();
        for component in self.relative.split('/') {
            let dir = parent.join(component);
            match stdfs::create_dir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(CgroupError::Create { path: dir, err }),
            }
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(&dir, file)?.trim().is_empty() {
                    let inherited = fs::read(&parent, file)?;
                    fs::write(&dir, file, inherited.trim())?;
                }
            }
            parent = dir;
        }
        Ok(())
    }

    pub(super) fn add_task(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for h in &self.hierarchies {
            match fs::write(&h.dir, "cgroup.procs", &pid) {
                Ok(()) => {}
                // cpuset is joined only when apply created it
                Err(CgroupError::Write { err, .. })
                    if h.controllers & ALWAYS == 0 && err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    pub(super) fn freeze(&self) -> Result<()> {
        let h = self.require(FREEZER, "freeze")?;
        fs::write(&h.dir, "freezer.state", "FROZEN")?;
        let mut backoff = Backoff::new(FREEZE_TIMEOUT);
        let mut polls = 0u32;
        loop {
            if fs::read(&h.dir, "freezer.state")?.trim() == "FROZEN" {
                return Ok(());
            }
            polls += 1;
            // A task in vfork or an uninterruptible wait can keep the cgroup FREEZING;
            // asking again lets the freezer retry it (runc does the same).
            if polls == 10 {
                polls = 0;
                fs::write(&h.dir, "freezer.state", "FROZEN")?;
            }
            if !backoff.wait() {
                // Don't leave it half frozen.
                let _ = fs::write(&h.dir, "freezer.state", "THAWED");
                return Err(CgroupError::FreezeTimeout {
                    path: h.dir.clone(),
                    state: "frozen",
                    waited: backoff.elapsed(),
                });
            }
        }
    }

    pub(super) fn thaw(&self) -> Result<()> {
        let h = self.require(FREEZER, "thaw")?;
        fs::write(&h.dir, "freezer.state", "THAWED")
    }

    pub(super) fn is_frozen(&self) -> Result<bool> {
        let h = self.require(FREEZER, "the frozen state")?;
        Ok(fs::read(&h.dir, "freezer.state")?.trim() == "FROZEN")
    }

    /// The hierarchy whose `cgroup.procs` stands for the container's processes.
    fn representative(&self) -> Option<&Hierarchy> {
        self.find(PIDS).or_else(|| self.find(FREEZER)).or_else(|| {
            self.hierarchies
                .iter()
                .find(|h| h.controllers & ALWAYS != 0)
        })
    }

    pub(super) fn pids(&self) -> Result<Vec<i32>> {
        match self.representative() {
            Some(h) => fs::procs(&h.dir),
            None => Ok(Vec::new()),
        }
    }

    pub(super) fn oom_killed(&self) -> Result<bool> {
        let h = self.require(MEMORY, "OOM reporting")?;
        let control = fs::read(&h.dir, "memory.oom_control")?;
        // `oom_kill` exists since Linux 4.13; before that only `under_oom` tells.
        Ok(match fs::keyed(&control, "oom_kill") {
            Some(kills) => kills > 0,
            None => fs::keyed(&control, "under_oom") == Some(1),
        })
    }

    pub(super) fn stats(&self) -> Result<CgroupStats> {
        let mut stats = CgroupStats::default();
        if let Some(h) = self.find(MEMORY) {
            stats.memory_usage = fs::read_u64(&h.dir, "memory.usage_in_bytes")?;
            stats.memory_limit = match fs::read_u64(&h.dir, "memory.limit_in_bytes")? {
                l if l >= V1_UNLIMITED => u64::MAX,
                l => l,
            };
            stats.memory_inactive_file =
                fs::read_keyed(&h.dir, "memory.stat", "total_inactive_file")?.unwrap_or(0);
        }
        if let Some(h) = self.find(CPUACCT) {
            stats.cpu_usage_ns = fs::read_u64(&h.dir, "cpuacct.usage")?;
        }
        if let Some(h) = self.find(PIDS) {
            stats.pids_current = fs::read_u64(&h.dir, "pids.current")?;
        }
        Ok(stats)
    }

    /// Kills what is left (frozen first, so nothing forks meanwhile) and removes every
    /// directory; returns all errors.
    pub(super) fn destroy(&self) -> Vec<CgroupError> {
        let mut errors = Vec::new();
        let pids = match self.representative().map(|h| fs::procs(&h.dir)) {
            Some(Ok(pids)) => pids,
            Some(Err(CgroupError::Read { err, .. })) if err.kind() == io::ErrorKind::NotFound => {
                Vec::new()
            }
            Some(Err(err)) => {
                errors.push(err);
                Vec::new()
            }
            None => Vec::new(),
        };
        if !pids.is_empty() {
            let freezer = self.find(FREEZER).filter(|h| h.dir.exists());
            if freezer.is_some() {
                if let Err(err) = self.freeze() {
                    errors.push(err);
                }
            }
            // Re-read: tasks may have forked before the freeze took hold.
            let pids = self.pids().unwrap_or(pids);
            let dir = self.representative().map_or(&self.root, |h| &h.dir);
            kill_all(dir, &pids, &mut errors);
            // Frozen v1 tasks act on SIGKILL only once thawed.
            if freezer.is_some() {
                if let Err(err) = self.thaw() {
                    errors.push(err);
                }
            }
            if let Some(h) = self.representative() {
                if let Err(err) = wait_empty(&h.dir) {
                    errors.push(err);
                }
            }
        }
        for h in &self.hierarchies {
            if let Err(err) = fs::remove_tree(&h.dir) {
                errors.push(err);
            }
        }
        errors
    }
}

/// The OCI memory+swap limit as `memory.memsw.limit_in_bytes`, when the kernel accounts swap.
fn write_memsw(dir: &Path, swap: i64) -> Result<()> {
    if !dir.join("memory.memsw.limit_in_bytes").exists() {
        tracing::debug!(dir = %dir.display(), "swap accounting is off: memory+swap limit ignored");
        return Ok(());
    }
    fs::write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())
}

/// `devices.allow`/`devices.deny` syntax: `type major:minor access`.
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let kind = rule.typ().unwrap_or(LinuxDeviceType::A);
    let kind = kind.as_str();
    let number = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_owned(),
    };
    let access = rule.access().as_deref().unwrap_or("rwm");
    format!(
        "{kind} {}:{} {access}",
        number(rule.major()),
        number(rule.minor())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder,
    };

    /// A fake v1 root: `memory`, `cpu,cpuacct` (with `cpu`/`cpuacct` symlinks), `pids`,
    /// `freezer`, `devices`, each with the container's directory and empty interface files.
    fn fixture(relative: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let files: &[(&str, &[&str])] = &[
            (
                "memory",
                &[
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    "memory.soft_limit_in_bytes",
                    "memory.swappiness",
                    "cgroup.procs",
                ],
            ),
            (
                "cpu,cpuacct",
                &[
                    "cpu.shares",
                    "cpu.cfs_period_us",
                    "cpu.cfs_quota_us",
                    "cgroup.procs",
                ],
            ),
            ("pids", &["pids.max", "cgroup.procs"]),
            ("freezer", &["freezer.state", "cgroup.procs"]),
            (
                "devices",
                &["devices.allow", "devices.deny", "cgroup.procs"],
            ),
        ];
        for (hierarchy, names) in files {
            let dir = tmp.path().join(hierarchy).join(relative);
            stdfs::create_dir_all(&dir).unwrap();
            for name in *names {
                stdfs::write(dir.join(name), "").unwrap();
            }
        }
        std::os::unix::fs::symlink("cpu,cpuacct", tmp.path().join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", tmp.path().join("cpuacct")).unwrap();
        stdfs::create_dir(tmp.path().join("unified")).unwrap();
        tmp
    }

    fn content(root: &Path, hierarchy: &str, file: &str) -> String {
        stdfs::read_to_string(root.join(hierarchy).join("berth/c1").join(file)).unwrap()
    }

    #[test]
    fn discovers_comounted_hierarchies_once() {
        let tmp = fixture("berth/c1");
        let v1 = V1::new(tmp.path(), "berth/c1").unwrap();
        assert_eq!(v1.hierarchies.len(), 5, "{:?}", v1.hierarchies);
        let cpu = v1.find(CPU).unwrap();
        assert_eq!(cpu.controllers, CPU | CPUACCT);
        assert!(cpu.dir.ends_with("cpu,cpuacct/berth/c1"));
        assert!(v1.find(CPUSET).is_none());
    }

    #[test]
    fn writes_limits_to_v1_files() {
        let tmp = fixture("berth/c1");
        let v1 = V1::new(tmp.path(), "berth/c1").unwrap();
        let resources = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .reservation(32 << 20)
                    .swappiness(10u64)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        v1.apply(Some(&resources)).unwrap();
        let root = tmp.path();
        assert_eq!(content(root, "memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(
            content(root, "memory", "memory.memsw.limit_in_bytes"),
            "134217728"
        );
        assert_eq!(
            content(root, "memory", "memory.soft_limit_in_bytes"),
            "33554432"
        );
        assert_eq!(content(root, "memory", "memory.swappiness"), "10");
        assert_eq!(content(root, "cpu,cpuacct", "cpu.shares"), "512");
        assert_eq!(content(root, "cpu,cpuacct", "cpu.cfs_quota_us"), "50000");
        assert_eq!(content(root, "cpu,cpuacct", "cpu.cfs_period_us"), "100000");
        assert_eq!(content(root, "pids", "pids.max"), "max");
        // the fixture's plain files keep only the last write
        assert_eq!(content(root, "devices", "devices.allow"), "c 1:3 rwm");
        assert_eq!(content(root, "devices", "devices.deny"), "a *:* rwm");

        v1.add_task(4242).unwrap();
        assert_eq!(content(root, "freezer", "cgroup.procs"), "4242");
        assert_eq!(content(root, "cpu,cpuacct", "cgroup.procs"), "4242");
    }

    #[test]
    fn cpuset_without_hierarchy_is_an_error() {
        let tmp = fixture("berth/c1");
        let v1 = V1::new(tmp.path(), "berth/c1").unwrap();
        let resources = LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().cpus("0").build().unwrap())
            .build()
            .unwrap();
        let err = v1.apply(Some(&resources)).unwrap_err().to_string();
        assert!(err.contains("cpuset"), "{err}");
    }
}
