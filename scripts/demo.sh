#!/usr/bin/env bash
# The main job on a fresh machine: build berth, import a busybox base image, build the demo
# image from examples/hello and run it as a container. Uses a throwaway store under
# /tmp/berth-demo unless BERTH_ROOT / BERTH_RUNROOT are set.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p berth
berth=${CARGO_TARGET_DIR:-target}/release/berth
export BERTH_ROOT=${BERTH_ROOT:-/tmp/berth-demo/root} BERTH_RUNROOT=${BERTH_RUNROOT:-/tmp/berth-demo/run}
./examples/busybox-rootfs.sh /tmp/berth-demo/busybox.tar
set -x
$berth import /tmp/berth-demo/busybox.tar busybox:latest
$berth build -t demo/hello:latest examples/hello
$berth images
$berth history demo/hello
$berth run --rm --pull never demo/hello
$berth run -d --name demo-sleeper --pull never busybox sleep 60
$berth ps
$berth exec demo-sleeper ps
$berth rm -f demo-sleeper
