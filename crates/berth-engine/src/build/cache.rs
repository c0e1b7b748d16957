//! The build cache: the SQLite table `build_cache` maps a step's cache key to the layer the step
//! made (its chain ID) and the time recorded in its history entry.
//!
//! Only layer steps (RUN, COPY, ADD) are stored: metadata steps are recomputed, which costs
//! nothing, but their keys still chain into the keys of the steps after them. A hit is only a
//! hit while its layer is still in the store, so a layer removed by `rmi` + garbage collection
//! turns into a miss instead of an error. The store's layer GC should also treat
//! `build_cache.chain_id` as a root (see `berth-image`'s `collect_garbage_layers`).

use berth_build::cache_key::CacheKey;
use berth_image::store::{LayerInfo, Store};
use berth_image::ChainId;
use rusqlite::{params, OptionalExtension};

use super::Result;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS build_cache (
    key      TEXT PRIMARY KEY,
    chain_id TEXT NOT NULL,
    created  TEXT NOT NULL,
    used     INTEGER NOT NULL
);";

/// A cached step result.
#[derive(Debug, Clone)]
pub struct Hit {
    pub layer: LayerInfo,
    /// RFC 3339 time of the step's history entry.
    pub created: String,
}

/// The cache table on a store.
pub struct Cache<'s> {
    store: &'s Store,
}

impl<'s> Cache<'s> {
    pub fn open(store: &'s Store) -> Result<Cache<'s>> {
        store.db().conn().execute_batch(SCHEMA)?;
        Ok(Cache { store })
    }

    /// The stored result of `key`, if its layer still exists.
    pub fn get(&self, key: &CacheKey) -> Result<Option<Hit>> {
        let row: Option<(String, String)> = self
            .store
            .db()
            .conn()
            .query_row(
                "SELECT chain_id, created FROM build_cache WHERE key = ?1",
                [key.to_hex()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((chain, created)) = row else {
            return Ok(None);
        };
        let Ok(chain) = chain.parse::<ChainId>() else {
            return Ok(None);
        };
        match self.store.layer_info(&chain) {
            Ok(layer) if self.store.layer_dir(&chain).is_dir() => Ok(Some(Hit { layer, created })),
            _ => Ok(None),
        }
    }

    /// Records the result of a step.
    pub fn put(&self, key: &CacheKey, layer: &LayerInfo, created: &str) -> Result<()> {
        let tx = self.store.db().write()?;
        tx.execute(
            "INSERT INTO build_cache (key, chain_id, created, used) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key) DO UPDATE SET chain_id = excluded.chain_id,
                created = excluded.created, used = excluded.used",
            params![
                key.to_hex(),
                layer.chain_id.to_string(),
                created,
                chrono::Utc::now().timestamp()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes every entry; returns the bytes of layers that were only referenced here.
    pub fn clear(&self) -> Result<u64> {
        Ok(self.clear_used_before(i64::MAX)?.1)
    }

    /// Removes the entries last used before `until` (unix seconds); returns their keys and
    /// the bytes of layers that were only referenced by them.
    pub fn clear_used_before(&self, until: i64) -> Result<(Vec<String>, u64)> {
        let tx = self.store.db().write()?;
        let size: i64 = tx.query_row(
            "SELECT COALESCE(SUM(size), 0) FROM layers
             WHERE chain_id IN (SELECT chain_id FROM build_cache WHERE used < ?1)
               AND chain_id NOT IN (SELECT top_layer FROM images WHERE top_layer IS NOT NULL)",
            [until],
            |r| r.get(0),
        )?;
        let keys: Vec<String> = {
            let mut stmt = tx.prepare("DELETE FROM build_cache WHERE used < ?1 RETURNING key")?;
            let rows = stmt.query_map([until], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.commit()?;
        Ok((keys, size as u64))
    }

    /// The number of entries.
    pub fn len(&self) -> Result<usize> {
        let n: i64 =
            self.store
                .db()
                .conn()
                .query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}
