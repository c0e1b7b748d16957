//! `volume ls` and its `--filter`s: `dangling=`, `name=`, `label=`, `driver=`.

use std::collections::BTreeMap;

use super::{load_all, users, Volume};
use crate::{Engine, EngineError, Result};

/// The filters of `volume ls`; every given kind must match (several values of one kind: any).
#[derive(Debug, Clone, Default)]
pub struct VolumeFilter {
    pub dangling: Option<bool>,
    /// Substrings of the name.
    pub names: Vec<String>,
    /// `key` or `key=value`.
    pub labels: Vec<(String, Option<String>)>,
    pub drivers: Vec<String>,
}

impl VolumeFilter {
    /// Parses Docker's `KEY=VALUE` filter arguments.
    pub fn parse(filters: &[String]) -> Result<VolumeFilter> {
        let mut filter = VolumeFilter::default();
        for f in filters {
            let (key, value) = f.split_once('=').ok_or_else(|| {
                EngineError::InvalidArgument("bad format of filter (expected name=value)".into())
            })?;
            match key {
                "dangling" => {
                    filter.dangling = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid filter 'dangling={value}'"
                            )))
                        }
                    })
                }
                "name" => filter.names.push(value.to_string()),
                "label" => filter.labels.push(parse_label(value)),
                "driver" => filter.drivers.push(value.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{key}'"
                    )))
                }
            }
        }
        Ok(filter)
    }
}

/// `key` or `key=value` of a label filter.
pub fn parse_label(text: &str) -> (String, Option<String>) {
    match text.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (text.to_string(), None),
    }
}

/// Whether `labels` has every wanted label (with the wanted value when one is given).
pub fn labels_match(
    labels: &BTreeMap<String, String>,
    wanted: &[(String, Option<String>)],
) -> bool {
    wanted.iter().all(|(k, v)| match (labels.get(k), v) {
        (Some(_), None) => true,
        (Some(have), Some(want)) => have == want,
        (None, _) => false,
    })
}

impl Engine {
    /// The `Local Volumes` row of `system df`.
    pub fn volume_usage(&self) -> Result<crate::system::DiskUsage> {
        let conn = self.store().db().conn();
        let mut usage = crate::system::DiskUsage {
            kind: "Local Volumes",
            total: 0,
            active: 0,
            size: 0,
            reclaimable: 0,
        };
        for volume in load_all(conn)? {
            let size = super::disk_size(&super::data_dir(self.root(), &volume.name));
            usage.total += 1;
            usage.size += size;
            if users(conn, &volume.name)?.is_empty() {
                usage.reclaimable += size;
            } else {
                usage.active += 1;
            }
        }
        Ok(usage)
    }

    /// `volume ls`: the volumes that pass `filter`, by name.
    pub fn volumes(&self, filter: &VolumeFilter) -> Result<Vec<Volume>> {
        let conn = self.store().db().conn();
        let mut out = Vec::new();
        for volume in load_all(conn)? {
            if !filter.names.is_empty()
                && !filter
                    .names
                    .iter()
                    .any(|n| volume.name.contains(n.as_str()))
            {
                continue;
            }
            if !filter.drivers.is_empty() && !filter.drivers.contains(&volume.driver) {
                continue;
            }
            if !labels_match(&volume.labels, &filter.labels) {
                continue;
            }
            if let Some(dangling) = filter.dangling {
                if users(conn, &volume.name)?.is_empty() != dangling {
                    continue;
                }
            }
            out.push(volume);
        }
        Ok(out)
    }
}
