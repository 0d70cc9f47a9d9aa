#!/usr/bin/env bash
# The soak (not part of the default test run): back-to-back emulated live migrations in one
# process with random sizes, flags, device and channel counts, TCP or TLS, and faults, each
# checked (data identical or the failure reported as its fault demands; sources RUNNING;
# targets reset or, where the protocol says so, stopped with the load; the migration's threads
# gone), and the process's descriptors, threads and resident memory compared over the runs.
#   tools/soak.sh [--runs N] [--seed S] [--no-tls]      (default 1000 runs)
# Runs at nice 19: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/soak"
nice -n 19 swift build -c release --product Soak
exec nice -n 19 .build/release/Soak "$@"
