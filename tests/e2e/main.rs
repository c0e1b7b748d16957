//! End-to-end tests: each drives the real `berth` binary in its own temp `--root`.

mod archive;
mod cli;
mod images;
mod store;
