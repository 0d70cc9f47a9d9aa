#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what it needs on Debian 12, then
#   1. checks the layering and unsafe-code rules,
#   2. builds and runs the host tests (unit, syscall traces, mock conformance, stream, CLI),
#   3. builds the release CLI and runs the embedded default job (a mock migration),
#   4. runs the conformance suite and the CLI against the real kernel's VFIO inside QEMU
#      guests on Debian's 6.1 and 6.12 kernels (skipped with a loud message where QEMU
#      cannot run; see docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
tools/check-layers.sh

echo "== host tests"
swift build --build-tests
swift test --skip-build

echo "== release build and the default job"
swift build -c release --product vfio-migrate
.build/release/vfio-migrate demo --state 16MiB

echo "== real-kernel tests in QEMU guests (6.1 and 6.12)"
tools/guest/build-swift-payload.sh .guest-cache/swift-payload
tools/guest/run-guest-tests.sh --payload .guest-cache/swift-payload --kernel all --quiet
