//! `rename`.

use super::names;
use super::state::{self, name_conflict};
use crate::{Engine, EngineError, Result};

impl Engine {
    pub fn rename_container(&self, name_or_id: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        names::validate(new_name).map_err(EngineError::InvalidArgument)?;
        let tx = self.store().db().write()?;
        let c = state::resolve(&tx, name_or_id)?;
        if c.name == new_name {
            return Err(EngineError::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        let holder: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
            "SELECT id FROM containers WHERE name = ?1",
            [new_name],
            |r| r.get(0),
        ))?;
        if let Some(holder) = holder {
            return Err(name_conflict(new_name, &holder));
        }
        tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            [&c.id, new_name],
        )?;
        crate::events::container(
            &tx,
            &c.id,
            "rename",
            &[("oldName", &format!("/{}", c.name))],
        );
        tx.commit()?;
        Ok(())
    }
}
