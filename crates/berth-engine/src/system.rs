//! `info`, `system df` and `system prune`: what the store holds, what this machine can run,
//! and clearing out what nothing uses.

use std::collections::BTreeMap;

use berth_image::store::RemovedImage;
use serde_json::{json, Value};

use crate::build::BuildError;
use crate::volume::list::labels_match;
use crate::{Engine, EngineError, Result};

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

/// The `--filter` of the prune verbs, as moby reads it.
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// `label=K[=V]`: only objects with all of these labels.
    pub labels: Vec<(String, Option<String>)>,
    /// `label!=K[=V]`: objects with all of these labels are kept (moby's `matchLabels`).
    pub labels_not: Vec<(String, Option<String>)>,
    /// `until=…`: only objects created no later than this (nanoseconds since the epoch).
    pub until: Option<i64>,
}

impl PruneFilter {
    /// Whether an object with these labels, created at `created` (nanoseconds), is pruned.
    pub fn matches(&self, labels: &BTreeMap<String, String>, created: i64) -> bool {
        self.matches_labels(labels) && self.until.is_none_or(|t| created <= t)
    }

    /// The `label` and `label!` half of [`matches`](Self::matches), for objects without a
    /// creation time to filter on (volumes).
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        labels_match(labels, &self.labels)
            && (self.labels_not.is_empty() || !labels_match(labels, &self.labels_not))
    }
}

/// What `system prune` removes besides stopped containers, unused networks and dangling images.
#[derive(Debug, Clone, Default)]
pub struct SystemPrune {
    /// `-a`: every image no container uses, and the build cache's mounts too.
    pub all: bool,
    /// `--volumes`: unused anonymous volumes.
    pub volumes: bool,
    /// `--filter label=K[=V]` and `until=…` (`label!` is the network verb's only).
    pub filter: PruneFilter,
}

/// What `system prune` removed, per kind, in the order Docker prints them.
#[derive(Debug, Default)]
pub struct SystemPruneReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<RemovedImage>,
    pub build_cache: Vec<String>,
    pub reclaimed: u64,
}

impl Engine {
    /// `system prune`: each kind's own prune, in Docker's order (containers first, since they
    /// hold networks, volumes and images), with the same filters.
    pub fn prune_system(&self, opts: &SystemPrune) -> Result<SystemPruneReport> {
        let mut report = SystemPruneReport::default();
        let mut container_filters: Vec<(String, String)> = opts
            .filter
            .labels
            .iter()
            .map(|(k, v)| match v {
                Some(v) => ("label".to_string(), format!("{k}={v}")),
                None => ("label".to_string(), k.clone()),
            })
            .collect();
        if let Some(until) = opts.filter.until {
            container_filters.push(("until".into(), until.to_string()));
        }
        let containers = self.prune_containers(&container_filters)?;
        report.containers = containers.removed;
        report.reclaimed += containers.reclaimed;

        report.networks = self.prune_networks(&opts.filter)?;

        if opts.volumes {
            let volumes = self.prune_volumes(false, &opts.filter)?;
            report.volumes = volumes.removed;
            report.reclaimed += volumes.reclaimed;
        }

        let until_secs = opts.filter.until.map(|t| t.div_euclid(1_000_000_000));
        let images = self.prune_images(opts.all, &opts.filter.labels, until_secs)?;
        report.images = images.removed;
        report.reclaimed += images.reclaimed;

        // Cache records carry no labels: a label filter matches none of them.
        if opts.filter.labels.is_empty() {
            let (keys, freed) =
                crate::build::prune_used_before(self, opts.all, until_secs.unwrap_or(i64::MAX))
                    .map_err(|err| match err {
                        BuildError::Engine(err) => err,
                        BuildError::Io {
                            action,
                            path,
                            source,
                        } => EngineError::Io {
                            action,
                            path: path.display().to_string(),
                            source,
                        },
                        other => EngineError::Conflict(other.to_string()),
                    })?;
            report.build_cache = keys;
            report.reclaimed += freed;
        }
        Ok(report)
    }
}
