#!/usr/bin/env bash
# Installs what building and testing need on Debian 12: libnuma-dev for the engine, libssl-dev
# (and the openssl tool, which regenerates the TLS test credentials) for the transport; python3
# with jsonschema (the CLI tests validate its JSON against docs/schemas) and mdevctl (they
# check target-spec's definitions with it); and with --guest the packages the real-kernel
# guest tests use (QEMU, busybox, cpio, xz, zstd).
# Swift itself (6.1 or newer) must already be on PATH.
set -euo pipefail
packages=(libnuma-dev pkg-config libssl-dev openssl python3 python3-jsonschema mdevctl)
if [ "${1:-}" = "--guest" ]; then
  packages+=(qemu-system-x86 busybox-static cpio xz-utils zstd kmod gcc make bc flex bison libelf-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (install Swift 6.1 or newer)" >&2; exit 1; }
echo "setup: ready"
