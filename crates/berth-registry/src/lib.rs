//! berth's OCI distribution client: talks to Docker Hub and self-hosted registries.
//!
//! Where to start reading:
//! - [`Registry`]: one registry endpoint: https/http choice, auth (anonymous, basic, bearer
//!   tokens from `WWW-Authenticate` challenges, cached per scope), retries with backoff, and the
//!   API calls (manifests, blobs, uploads, cross-repository mounts, tags, catalog);
//! - [`BlobReader`]: a blob as a `Read` that resumes dropped connections with `Range`;
//! - [`manifest`]: OCI and Docker schema2 manifests, indexes and manifest lists;
//! - [`platform`]: `os/arch[/variant]`, index resolution, runnable platforms (binfmt_misc);
//! - [`credentials`]: Docker's `config.json`, `credsStore` and `credHelpers`.
//!
//! The client is blocking (reqwest's blocking client, rustls with the ring provider): callers
//! run transfers on plain threads, which keeps it usable from single-threaded code that may fork.
//! Plain http is used only for localhost, 127.0.0.0/8, ::1 and registries listed in
//! `BERTH_INSECURE_REGISTRIES` (see [`client::INSECURE_REGISTRIES_ENV`]).

pub mod auth;
pub mod blob;
pub mod client;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod platform;

pub use blob::BlobReader;
pub use client::{Body, Mount, Registry, RegistryConfig};
pub use credentials::{auth_key, CredentialStore, Credentials};
pub use error::{RegistryError, Result};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest};
pub use platform::{runnable_platforms, Platform};
