#!/usr/bin/env bash
# Build the engine's test bundle and CLI and lay out a guest payload for
# run-guest-tests.sh --payload DIR: the bundle, vfio-migrate, resource bundles, the C smoke
# test, tests.sh and its settings (payload.conf). make-initramfs.sh adds the shared-library
# closure (Swift runtime, Foundation, glibc) at boot-image time.
#
# usage: build-swift-payload.sh [--config debug|release] [--filter REGEX] [--min-tests N]
#                               [--no-cli] [--no-smoke] OUTDIR
#   --filter     swift-testing --filter for the guest run (default: VFIOConformanceTests;
#                "" runs every test in the bundle)
#   --min-tests  fewer tests than this in the guest is a failure (default 1)
#   --no-cli     leave out the vfio-migrate list/probe/save/load checks
#   --no-smoke   leave out the C smoke test
set -euo pipefail
. "$(dirname "$0")/lib.sh"

config=debug
filter=VFIOConformanceTests
min_tests=1
cli=1
smoke=1
while [ $# -gt 1 ]; do
    case "$1" in
        --config) config=$2; shift 2 ;;
        --filter) filter=$2; shift 2 ;;
        --min-tests) min_tests=$2; shift 2 ;;
        --no-cli) cli=0; shift ;;
        --no-smoke) smoke=0; shift ;;
        *) die "unknown argument $1" ;;
    esac
done
out=${1:?usage: build-swift-payload.sh [options] OUTDIR}
case "$config" in debug|release) ;; *) die "--config must be debug or release" ;; esac
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || die "swift is not installed"

start=$(now)
(cd "$REPO_ROOT" && swift build --build-tests -c "$config" >&2)
bin=$(cd "$REPO_ROOT" && swift build -c "$config" --show-bin-path)
log "swift build --build-tests -c $config: $(elapsed "$start") s"

rm -rf "$out"
mkdir -p "$out"
cp "$bin/vfio-migrationPackageTests.xctest" "$out/"
cp "$bin/vfio-migrate" "$out/"
# Resource bundles are looked up next to the executable.
for r in "$bin"/*.resources; do
    [ -e "$r" ] && cp -r "$r" "$out/"
done
if [ "$smoke" = 1 ]; then
    "$GUEST_DIR/smoke/build.sh" "$out/smoke-build" >/dev/null
    mv "$out/smoke-build/vfio-smoke" "$out/"
    rm -rf "$out/smoke-build"
fi
cp "$GUEST_DIR/swift-payload/tests.sh" "$GUEST_DIR/swift-payload/run-swift-tests.sh" "$out/"
{
    printf 'SWIFT_FILTER=%q\n' "$filter"
    printf 'SWIFT_MIN_TESTS=%q\n' "$min_tests"
    printf 'CLI_CHECKS=%q\n' "$cli"
} >"$out/payload.conf"
echo "$out"
