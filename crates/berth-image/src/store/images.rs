//! Images and their names: the `images`, `tags` and `repo_digests` tables.
//!
//! An image is identified by the digest of its config blob (Docker's image ID). Tags are full
//! normalised references (`docker.io/library/busybox:latest`) and point at exactly one image;
//! moving a tag is a single-row update, so a reader never sees a name without an image.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{LayerInfo, Result, Store, StoreError};
use crate::config::ImageConfig;
use crate::digest::{ChainId, Digest};
use crate::reference::Reference;

/// An image to record. Its layers must already be in the store.
pub struct NewImage<'a> {
    /// The exact config bytes; their digest becomes the image ID.
    pub config: &'a [u8],
    /// The stored layers, bottom first, matching `rootfs.diff_ids`.
    pub layers: &'a [LayerInfo],
    /// The local image this one was built or committed from.
    pub parent: Option<Digest>,
    /// The digest of the manifest the image arrived with (pull, OCI load).
    pub manifest_digest: Option<Digest>,
    /// Tags to point at the image, taken away from any image that had them.
    pub tags: &'a [Reference],
    /// `name@digest` references the image is known by in registries.
    pub repo_digests: &'a [String],
}

/// An image as listed: everything `images` shows, without parsing its config.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Digest,
    pub top_layer: Option<ChainId>,
    pub manifest_digest: Option<Digest>,
    pub parent: Option<Digest>,
    /// Seconds since the epoch, from the config's `created`.
    pub created: i64,
    /// Bytes of unpacked content in all of the image's layers.
    pub size: u64,
    /// Full normalised tag references, sorted.
    pub tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

/// What one `rmi` step did, in Docker's order: untags first, then deletions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovedImage {
    Untagged(String),
    Deleted(Digest),
}

/// Who keeps an image from being deleted.
#[derive(Debug, Clone)]
pub struct ImageUser {
    pub container_id: String,
    pub running: bool,
}

impl Store {
    /// Records an image (idempotent for the same config) and points `tags` at it.
    pub fn put_image(&self, image: &NewImage<'_>) -> Result<Digest> {
        let config = ImageConfig::from_slice(image.config).map_err(StoreError::InvalidConfig)?;
        if config.rootfs.diff_ids.len() != image.layers.len()
            || config
                .rootfs
                .diff_ids
                .iter()
                .zip(image.layers)
                .any(|(d, l)| *d != l.diff_id)
        {
            return Err(StoreError::Conflict(
                "image config rootfs.diff_ids do not match the image's layers".into(),
            ));
        }
        let id = self.put_blob(image.config, None)?;
        let created = config
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map_or(0, |t| t.timestamp());
        let size: u64 = image.layers.iter().map(|l| l.size).sum();
        let top = image.layers.last().map(|l| l.chain_id.to_string());
        let now = chrono::Utc::now().timestamp();

        let tx = self.db().write()?;
        for layer in image.layers {
            if !exists(
                &tx,
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                &layer.chain_id.to_string(),
            )? {
                return Err(StoreError::LayerNotFound(layer.chain_id.to_string()));
            }
        }
        tx.execute(
            "INSERT INTO images (id, config, top_layer, manifest_digest, parent, created, size, added)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET
                manifest_digest = COALESCE(excluded.manifest_digest, manifest_digest),
                parent = COALESCE(parent, excluded.parent)",
            params![
                id.to_string(),
                image.config,
                top,
                image.manifest_digest.as_ref().map(|d| d.to_string()),
                image.parent.as_ref().map(|d| d.to_string()),
                created,
                size as i64,
                now
            ],
        )?;
        for tag in image.tags {
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![tag.to_string(), id.to_string()],
            )?;
        }
        for name in image.repo_digests {
            tx.execute(
                "INSERT OR IGNORE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
                params![name, id.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Points `reference` (which must carry a tag) at image `id`.
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<()> {
        let tx = self.db().write()?;
        if !exists(&tx, "SELECT 1 FROM images WHERE id = ?1", &id.to_string())? {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        tx.execute(
            "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            params![reference.to_string(), id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The raw config bytes of an image and their parsed form.
    pub fn image_config(&self, id: &Digest) -> Result<(Vec<u8>, ImageConfig)> {
        let raw: Vec<u8> = self
            .db()
            .conn()
            .query_row(
                "SELECT config FROM images WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
        let config = ImageConfig::from_slice(&raw).map_err(StoreError::InvalidConfig)?;
        Ok((raw, config))
    }

    /// Every image with its names, newest first.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        list(self.db().conn(), None)
    }

    /// One image by ID.
    pub fn image(&self, id: &Digest) -> Result<ImageRecord> {
        list(self.db().conn(), Some(id))?
            .pop()
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))
    }

    /// Finds an image the way Docker does: as a reference (`busybox`, `busybox:1`,
    /// `name@sha256:…`), then as a full image ID, then as a unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Digest> {
        resolve(self.db().conn(), name_or_id)
    }

    /// The image a tag points at, if any.
    pub fn lookup_tag(&self, reference: &Reference) -> Result<Option<Digest>> {
        lookup_tag(self.db().conn(), reference)
    }

    /// Removes an image or a name the way `docker rmi` does (moby's `ImageDelete`): a name is
    /// untagged and the image deleted only when no other name keeps it; an ID deletes the image
    /// and every name it has. Untagged parents that nothing else needs go with it.
    ///
    /// `in_use` reports a container that uses an image; it runs inside the write transaction so a
    /// container cannot be created from the image between the check and the delete.
    pub fn remove_image(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Connection, &Digest) -> rusqlite::Result<Option<ImageUser>>,
    ) -> Result<Vec<RemovedImage>> {
        let tx = self.db().write()?;
        let id = resolve(&tx, name_or_id)?;
        let mut records = Vec::new();
        let by_id = {
            let given = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
            !given.is_empty() && id.hex().starts_with(given)
        };
        let mut quiet = false;
        if !by_id {
            let refs = references(&tx, &id)?;
            if !force && single_repository(&refs) {
                if let Some(user) = in_use(&tx, &id)? {
                    return Err(StoreError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{name_or_id}\" (must force) - container {} is using its referenced image {}",
                        truncate_id(&user.container_id),
                        id.short()
                    )));
                }
            }
            let reference =
                Reference::parse(name_or_id).map_err(|e| StoreError::Conflict(e.to_string()))?;
            let reference = if reference.digest().is_some() {
                reference
            } else {
                reference.with_default_tag()
            };
            untag(&tx, &reference.to_string())?;
            records.push(RemovedImage::Untagged(reference.familiar_string()));
            if reference.digest().is_none() {
                // With the last tag of a repository gone, its digest references go too.
                let remaining = references(&tx, &id)?;
                let name = reference.name();
                let tag_left = remaining
                    .iter()
                    .any(|r| !r.contains('@') && repository(r) == name);
                if !tag_left {
                    for r in remaining
                        .iter()
                        .filter(|r| r.contains('@') && repository(r) == name)
                    {
                        untag(&tx, r)?;
                        records.push(RemovedImage::Untagged(familiar(r)));
                    }
                }
            }
            if !references(&tx, &id)?.is_empty() {
                tx.commit()?;
                return Ok(records);
            }
            quiet = true;
        } else {
            let refs = references(&tx, &id)?;
            if single_repository(&refs) {
                if let Some(conflict) = delete_conflict(&tx, &id, force, true, in_use)? {
                    return Err(conflict);
                }
                for r in &refs {
                    untag(&tx, r)?;
                    records.push(RemovedImage::Untagged(familiar(r)));
                }
            }
        }
        if let Some(conflict) = delete_conflict(&tx, &id, force, false, in_use)? {
            if quiet {
                // The name went; the image stays, as with Docker, for the container using it.
                tx.commit()?;
                return Ok(records);
            }
            return Err(conflict);
        }
        for r in references(&tx, &id)? {
            untag(&tx, &r)?;
            records.push(RemovedImage::Untagged(familiar(&r)));
        }
        let mut deleted = Vec::new();
        let mut next = Some(id);
        while let Some(image) = next.take() {
            let parent: Option<String> = tx
                .query_row(
                    "SELECT parent FROM images WHERE id = ?1",
                    [image.to_string()],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            tx.execute("DELETE FROM images WHERE id = ?1", [image.to_string()])?;
            records.push(RemovedImage::Deleted(image.clone()));
            deleted.push(image);
            // An untagged parent that nothing else needs is an intermediate image: prune it.
            if let Some(parent) = parent.and_then(|p| p.parse::<Digest>().ok()) {
                let unnamed = references(&tx, &parent)?.is_empty();
                if unnamed && delete_conflict(&tx, &parent, false, false, in_use)?.is_none() {
                    next = Some(parent);
                }
            }
        }
        tx.commit()?;
        for image in &deleted {
            let _ = std::fs::remove_file(self.blob_path(image));
        }
        self.collect_garbage_layers()?;
        Ok(records)
    }
}

/// Why an image cannot be deleted, if it cannot: dependent children and running containers
/// always block; stopped containers and remaining names block unless forced.
fn delete_conflict(
    conn: &Connection,
    id: &Digest,
    force: bool,
    ignore_names: bool,
    in_use: &dyn Fn(&Connection, &Digest) -> rusqlite::Result<Option<ImageUser>>,
) -> Result<Option<StoreError>> {
    let conflict = |how: &str, why: String| {
        Some(StoreError::Conflict(format!(
            "conflict: unable to delete {} ({how}) - {why}",
            id.short()
        )))
    };
    if exists(
        conn,
        "SELECT 1 FROM images WHERE parent = ?1",
        &id.to_string(),
    )? {
        return Ok(conflict(
            "cannot be forced",
            "image has dependent child images".into(),
        ));
    }
    if let Some(user) = in_use(conn, id)? {
        if user.running {
            let why = format!(
                "image is being used by running container {}",
                truncate_id(&user.container_id)
            );
            return Ok(conflict("cannot be forced", why));
        }
        if !force {
            let why = format!(
                "image is being used by stopped container {}",
                truncate_id(&user.container_id)
            );
            return Ok(conflict("must be forced", why));
        }
    }
    if !force && !ignore_names && !references(conn, id)?.is_empty() {
        return Ok(conflict(
            "must be forced",
            "image is referenced in multiple repositories".into(),
        ));
    }
    Ok(None)
}

fn references(conn: &Connection, id: &Digest) -> Result<Vec<String>> {
    let mut names = names_of(conn, "SELECT name FROM tags WHERE image_id = ?1", id)?;
    names.extend(names_of(
        conn,
        "SELECT name FROM repo_digests WHERE image_id = ?1",
        id,
    )?);
    Ok(names)
}

/// The repository part of a full reference: everything before the tag or digest.
fn repository(full: &str) -> &str {
    let without_digest = full.split('@').next().unwrap_or(full);
    match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    }
}

/// True when every name is in one repository (Docker's `isSingleReference`).
fn single_repository(refs: &[String]) -> bool {
    let mut repos = refs.iter().map(|r| repository(r));
    match repos.next() {
        None => true,
        Some(first) => repos.all(|r| r == first),
    }
}

fn truncate_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..12.min(hex.len())]
}

fn exists(conn: &Connection, sql: &str, key: &str) -> Result<bool> {
    Ok(conn.query_row(sql, [key], |_| Ok(())).optional()?.is_some())
}

fn names_of(conn: &Connection, sql: &str, id: &Digest) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([id.to_string()], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn untag(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM tags WHERE name = ?1", [name])?;
    conn.execute("DELETE FROM repo_digests WHERE name = ?1", [name])?;
    Ok(())
}

fn familiar(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_string(), |r| r.familiar_string())
}

fn lookup_tag(conn: &Connection, reference: &Reference) -> Result<Option<Digest>> {
    let found: Option<String> = conn
        .query_row(
            "SELECT image_id FROM tags WHERE name = ?1",
            [reference.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.map(|s| s.parse()).transpose()?)
}

fn lookup_tag_or_digest(conn: &Connection, name: &str) -> Result<Option<Digest>> {
    let Ok(reference) = Reference::parse(name) else {
        return Ok(None);
    };
    if let Some(digest) = reference.digest() {
        let by_digest = format!("{}@{}", reference.name(), digest);
        let found: Option<String> = conn
            .query_row(
                "SELECT image_id FROM repo_digests WHERE name = ?1",
                [by_digest],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(found) = found {
            return Ok(Some(found.parse()?));
        }
        // `name@<image id>` also names a local image, as in Docker.
        if exists(
            conn,
            "SELECT 1 FROM images WHERE id = ?1",
            &digest.to_string(),
        )? {
            return Ok(Some(digest.clone()));
        }
        return Ok(None);
    }
    lookup_tag(conn, &reference.with_default_tag())
}

fn resolve(conn: &Connection, name_or_id: &str) -> Result<Digest> {
    if let Some(id) = lookup_tag_or_digest(conn, name_or_id)? {
        return Ok(id);
    }
    let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hex = hex.to_ascii_lowercase();
        let mut stmt =
            conn.prepare_cached("SELECT id FROM images WHERE id >= ?1 AND id < ?2 LIMIT 2")?;
        let lo = format!("sha256:{hex}");
        let hi = format!("sha256:{hex}\u{7f}");
        let ids: Vec<String> = stmt
            .query_map([lo, hi], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        match ids.len() {
            1 => return Ok(ids[0].parse()?),
            2 => {
                return Err(StoreError::Conflict(format!(
                    "multiple IDs found with provided prefix: {hex}"
                )))
            }
            _ => {}
        }
    }
    Err(StoreError::ImageNotFound(name_or_id.to_string()))
}

fn list(conn: &Connection, only: Option<&Digest>) -> Result<Vec<ImageRecord>> {
    let mut names: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT image_id, name, 0 FROM tags WHERE ?1 IS NULL OR image_id = ?1
             UNION ALL SELECT image_id, name, 1 FROM repo_digests WHERE ?1 IS NULL OR image_id = ?1",
        )?;
        let rows = stmt.query_map([only.map(|d| d.to_string())], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (image, name, is_digest) = row?;
            let entry = names.entry(image).or_default();
            if is_digest == 1 {
                entry.1.push(name)
            } else {
                entry.0.push(name)
            }
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, top_layer, manifest_digest, parent, created, size FROM images
         WHERE ?1 IS NULL OR id = ?1 ORDER BY created DESC, added DESC",
    )?;
    let rows = stmt.query_map([only.map(|d| d.to_string())], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, top, manifest, parent, created, size) = row?;
        let (mut tags, mut repo_digests) = names.remove(&id).unwrap_or_default();
        tags.sort();
        repo_digests.sort();
        out.push(ImageRecord {
            id: id.parse()?,
            top_layer: top.map(|t| t.parse()).transpose()?,
            manifest_digest: manifest.map(|m| m.parse()).transpose()?,
            parent: parent.map(|p| p.parse()).transpose()?,
            created,
            size: size as u64,
            tags,
            repo_digests,
        });
    }
    Ok(out)
}
