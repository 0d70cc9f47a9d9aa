#!/usr/bin/env bash
# Build the C smoke-test payload: a static vfio-smoke binary plus its tests.sh.
# usage: build.sh OUTDIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../lib.sh"
out=${1:?usage: build.sh OUTDIR}
ensure_packages gcc libc6-dev || die "cannot install gcc and libc6-dev"
mkdir -p "$out"
gcc -static -O2 -Wall -Wextra -Wno-missing-field-initializers -o "$out/vfio-smoke" "$here/vfio-smoke.c"
cp "$here/tests.sh" "$out/tests.sh"
echo "$out"
