#!/bin/busybox sh
# /init of the test guest: prepare VFIO (edu on vfio-pci, vfio_testdev mdevs), run the
# payload's tests.sh, print one verdict line, power off. Every outcome ends in a verdict
# line or in no line at all (the host treats a missing verdict as a failure).

/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# keep kernel chatter off the serial console while tests print; it is dumped at the end
echo 1 >/proc/sys/kernel/printk

RESULTS=/tmp/guest-results
: >"$RESULTS"

# --- helpers available to tests.sh (it is sourced in a subshell) -------------------------
# guest_record NAME PASSED FAILED: add counts for one test command
guest_record() {
    echo "$2 $3 $1" >>"$RESULTS"
    if [ "$3" = 0 ]; then echo "GUEST-TEST PASS $1 ($2 passed)"; else echo "GUEST-TEST FAIL $1 ($2 passed, $3 failed)"; fi
}
# guest_test NAME CMD...: one test that passes when CMD exits 0
guest_test() {
    name=$1; shift
    "$@"
    rc=$?
    if [ $rc = 0 ]; then guest_record "$name" 1 0; else echo "($name exited with $rc)"; guest_record "$name" 0 1; fi
}
# guest_counted NAME CMD...: CMD prints its own "N passed, M failed" as its last such line;
# a non-zero exit with no failure counted, or no such line, counts as one more failure
guest_counted() {
    name=$1; shift
    out=/tmp/out.$$
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "($name printed no 'N passed, M failed' line; exit code $rc)"
        guest_record "$name" 0 1
        return
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\2/')
    if [ $rc != 0 ] && [ "$f" = 0 ]; then
        echo "($name exited with $rc)"
        f=1
    fi
    guest_record "$name" "$p" "$f"
}

setup_failed=0
setup_error() { echo "GUEST-SETUP-ERROR: $*"; setup_failed=$((setup_failed + 1)); }

echo "GUEST: kernel $(uname -r)"

# --- modules ---------------------------------------------------------------------------
for m in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$m.ko" || setup_error "insmod $m"
done

# --- edu on vfio-pci ------------------------------------------------------------------------
EDU=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ]; then
        EDU=${d##*/}
    fi
done
if [ -n "$EDU" ]; then
    echo vfio-pci >"/sys/bus/pci/devices/$EDU/driver_override"
    echo "$EDU" >/sys/bus/pci/drivers_probe
    [ -e "/sys/bus/pci/devices/$EDU/iommu_group" ] || setup_error "edu $EDU has no IOMMU group"
    [ "$(readlink "/sys/bus/pci/devices/$EDU/driver")" != "" ] || setup_error "edu $EDU did not bind to vfio-pci"
else
    setup_error "no edu device (1234:11e8) found"
fi

# --- vfio_testdev mdevs: two of type 1 (save/load pair), one of type 2 (foreign) -----------
MDEV1=6a1c1a9e-0001-4c57-9d6e-7e5700000001
MDEV2=6a1c1a9e-0002-4c57-9d6e-7e5700000002
MDEV3=6a1c1a9e-0003-4c57-9d6e-7e5700000003
TYPES=/sys/class/mdev_bus/vfio_testdev/mdev_supported_types
echo "$MDEV1" >"$TYPES/vfio_testdev-1/create" || setup_error "create mdev $MDEV1"
echo "$MDEV2" >"$TYPES/vfio_testdev-1/create" || setup_error "create mdev $MDEV2"
echo "$MDEV3" >"$TYPES/vfio_testdev-2/create" || setup_error "create mdev $MDEV3"

export VFIO_TEST_EDU="$EDU"
export VFIO_TEST_MDEV="$MDEV1,$MDEV2"
export VFIO_TEST_MDEV_FOREIGN="$MDEV3"
export VFIO_TEST_KERNEL="$(uname -r)"
echo "GUEST: VFIO_TEST_EDU=$VFIO_TEST_EDU VFIO_TEST_MDEV=$VFIO_TEST_MDEV VFIO_TEST_MDEV_FOREIGN=$VFIO_TEST_MDEV_FOREIGN"
ls -l /dev/vfio

# --- the payload's tests ---------------------------------------------------------------
if [ "$setup_failed" = 0 ]; then
    cd /payload
    ( . ./tests.sh )
    rc=$?
    cd /
    if [ $rc != 0 ]; then
        echo "GUEST: tests.sh exited with $rc"
        guest_record tests.sh 0 1
    fi
else
    guest_record setup 0 "$setup_failed"
fi

# --- kernel health: a WARN or BUG during the run is a failure ---------------------------------
if dmesg | grep -E -q 'WARNING:|BUG:|Oops|Call Trace:'; then
    echo "GUEST: the kernel logged warnings:"
    dmesg | grep -E -A 30 'WARNING:|BUG:|Oops' | head -n 80
    guest_record kernel-log 0 1
fi

passed=0
failed=0
while read -r p f name; do
    passed=$((passed + p))
    failed=$((failed + f))
done <"$RESULTS"
[ "$failed" = 0 ] || { echo "GUEST: dmesg tail:"; dmesg | tail -n 40; }
echo "GUEST-VERDICT: $passed passed, $failed failed"
sync
poweroff -f
