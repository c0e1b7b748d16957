//! `container prune`: every stopped container.

use super::list::ContainerFilter;
use super::state::ContainerState;
use crate::{Engine, Result};

/// What `container prune` removed.
#[derive(Debug, Default)]
pub struct ContainerPruneReport {
    pub removed: Vec<String>,
    pub reclaimed: u64,
}

impl Engine {
    pub fn prune_containers(&self, filters: &[(String, String)]) -> Result<ContainerPruneReport> {
        let filter = ContainerFilter {
            all: true,
            last: None,
            filters: filters.to_vec(),
        };
        let mut report = ContainerPruneReport::default();
        for c in self.list_containers(&filter)? {
            if !matches!(
                c.state,
                ContainerState::Created | ContainerState::Exited | ContainerState::Dead
            ) {
                continue;
            }
            let size = self.container_size(&c);
            match self.remove_container(&c.id, false) {
                Ok(()) => {
                    report.removed.push(c.id);
                    report.reclaimed += size;
                }
                Err(err) => tracing::warn!(id = %c.id, %err, "prune skipped a container"),
            }
        }
        Ok(report)
    }
}
