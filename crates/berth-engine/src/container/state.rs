//! The `containers` table and the container state machine.
//!
//! ```text
//! created ──start──▶ running ──exit──▶ exited ──start──▶ running
//!                     │  ▲   └─exit + restart policy─▶ restarting ──backoff──▶ running
//!                pause│  │unpause
//!                     ▼  │
//!                    paused
//! any ──rm──▶ removing ──▶ (gone);   running without a monitor ──reconcile──▶ exited
//! ```
//!
//! Every transition is one SQLite write transaction (`BEGIN IMMEDIATE`), so concurrent berth
//! processes see one consistent state. While a container is running, its monitor holds an
//! exclusive `flock` on `<runroot>/containers/<id>/lock`; that is how a dead monitor is
//! detected (see `reconcile.rs`).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::config::{Config, HostConfig};
use crate::{EngineError, Result};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS containers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    image_id      TEXT NOT NULL,
    image         TEXT NOT NULL,
    state         TEXT NOT NULL,
    created       INTEGER NOT NULL,
    config        TEXT NOT NULL,
    host_config   TEXT NOT NULL,
    pid           INTEGER NOT NULL DEFAULT 0,
    monitor_pid   INTEGER NOT NULL DEFAULT 0,
    started_at    INTEGER NOT NULL DEFAULT 0,
    finished_at   INTEGER NOT NULL DEFAULT 0,
    exit_code     INTEGER NOT NULL DEFAULT 0,
    oom_killed    INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    manual_stop   INTEGER NOT NULL DEFAULT 0,
    error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS containers_by_image ON containers(image_id);
"#;

/// Creates the containers table if this database does not have it yet.
pub fn ensure_schema(conn: &Connection) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'containers'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
    }
    Ok(())
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> ContainerState {
        match text {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            _ => ContainerState::Dead,
        }
    }

    /// Whether a monitor is (supposed to be) looking after the container.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
}

/// One row of the containers table.
#[derive(Debug, Clone)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// `sha256:…`.
    pub image_id: String,
    /// The image as the user named it.
    pub image: String,
    pub state: ContainerState,
    /// Nanoseconds since the epoch.
    pub created: i64,
    pub config: Config,
    pub host_config: HostConfig,
    /// The container's init in the host pid namespace, 0 when not running.
    pub pid: i32,
    pub monitor_pid: i32,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub restart_count: i64,
    /// Stopped by the user: no restart (and `unless-stopped` stays down).
    pub manual_stop: bool,
    pub error: String,
}

pub(crate) const COLUMNS: &str = "id, name, image_id, image, state, created, config, host_config, \
    pid, monitor_pid, started_at, finished_at, exit_code, oom_killed, restart_count, manual_stop, error";

impl Container {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Container> {
        let config: String = row.get(6)?;
        let host_config: String = row.get(7)?;
        Ok(Container {
            id: row.get(0)?,
            name: row.get(1)?,
            image_id: row.get(2)?,
            image: row.get(3)?,
            state: ContainerState::parse(&row.get::<_, String>(4)?),
            created: row.get(5)?,
            config: serde_json::from_str(&config).unwrap_or_default(),
            host_config: serde_json::from_str(&host_config).unwrap_or_default(),
            pid: row.get(8)?,
            monitor_pid: row.get(9)?,
            started_at: row.get(10)?,
            finished_at: row.get(11)?,
            exit_code: row.get(12)?,
            oom_killed: row.get::<_, i64>(13)? != 0,
            restart_count: row.get(14)?,
            manual_stop: row.get::<_, i64>(15)? != 0,
            error: row.get(16)?,
        })
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// Inserts the row; a taken name is Docker's conflict error.
    pub(crate) fn insert(&self, conn: &Connection) -> Result<()> {
        let taken: Option<String> = conn
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [&self.name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            return Err(name_conflict(&self.name, &other));
        }
        conn.execute(
            &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
            params![
                self.id,
                self.name,
                self.image_id,
                self.image,
                self.state.as_str(),
                self.created,
                serde_json::to_string(&self.config).expect("config serialises"),
                serde_json::to_string(&self.host_config).expect("host config serialises"),
                self.pid,
                self.monitor_pid,
                self.started_at,
                self.finished_at,
                self.exit_code,
                self.oom_killed as i64,
                self.restart_count,
                self.manual_stop as i64,
                self.error,
            ],
        )?;
        Ok(())
    }
}

/// Docker's wording for a taken name.
pub fn name_conflict(name: &str, holder: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// Docker's wording for an unknown container.
pub fn no_such_container(name: &str) -> EngineError {
    EngineError::NotFound(format!("No such container: {name}"))
}

/// Reads one container by exact ID.
pub fn load(conn: &Connection, id: &str) -> Result<Option<Container>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
            [id],
            Container::from_row,
        )
        .optional()?)
}

/// Every container, newest first.
pub fn load_all(conn: &Connection) -> Result<Vec<Container>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM containers ORDER BY created DESC"
    ))?;
    let rows = stmt.query_map([], Container::from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Docker's lookup order: full ID, exact name, then a unique ID prefix.
pub fn resolve(conn: &Connection, name_or_id: &str) -> Result<Container> {
    let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
    if key.is_empty() {
        return Err(no_such_container(name_or_id));
    }
    if let Some(c) = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1"),
            [key],
            Container::from_row,
        )
        .optional()?
    {
        return Ok(c);
    }
    if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(no_such_container(name_or_id));
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM containers WHERE substr(id, 1, ?2) = ?1 LIMIT 2"
    ))?;
    let found: Vec<Container> = stmt
        .query_map(
            params![key.to_ascii_lowercase(), key.len() as i64],
            Container::from_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(no_such_container(name_or_id)),
        _ => Err(EngineError::InvalidArgument(format!(
            "multiple IDs found with provided prefix: {name_or_id}"
        ))),
    }
}

/// Sets the state (and nothing else) of container `id`.
pub fn set_state(conn: &Connection, id: &str, state: ContainerState) -> Result<()> {
    conn.execute(
        "UPDATE containers SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )?;
    Ok(())
}

/// Records that the container's process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub code: i32,
    pub oom_killed: bool,
    pub finished_at: i64,
}

/// Writes an exit: `exited`, or `restarting` (with the restart counted) when the policy
/// restarts it.
pub fn record_exit(conn: &Connection, id: &str, exit: Exit, restarting: bool) -> Result<()> {
    let state = if restarting {
        ContainerState::Restarting
    } else {
        ContainerState::Exited
    };
    conn.execute(
        "UPDATE containers SET state = ?2, exit_code = ?3, oom_killed = ?4, finished_at = ?5, pid = 0,
            restart_count = restart_count + ?6
         WHERE id = ?1",
        params![id, state.as_str(), exit.code, exit.oom_killed as i64, exit.finished_at, restarting as i64],
    )?;
    Ok(())
}
