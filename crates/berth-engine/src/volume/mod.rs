//! Volumes: directories under `<root>/volumes/<name>/_data` that outlive the containers using
//! them, with Docker's `local` driver semantics.
//!
//! Where to start reading:
//! - this file: the `volumes` table, names, and the crash-safe create and remove;
//! - [`mounts`]: `-v`, `--mount` and `--volumes-from` parsed and resolved into a container's
//!   mount points (the `container_mounts` table), and what `inspect` shows of them;
//! - [`activate`]: what `start` does with them — the local driver's `mount -t TYPE -o O
//!   DEVICE`, the copy of the image's content into a new volume ([`copy`]), the spec entries,
//!   and unmounting a volume once no running container uses it.
//!
//! A volume is visible exactly when its row is committed. Creation makes the directory inside
//! the write transaction that inserts the row; removal deletes the row first and the directory
//! after the commit. A `kill -9` at any point therefore leaves at most a directory without a
//! row, which nothing shows and which the next create of that name (or `prune`) clears away.

pub mod activate;
pub mod copy;
pub mod list;
pub mod mounts;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};

use crate::container::{now_nanos, rfc3339};
use crate::error::io_error;
use crate::{Engine, EngineError, Result};

/// The directory under the root holding one directory per volume.
pub const VOLUMES_DIR: &str = "volumes";
/// The only driver berth has, and Docker's default.
pub const LOCAL_DRIVER: &str = "local";
/// The label Docker (23+) puts on anonymous volumes; `volume prune` without `-a` removes only
/// these.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS volumes (
    name      TEXT PRIMARY KEY,
    driver    TEXT NOT NULL,
    created   INTEGER NOT NULL,
    labels    TEXT NOT NULL,
    options   TEXT NOT NULL,
    populated INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS container_mounts (
    container_id TEXT NOT NULL,
    destination  TEXT NOT NULL,
    type         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL DEFAULT '',
    mode         TEXT NOT NULL DEFAULT '',
    rw           INTEGER NOT NULL,
    propagation  TEXT NOT NULL DEFAULT '',
    copy_data    INTEGER NOT NULL DEFAULT 1,
    tmpfs        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (container_id, destination)
);
CREATE INDEX IF NOT EXISTS container_mounts_by_volume ON container_mounts(name);
"#;

/// Creates the volume tables if this database does not have them yet.
pub fn ensure_schema(conn: &Connection) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'container_mounts'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    }
    Ok(())
}

/// One row of the volumes table.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// Nanoseconds since the epoch.
    pub created: i64,
    pub labels: BTreeMap<String, String>,
    /// The local driver's `type`, `device` and `o`.
    pub options: BTreeMap<String, String>,
    /// The image's content was copied in once already (or the volume was used without it).
    pub populated: bool,
}

const COLUMNS: &str = "name, driver, created, labels, options, populated";

impl Volume {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Volume> {
        let labels: String = row.get(3)?;
        let options: String = row.get(4)?;
        Ok(Volume {
            name: row.get(0)?,
            driver: row.get(1)?,
            created: row.get(2)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            options: serde_json::from_str(&options).unwrap_or_default(),
            populated: row.get::<_, i64>(5)? != 0,
        })
    }

    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Whether the local driver mounts something (`type`/`device`) on the volume's directory.
    pub fn is_mounted_by_driver(&self) -> bool {
        self.options.contains_key("type") || self.options.contains_key("device")
    }

    /// `volume inspect`'s document.
    pub fn inspect(&self, root: &Path) -> Value {
        json!({
            "CreatedAt": created_at(self.created),
            "Driver": self.driver,
            "Labels": if self.labels.is_empty() { Value::Null } else { json!(self.labels) },
            "Mountpoint": data_dir(root, &self.name).display().to_string(),
            "Name": self.name,
            "Options": if self.options.is_empty() { Value::Null } else { json!(self.options) },
            "Scope": "local",
        })
    }
}

/// Docker's volume timestamps: RFC 3339 to the second.
fn created_at(nanos: i64) -> String {
    rfc3339(nanos - nanos % 1_000_000_000)
}

/// `<root>/volumes/<name>`: the volume's own directory.
pub fn volume_dir(root: &Path, name: &str) -> PathBuf {
    root.join(VOLUMES_DIR).join(name)
}

/// `<root>/volumes/<name>/_data`: what containers see.
pub fn data_dir(root: &Path, name: &str) -> PathBuf {
    volume_dir(root, name).join("_data")
}

/// Docker's rule for local volume names, `[a-zA-Z0-9][a-zA-Z0-9_.-]+`: never a path.
pub fn validate_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = name.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok {
        return Ok(());
    }
    Err(EngineError::InvalidArgument(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use \
         absolute path"
    )))
}

/// What `volume create` (or a container that names a missing volume) asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeRequest {
    /// None: a random 64-hex name, as Docker gives.
    pub name: Option<String>,
    /// None: `local`.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

impl VolumeRequest {
    /// An anonymous volume (random name, Docker's anonymous label).
    pub fn anonymous() -> VolumeRequest {
        VolumeRequest {
            name: Some(random_name()),
            labels: BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]),
            ..VolumeRequest::default()
        }
    }

    /// Checks everything that does not need the store: name, driver, local driver options.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.as_deref().unwrap_or("");
        if let Some(name) = &self.name {
            validate_name(name)?;
        }
        let bad = |m: String| Err(EngineError::InvalidArgument(format!("create {name}: {m}")));
        let driver = self.driver.as_deref().unwrap_or(LOCAL_DRIVER);
        if driver != LOCAL_DRIVER {
            return bad(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            ));
        }
        for key in self.options.keys() {
            if !matches!(key.as_str(), "type" | "device" | "o") {
                return bad(format!("invalid option key: {key:?}"));
            }
        }
        let has = |k: &str| self.options.get(k).is_some_and(|v| !v.is_empty());
        if has("type") && !has("device") {
            return bad("missing required option: \"device\"".into());
        }
        if has("device") && !has("type") {
            return bad("missing required option: \"type\"".into());
        }
        Ok(())
    }
}

/// 32 random bytes as 64 hex digits.
pub fn random_name() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Docker's wording for an unknown volume.
pub fn no_such_volume(name: &str) -> EngineError {
    EngineError::NotFound(format!("get {name}: no such volume"))
}

/// Reads one volume.
pub fn load(conn: &Connection, name: &str) -> Result<Option<Volume>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
            [name],
            Volume::from_row,
        )
        .optional()?)
}

/// Every volume, by name.
pub fn load_all(conn: &Connection) -> Result<Vec<Volume>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))?;
    let rows = stmt.query_map([], Volume::from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The containers (full IDs) that use volume `name`, running or not.
pub fn users(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT m.container_id FROM container_mounts m
           JOIN containers c ON c.id = m.container_id
          WHERE m.type = 'volume' AND m.name = ?1 ORDER BY m.container_id",
    )?;
    let rows = stmt.query_map([name], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// Creates the volume inside the caller's write transaction `tx`, or returns the one that
/// exists under that name (Docker's `volume create` is idempotent).
pub(crate) fn create_in(tx: &Connection, root: &Path, request: &VolumeRequest) -> Result<Volume> {
    request.validate()?;
    let name = request.name.clone().unwrap_or_else(random_name);
    if let Some(existing) = load(tx, &name)? {
        return Ok(existing);
    }
    let dir = volume_dir(root, &name);
    // A directory without a row is what a crash left behind: nothing ever saw it.
    if fs::symlink_metadata(&dir).is_ok() {
        activate::unmount(&data_dir(root, &name));
        fs::remove_dir_all(&dir).map_err(io_error("remove", &dir))?;
    }
    let data = dir.join("_data");
    fs::create_dir_all(&data).map_err(io_error("create", &data))?;
    let volume = Volume {
        name,
        driver: LOCAL_DRIVER.to_string(),
        created: now_nanos(),
        labels: request.labels.clone(),
        options: request.options.clone(),
        populated: false,
    };
    let inserted = tx.execute(
        &format!("INSERT INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 0)"),
        params![
            volume.name,
            volume.driver,
            volume.created,
            serde_json::to_string(&volume.labels).expect("labels serialise"),
            serde_json::to_string(&volume.options).expect("options serialise"),
        ],
    );
    if let Err(err) = inserted {
        let _ = fs::remove_dir_all(&dir);
        return Err(err.into());
    }
    crate::events::volume(tx, "create", &volume.name, &volume.driver);
    Ok(volume)
}

/// Deletes volume `name`'s row inside `tx` when no container uses it; the caller removes the
/// files with [`remove_files`] once `tx` is committed.
fn delete_in(tx: &Connection, name: &str) -> Result<Option<Volume>> {
    let Some(volume) = load(tx, name)? else {
        return Ok(None);
    };
    let users = users(tx, name)?;
    if !users.is_empty() {
        return Err(EngineError::Conflict(format!(
            "remove {name}: volume is in use - [{}]",
            users.join(", ")
        )));
    }
    tx.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
    crate::events::volume(tx, "destroy", &volume.name, &volume.driver);
    Ok(Some(volume))
}

/// Removes a deleted volume's directory (unmounting whatever the driver mounted there).
fn remove_files(root: &Path, name: &str) -> Result<()> {
    activate::unmount(&data_dir(root, name));
    let dir = volume_dir(root, name);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("remove", &dir)(e)),
        _ => Ok(()),
    }
}

/// Bytes under `path`, not following symlinks nor crossing into other file systems' mounts.
pub fn disk_size(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// What `volume prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<String>,
    pub reclaimed: u64,
}

impl Engine {
    /// `volume create`.
    pub fn create_volume(&self, request: &VolumeRequest) -> Result<Volume> {
        let tx = self.store().db().write()?;
        let volume = create_in(&tx, self.root(), request)?;
        tx.commit()?;
        Ok(volume)
    }

    /// `volume inspect`.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        load(self.store().db().conn(), name)?
            .ok_or_else(|| EngineError::NotFound(format!("No such volume: {name}")))
    }

    /// `volume rm`: refused while any container (even a stopped one) uses it; `force` only
    /// forgives a missing volume, as Docker's does.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let tx = self.store().db().write()?;
        let removed = delete_in(&tx, name)?;
        tx.commit()?;
        match removed {
            Some(_) => remove_files(self.root(), name),
            None if force => Ok(()),
            None => Err(no_such_volume(name)),
        }
    }

    /// `volume prune`: unused volumes (only anonymous ones unless `all`) whose labels pass
    /// `filter`. Also clears directories a crash left without a row.
    pub fn prune_volumes(
        &self,
        all: bool,
        filter: &crate::system::PruneFilter,
    ) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let tx = self.store().db().write()?;
        let mut removed = Vec::new();
        for volume in load_all(&tx)? {
            if !(all || volume.is_anonymous()) || !filter.matches_labels(&volume.labels) {
                continue;
            }
            if !users(&tx, &volume.name)?.is_empty() {
                continue;
            }
            delete_in(&tx, &volume.name)?;
            removed.push(volume.name);
        }
        tx.commit()?;
        for name in removed {
            report.reclaimed += disk_size(&data_dir(self.root(), &name));
            remove_files(self.root(), &name)?;
            report.removed.push(name);
        }
        self.clear_orphans();
        Ok(report)
    }

    /// Removes volume directories that have no row (left by a crash mid-create or mid-remove).
    fn clear_orphans(&self) {
        let Ok(entries) = fs::read_dir(self.root().join(VOLUMES_DIR)) else {
            return;
        };
        let Ok(tx) = self.store().db().write() else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Under the write lock no create is half-way: a directory without a row is stale.
            if !matches!(load(&tx, &name), Ok(None)) {
                continue;
            }
            let _ = remove_files(self.root(), &name);
        }
        let _ = tx.commit();
    }
}
