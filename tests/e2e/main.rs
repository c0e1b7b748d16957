//! End-to-end tests: each drives the real `berth` binary in its own temp `--root`.

mod archive;
mod build;
mod cli;
mod containers;
mod cp_stream;
mod events;
mod images;
mod lifecycle;
mod network;
mod registry;
mod registry_auth;
mod registry_faults;
mod registry_platform;
mod run_flags;
mod store;
mod update;
mod volumes;
