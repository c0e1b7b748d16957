//! berth's image model: digests, references, image configs, the content store and layer tars.
//!
//! Where to start reading:
//! - [`digest`]: `Digest`, `DiffId`, `ChainId`;
//! - [`reference`]: Docker-compatible image names (`busybox` → `docker.io/library/busybox:latest`);
//! - [`layer`]: unpacking untrusted layer tars into overlay-ready directories and writing them back;
//! - [`config`]: the image configuration (OCI plus Docker's extra fields);
//! - [`store`]: blobs, unpacked layers and the SQLite metadata that names them;
//! - [`archive`]: `save`/`load` tars (docker-archive + OCI layout).

pub mod digest;
pub mod layer;
pub mod reference;

pub use digest::{ChainId, DiffId, Digest, DigestError};
pub use reference::{Reference, ReferenceError};
pub mod config;
pub mod store;
