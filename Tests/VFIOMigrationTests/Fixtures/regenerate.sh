#!/usr/bin/env bash
# Regenerates the captured-stream fixtures with the project's own mock devices. Old fixtures
# must keep decoding when the format evolves: add new files, do not rewrite old ones unless
# the format's compatibility rule says they can no longer be read (and say why in the commit).
set -euo pipefail
cd "$(dirname "$0")"
root=../../..
(cd "$root" && swift build --product vfio-migrate >/dev/null)
cli="$root/.build/debug/vfio-migrate"
# One device, STOP_COPY only, 64 KiB of state.
"$cli" save "mock:fixture-a?state=64KiB&flags=stop-copy&seed=1" --chunk-size 16KiB -o v1-stopcopy-1dev.vfiomig
# Two P2P devices with pre-copy (several rounds: the devices keep dirtying state).
"$cli" save "mock:fixture-b?state=96KiB&flags=stop-copy,p2p,pre-copy&seed=2&block-size=4KiB&dirty-rate=2/16KiB" \
             "mock:fixture-c?state=40KiB&flags=stop-copy,p2p,pre-copy&seed=3&block-size=4KiB" \
             --chunk-size 16KiB -o v1-precopy-2dev.vfiomig
# An mdev-like device.
"$cli" save "mock:fixture-d?state=8KiB&flags=stop-copy,p2p&mdev-type=mock-2&seed=4" --chunk-size 4KiB -o v1-mdev-1dev.vfiomig
ls -l *.vfiomig
