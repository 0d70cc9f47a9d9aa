#!/usr/bin/env bash
# Build tools/vfio-test-device against an unpacked kernel's headers (see fetch-kernel.sh).
# The build runs in a copy inside the cache so the source tree stays clean.
#
# usage: build-module.sh 6.1|6.12      prints the path of the built vfio_testdev.ko
set -euo pipefail
. "$(dirname "$0")/lib.sh"

series=${1:?usage: build-module.sh 6.1|6.12}
dir=$(series_dir "$series")
[ -f "$dir/ready" ] || die "kernel $series is not unpacked; run fetch-kernel.sh $series"
# Debian's kernels are built with gcc-12; the unpacked kbuild tools need libelf, libssl, zlib.
ensure_packages make gcc-12 libc6-dev libelf1 libssl3 zlib1g || die "cannot install the module build tools"

src="$REPO_ROOT/tools/vfio-test-device"
build="$dir/module-build"
rm -rf "$build"
mkdir -p "$build"
cp "$src"/*.c "$src"/*.h "$src"/Makefile "$build"/
# BTF for modules needs pahole and adds nothing to the tests: leave it out.
if ! make -C "$build" KDIR="$dir/headers" CONFIG_DEBUG_INFO_BTF_MODULES= >"$build/build.log" 2>&1; then
    cat "$build/build.log" >&2
    die "module build against $(cat "$dir/kver") failed"
fi
if grep -E "warning:" "$build/build.log" >&2; then
    die "module build against $(cat "$dir/kver") produced warnings"
fi
echo "$build/vfio_testdev.ko"
