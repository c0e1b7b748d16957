//! `ps`: which containers, filtered as Docker filters them.

use std::path::Path;

use super::state::{Container, ContainerState};
use crate::{Engine, EngineError, Result};

/// `ps -a -n -l --filter`.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub all: bool,
    /// `-n N`: the N most recently created (implies all).
    pub last: Option<usize>,
    /// `--filter key=value`, one entry per flag.
    pub filters: Vec<(String, String)>,
}

impl ContainerFilter {
    /// Parses `key=value` filter flags, refusing unknown keys as Docker does.
    pub fn parse_filters(raw: &[String]) -> Result<Vec<(String, String)>> {
        raw.iter()
            .map(|f| {
                let (k, v) = f.split_once('=').ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "bad format of filter (expected name=value): {f}"
                    ))
                })?;
                match k {
                    "id" | "name" | "label" | "exited" | "status" | "ancestor" | "before"
                    | "since" | "network" | "is-task" | "health" | "volume" | "expose"
                    | "publish" => Ok((k.to_string(), v.to_string())),
                    _ => Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    ))),
                }
            })
            .collect()
    }
}

impl Engine {
    /// Containers matching `filter`, newest first.
    pub fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<Container>> {
        let all = self.containers()?;
        let mut out: Vec<Container> = Vec::new();
        let by_ref = |r: &str| {
            all.iter()
                .find(|c| c.id == r || c.name == r || c.id.starts_with(r))
                .map(|c| c.created)
        };
        let show_all = filter.all
            || filter.last.is_some()
            || filter
                .filters
                .iter()
                .any(|(k, _)| k == "status" || k == "exited");
        for c in &all {
            if !show_all
                && !matches!(
                    c.state,
                    ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
                )
            {
                continue;
            }
            if !self.matches(c, &filter.filters, &by_ref)? {
                continue;
            }
            out.push(c.clone());
        }
        if let Some(n) = filter.last {
            out.truncate(n);
        }
        Ok(out)
    }

    fn matches(
        &self,
        c: &Container,
        filters: &[(String, String)],
        by_ref: &dyn Fn(&str) -> Option<i64>,
    ) -> Result<bool> {
        // Values of the same key are OR-ed, different keys AND-ed.
        let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let values = filters
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str());
            let mut any = false;
            for v in values {
                let hit = match key {
                    "id" => c.id.starts_with(v),
                    "name" => c.name.contains(v.trim_start_matches('/')),
                    "label" => match v.split_once('=') {
                        Some((k, want)) => c.config.labels.get(k).is_some_and(|have| have == want),
                        None => c.config.labels.contains_key(v),
                    },
                    "exited" => c.state == ContainerState::Exited && v.parse() == Ok(c.exit_code),
                    "status" => {
                        if !matches!(
                            v,
                            "created"
                                | "restarting"
                                | "running"
                                | "removing"
                                | "paused"
                                | "exited"
                                | "dead"
                        ) {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid filter 'status={v}'"
                            )));
                        }
                        c.state.as_str() == v
                    }
                    "ancestor" => {
                        c.image == v
                            || c.image_id == v
                            || c.image_id
                                .trim_start_matches("sha256:")
                                .starts_with(v.trim_start_matches("sha256:"))
                            || self
                                .resolve_image(v)
                                .is_ok_and(|id| id.to_string() == c.image_id)
                    }
                    "before" => by_ref(v).is_some_and(|t| c.created < t),
                    "since" => by_ref(v).is_some_and(|t| c.created > t),
                    "network" => network_name(c) == v,
                    "is-task" => v == "false",
                    // Only prune passes it (nanoseconds); `ps` refuses the key.
                    "until" => v.parse().is_ok_and(|t: i64| c.created < t),
                    _ => false,
                };
                any |= hit;
            }
            if !any {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Bytes in the container's writable layer.
    pub fn container_size(&self, c: &Container) -> u64 {
        dir_size(&self.container_dir(&c.id).join("upper"))
    }

    /// Bytes of the image under the container.
    pub fn container_virtual_size(&self, c: &Container) -> u64 {
        let image = c
            .image_id
            .parse()
            .ok()
            .and_then(|id| self.store().image(&id).ok());
        image.map_or(0, |i| i.size) + self.container_size(c)
    }
}

/// The network a container is on, as `ps` and `inspect` name it.
pub fn network_name(c: &Container) -> &str {
    match c.host_config.network_mode.as_str() {
        "" | "default" => crate::network::DEFAULT_NETWORK,
        mode => mode,
    }
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}
