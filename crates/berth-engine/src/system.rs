//! `info` and `system df`: what the store holds and what this machine can run.

use serde_json::{json, Value};

use crate::{Engine, Result};

/// One row of `system df`.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub kind: &'static str,
    pub total: u64,
    pub active: u64,
    pub size: u64,
    pub reclaimable: u64,
}

impl Engine {
    /// `info` as a JSON document with Docker's field names.
    pub fn info(&self) -> Result<Value> {
        let images = self.store().list_images()?;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| "Linux".into());
        let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "2"
        } else {
            "1"
        };
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arch = berth_image::config::host_architecture();
        Ok(json!({
            "Containers": 0,
            "Images": images.len(),
            "Driver": "overlay",
            "CgroupVersion": cgroup_version,
            "KernelVersion": kernel.trim(),
            "OperatingSystem": os,
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "NCPU": ncpu,
            "DockerRootDir": self.root().display().to_string(),
            "Platforms": [format!("linux/{arch}")],
        }))
    }

    /// `system df` rows: images (and later containers, volumes, build cache).
    pub fn disk_usage(&self) -> Result<Vec<DiskUsage>> {
        let images = self.store().list_images()?;
        let size = self.store_layer_bytes()?;
        Ok(vec![
            DiskUsage {
                kind: "Images",
                total: images.len() as u64,
                active: 0,
                size,
                reclaimable: size,
            },
            self.volume_usage()?,
        ])
    }

    fn store_layer_bytes(&self) -> Result<u64> {
        let total: i64 = self.store().db().conn().query_row(
            "SELECT COALESCE(SUM(size), 0) FROM layers",
            [],
            |r| r.get(0),
        )?;
        Ok(total as u64)
    }
}
