//! `history`: one row per step of the image's history, newest first.

use berth_image::{ChainId, Digest};

use crate::{Engine, Result};

/// One row of `history`.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// The local image this step produced, when there is one; `None` prints as `<missing>`.
    pub id: Option<Digest>,
    pub created: i64,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub tags: Vec<String>,
}

impl Engine {
    /// The history rows of an image, like moby's `ImageHistory`: sizes come from the layer each
    /// non-empty step added; IDs are filled from the image and its local parents, newest first.
    pub fn image_history(&self, name_or_id: &str) -> Result<Vec<HistoryRow>> {
        let id = self.resolve_image(name_or_id)?;
        let (_, config) = self.store().image_config(&id)?;
        let chain = ChainId::chain(&config.rootfs.diff_ids);
        let mut rows = Vec::new();
        let mut layer = 0usize;
        let timestamp = |created: &Option<String>| {
            created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map_or(0, |t| t.timestamp())
        };
        if config.history.is_empty() {
            // Images without history still have layers: show one row per layer.
            for chain_id in &chain {
                rows.push(HistoryRow {
                    id: None,
                    created: timestamp(&config.created),
                    created_by: String::new(),
                    size: self.store().layer_size(chain_id).unwrap_or(0),
                    comment: String::new(),
                    tags: Vec::new(),
                });
            }
        }
        for step in &config.history {
            let mut size = 0;
            if !step.empty_layer {
                if let Some(chain_id) = chain.get(layer) {
                    size = self.store().layer_size(chain_id).unwrap_or(0);
                }
                layer += 1;
            }
            rows.push(HistoryRow {
                id: None,
                created: timestamp(&step.created),
                created_by: step.created_by.clone().unwrap_or_default(),
                size,
                comment: step.comment.clone().unwrap_or_default(),
                tags: Vec::new(),
            });
        }
        rows.reverse();
        // A local parent's ID belongs on the row of the parent's own newest step: its history
        // is a prefix of ours (a build FROM it, or a commit on top of it).
        let total = rows.len();
        let mut current = Some((id, 0usize));
        while let Some((image, row)) = current.take() {
            let Some(slot) = rows.get_mut(row) else { break };
            let record = self.store().image(&image)?;
            slot.tags = record.tags.clone();
            slot.id = Some(image);
            if let Some(parent) = record.parent {
                let (_, parent_config) = self.store().image_config(&parent)?;
                let steps = parent_config
                    .history
                    .len()
                    .max(parent_config.rootfs.diff_ids.len());
                if steps > 0 && steps < total - row {
                    current = Some((parent, total - steps));
                }
            }
        }
        Ok(rows)
    }
}
