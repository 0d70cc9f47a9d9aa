#!/usr/bin/env bash
# Run a test payload inside Debian's own kernels under QEMU (TCG, emulated Intel IOMMU,
# QEMU's edu device on vfio-pci, vfio_testdev mdevs), and print one plain
# "N passed, M failed" line per kernel and a total as the last line.
#
# usage: run-guest-tests.sh [--kernel 6.1|6.12|all] [--payload DIR] [--timeout SECONDS]
#                           [--memory MIB] [--quiet]
#   --payload DIR  binaries plus a tests.sh (sourced by the guest's /init; see
#                  docs/testing-guest.md). Default: the C smoke test (tools/guest/smoke).
#   --quiet        do not stream the guest's serial console (it is kept in .guest-cache/logs)
#
# exit status: 0 all passed; 1 a failure, a missing verdict or a timeout; when QEMU cannot be
# installed or started the script prints "GUEST TESTS SKIPPED: <reason>" and exits with
# $GUEST_SKIP_EXIT (default 0, so a machine without QEMU does not fail the test command;
# CI that must not skip sets GUEST_SKIP_EXIT=77 or any non-zero value).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernels=all
payload=
timeout_s=300
memory=
quiet=0
while [ $# -gt 0 ]; do
    case "$1" in
        --kernel) kernels=$2; shift 2 ;;
        --payload) payload=$(cd "$2" && pwd); shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --memory) memory=$2; shift 2 ;;
        --quiet) quiet=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
case "$kernels" in
    all) kernels="6.1 6.12" ;;
    6.1|6.12) ;;
    *) die "--kernel must be 6.1, 6.12 or all" ;;
esac

skip() {
    printf '\n%s\n%s\n%s\n\n' "==================================================================" \
        "GUEST TESTS SKIPPED: $*" \
        "==================================================================" >&2
    echo "GUEST TESTS SKIPPED: $*"
    exit "${GUEST_SKIP_EXIT:-0}"
}

total_start=$(now)
# --- tools ------------------------------------------------------------------------------------
apt_update_once || log "warning: apt-get update failed"
if ! ensure_commands qemu-system-x86_64:qemu-system-x86; then
    skip "qemu-system-x86 could not be installed"
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not available"
devices=$(qemu-system-x86_64 -machine q35 -accel tcg -device help 2>&1) ||
    skip "qemu-system-x86_64 does not start: $(echo "$devices" | head -n 1)"
grep -q '"edu"' <<<"$devices" || skip "this QEMU has no edu device"
grep -q '"intel-iommu"' <<<"$devices" || skip "this QEMU has no intel-iommu device"
ensure_commands cpio:cpio xz:xz-utils zstd:zstd gcc:gcc make:make timeout:coreutils ||
    die "cannot install the build tools"

# --- payload ----------------------------------------------------------------------------------
if [ -z "$payload" ]; then
    payload="$GUEST_CACHE/smoke-payload"
    "$GUEST_DIR/smoke/build.sh" "$payload" >/dev/null
fi
[ -f "$payload/tests.sh" ] || die "payload $payload has no tests.sh"

mkdir -p "$GUEST_CACHE/logs"
sum_passed=0
sum_failed=0
summary=()
for series in $kernels; do
    t=$(now)
    dir=$("$GUEST_DIR/fetch-kernel.sh" "$series")
    t_fetch=$(elapsed "$t")
    kver=$(cat "$dir/kver")

    t=$(now)
    ko=$("$GUEST_DIR/build-module.sh" "$series")
    t_module=$(elapsed "$t")

    t=$(now)
    cpio_file="$dir/initramfs.cpio"
    "$GUEST_DIR/make-initramfs.sh" "$series" "$ko" "$payload" "$cpio_file"
    t_initramfs=$(elapsed "$t")

    # The initramfs is unpacked into RAM next to the cpio itself: size memory for both.
    mem=$memory
    if [ -z "$mem" ]; then
        cpio_mib=$(( $(stat -c %s "$cpio_file") / 1048576 ))
        mem=$(( 768 + 3 * cpio_mib ))
    fi

    log="$GUEST_CACHE/logs/guest-$series.log"
    log "booting $kver (timeout ${timeout_s}s, ${mem} MiB); serial log: $log"
    t=$(now)
    qemu=(timeout --kill-after=5 "$timeout_s" qemu-system-x86_64
        -machine q35,kernel-irqchip=split -accel tcg -cpu max -smp 1 -m "$mem"
        -device intel-iommu,intremap=on,caching-mode=on -device edu
        -kernel "$dir/vmlinux" -initrd "$cpio_file"
        -append "console=ttyS0 panic=-1 quiet intel_iommu=on"
        -nographic -no-reboot -nodefaults -serial stdio -display none)
    set +e
    if [ "$quiet" = 1 ]; then
        "${qemu[@]}" </dev/null >"$log" 2>&1
    else
        "${qemu[@]}" </dev/null 2>&1 | tee "$log" | tr -d '\r' >&2
    fi
    qemu_rc=${PIPESTATUS[0]}
    set -e
    t_boot=$(elapsed "$t")

    verdict=$(tr -d '\r' <"$log" | sed -n -E 's/^GUEST-VERDICT: ([0-9]+ passed, [0-9]+ failed)$/\1/p' | tail -n 1)
    if [ -n "$verdict" ]; then
        p=${verdict%% passed*}
        f=${verdict#*passed, }
        f=${f%% failed*}
        line="kernel $series ($kver): $p passed, $f failed"
    else
        reason="no verdict"
        [ "$qemu_rc" = 124 ] && reason="timeout after ${timeout_s}s, no verdict"
        echo "----- last lines of the serial log ($log) -----" >&2
        tr -d '\r' <"$log" | tail -n 40 >&2
        p=0
        f=1
        line="kernel $series ($kver): $reason (qemu exit $qemu_rc): 0 passed, 1 failed"
    fi
    sum_passed=$((sum_passed + p))
    sum_failed=$((sum_failed + f))
    summary+=("$line")
    summary+=("  timings: fetch ${t_fetch}s, module ${t_module}s, initramfs ${t_initramfs}s, boot+tests ${t_boot}s")
done

echo
printf '%s\n' "${summary[@]}"
echo "guest total wall time $(elapsed "$total_start")s"
echo "$sum_passed passed, $sum_failed failed"
[ "$sum_failed" = 0 ]
