//! `rmi` and `image prune`.

use berth_image::store::{ImageUser, RemovedImage};
use berth_image::Digest;
use rusqlite::{Connection, OptionalExtension};

use crate::{Engine, Result};

/// What `image prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<RemovedImage>,
    pub reclaimed: u64,
}

/// The container using an image, if any (the containers table may not exist yet).
fn container_using(conn: &Connection, image: &Digest) -> rusqlite::Result<Option<ImageUser>> {
    let found = conn
        .query_row(
            "SELECT id, state FROM containers WHERE image_id = ?1
             ORDER BY state = 'running' DESC LIMIT 1",
            [image.to_string()],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional();
    match found {
        Ok(found) => Ok(found.map(|(id, state)| ImageUser {
            container_id: id,
            running: matches!(state.as_str(), "running" | "paused" | "restarting"),
        })),
        Err(rusqlite::Error::SqliteFailure(_, Some(msg))) if msg.contains("no such table") => {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

impl Engine {
    /// `rmi NAME|ID`.
    pub fn remove_image(&self, name_or_id: &str, force: bool) -> Result<Vec<RemovedImage>> {
        let id = self.store().resolve(name_or_id).ok();
        let removed = self
            .store()
            .remove_image(name_or_id, force, &container_using)?;
        if let Some(id) = id {
            self.image_removed(&id, &removed);
        }
        Ok(removed)
    }

    /// `image prune`: dangling images (or every image no container uses, with `all`), created
    /// before `until` (seconds since the epoch) when given.
    pub fn prune_images(
        &self,
        all: bool,
        labels: &[(String, Option<String>)],
        until: Option<i64>,
    ) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let images = self.store().list_images()?;
        let parents: std::collections::HashSet<Digest> =
            images.iter().filter_map(|i| i.parent.clone()).collect();
        for image in images {
            let dangling = image.tags.is_empty() && image.repo_digests.is_empty();
            if (!all && !dangling)
                || parents.contains(&image.id)
                || until.is_some_and(|t| image.created >= t)
            {
                continue;
            }
            if container_using(self.store().db().conn(), &image.id)?.is_some() {
                continue;
            }
            if !labels.is_empty() {
                let (_, config) = self.store().image_config(&image.id)?;
                let have = config.config.labels.unwrap_or_default();
                let matches = labels.iter().all(|(k, v)| match (have.get(k), v) {
                    (Some(_), None) => true,
                    (Some(h), Some(w)) => h == w,
                    _ => false,
                });
                if !matches {
                    continue;
                }
            }
            match self
                .store()
                .remove_image(&image.id.to_string(), true, &container_using)
            {
                Ok(removed) => {
                    self.image_removed(&image.id, &removed);
                    report.reclaimed += image.size;
                    report.removed.extend(removed);
                }
                Err(err) => tracing::warn!(image = %image.id, %err, "prune skipped an image"),
            }
        }
        Ok(report)
    }
}
