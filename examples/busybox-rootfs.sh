#!/usr/bin/env bash
# Writes a minimal busybox root filesystem tar (from Debian's busybox-static) to $1.
set -euo pipefail
out=${1:?usage: busybox-rootfs.sh OUT.tar}
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,etc,tmp,root,www,proc,sys,dev}
cp /bin/busybox "$stage/bin/busybox"
for applet in sh ls echo cat true false sleep env id hostname ps wget httpd touch rm mkdir head wc grep chmod uname; do
  ln -s busybox "$stage/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$stage/etc/passwd"
echo 'root:x:0:' > "$stage/etc/group"
echo '<h1>hello from berth</h1>' > "$stage/www/index.html"
mkdir -p "$(dirname "$out")"
tar -C "$stage" --numeric-owner -cf "$out" .
