//! The SQLite metadata database shared by every berth process on a store.
//!
//! WAL mode lets readers run while one writer commits; `busy_timeout` makes concurrent writers
//! queue instead of failing. Writers use `BEGIN IMMEDIATE` so that a read-then-write transaction
//! can never deadlock on lock upgrade.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::Result;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS layers (
    chain_id   TEXT PRIMARY KEY,
    diff_id    TEXT NOT NULL,
    parent     TEXT REFERENCES layers(chain_id),
    size       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_blobs (
    digest     TEXT PRIMARY KEY,
    diff_id    TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS layer_blobs_by_diff ON layer_blobs(diff_id);
CREATE TABLE IF NOT EXISTS images (
    id              TEXT PRIMARY KEY,
    config          BLOB NOT NULL,
    top_layer       TEXT REFERENCES layers(chain_id),
    manifest_digest TEXT,
    parent          TEXT,
    created         INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    added           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_by_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests (
    name     TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id),
    PRIMARY KEY (name, image_id)
);
"#;

/// WAL frames after which a commit checkpoints. Every berth command is a new process, so the
/// first connection of each rebuilds the WAL index by reading every frame of the WAL: with
/// SQLite's default (1000 pages, 4 MiB) that cost a `run` up to 2 ms; 64 pages keep it near
/// 0.1 ms, for a checkpoint (two cheap fsyncs) every few runs.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 64;

/// Opens a connection to an existing database (as [`Db::open`] leaves it: in WAL mode) with
/// the settings every berth process uses. It never creates one: a process that outlives its
/// command, such as a container's monitor, must not bring back a store that was deleted.
pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    configure(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

fn configure(conn: Connection) -> rusqlite::Result<Connection> {
    conn.busy_timeout(std::time::Duration::from_secs(60))?;
    // NORMAL is durable against a killed process in WAL mode; only a power cut can lose the
    // last transactions, and even then the database stays consistent.
    conn.execute_batch(&format!(
        "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES};"
    ))?;
    // Checkpointing and deleting the WAL at each close would cost every command an fsync and
    // an unlink; commits checkpoint as the WAL grows, and the WAL is the durable log either
    // way.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}

/// A connection to the metadata database.
pub struct Db {
    conn: Connection,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = configure(Connection::open(path)?)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 1 {
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch("PRAGMA user_version=1")?;
            tx.commit()?;
        }
        Ok(Db { conn })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts a write transaction that holds the database write lock until commit.
    pub fn write(&self) -> Result<Transaction<'_>> {
        Ok(Transaction::new_unchecked(
            &self.conn,
            TransactionBehavior::Immediate,
        )?)
    }
}
