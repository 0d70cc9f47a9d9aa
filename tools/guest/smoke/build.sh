#!/usr/bin/env bash
# Build the C smoke-test payload: a static vfio-smoke binary plus its tests.sh.
# usage: build.sh OUTDIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
gcc -static -O2 -Wall -Wextra -Wno-missing-field-initializers -o "$out/vfio-smoke" "$here/vfio-smoke.c"
cp "$here/tests.sh" "$out/tests.sh"
echo "$out"
