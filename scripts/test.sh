#!/usr/bin/env bash
# Sets up a fresh machine and runs every check and test berth has (run as root: the tests
# create real containers, overlay mounts, cgroups and network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
