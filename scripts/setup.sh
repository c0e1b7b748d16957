#!/usr/bin/env bash
# Installs what building and testing berth needs on a fresh Debian machine (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(busybox-static tini oci-image-tool docker-registry openssl iproute2 iptables nftables curl tar gzip python3 build-essential pkg-config)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (rustup)" >&2; exit 1; }
