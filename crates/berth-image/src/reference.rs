//! Docker-compatible image references.
