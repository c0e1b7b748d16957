#!/usr/bin/env bash
# The main job on a fresh machine: build berth, import the busybox example image, list and
# inspect it. Uses a throwaway store under /tmp unless BERTH_ROOT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p berth
berth=target/release/berth
export BERTH_ROOT=${BERTH_ROOT:-/tmp/berth-demo/root} BERTH_RUNROOT=${BERTH_RUNROOT:-/tmp/berth-demo/run}
./examples/busybox-rootfs.sh /tmp/berth-demo/busybox.tar
set -x
$berth import -c 'CMD ["/bin/sh", "-c", "echo hello from berth"]' /tmp/berth-demo/busybox.tar demo/busybox:latest
$berth images
$berth image inspect --format '{{.Id}} {{json .Config.Cmd}} {{.Size}}' demo/busybox
$berth history demo/busybox
