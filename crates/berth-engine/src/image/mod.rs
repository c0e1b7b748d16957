//! Image operations: what `import`, `images`, `inspect`, `history`, `tag`, `rmi`, `prune`,
//! `save` and `load` do, independent of how the CLI prints it.

mod archive;
mod changes;
mod history;
mod import;
mod inspect;
mod list;
mod remove;

pub use archive::LoadedImage;
pub use changes::apply_changes;
pub use history::HistoryRow;
pub use import::{ImportOptions, ImportSource};
pub use list::{ImageFilter, ImageRow};
pub use remove::PruneReport;

use berth_image::reference::Reference;
use berth_image::Digest;

use crate::{Engine, EngineError, Result};

impl Engine {
    /// Resolves a name or (prefix of an) ID to an image ID.
    pub fn resolve_image(&self, name_or_id: &str) -> Result<Digest> {
        Ok(self.store().resolve(name_or_id)?)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let id = self.resolve_image(source)?;
        let reference = parse_reference(target)?;
        if reference.digest().is_some() {
            return Err(EngineError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let reference = reference.with_default_tag();
        self.store().tag(&id, &reference)?;
        self.image_event("tag", &id.to_string(), &reference.familiar_string());
        Ok(())
    }
}

/// Parses a user-supplied image reference, with Docker's error wording.
pub fn parse_reference(text: &str) -> Result<Reference> {
    Reference::parse(text).map_err(|e| {
        EngineError::InvalidArgument(format!("invalid reference format: {text:?}: {e}"))
    })
}
