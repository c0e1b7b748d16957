//! Finding the shared conformance files (`BERTH_SHARED` or the `shared`
//! directory beside the repository); tests skip when they are absent.

use std::path::PathBuf;

/// The conformance directory, if present.
pub fn conformance_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("BERTH_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let dir = base.join("conformance");
    dir.is_dir().then_some(dir)
}

/// The text of a conformance file, or `None` (with a note) when absent.
#[allow(dead_code)]
pub fn read_shared(rel: &str) -> Option<String> {
    let Some(dir) = conformance_dir() else {
        eprintln!("note: shared conformance files not found; skipping {rel}");
        return None;
    };
    match std::fs::read_to_string(dir.join(rel)) {
        Ok(text) => Some(text),
        Err(e) => {
            eprintln!("note: cannot read {rel}: {e}; skipping");
            None
        }
    }
}
