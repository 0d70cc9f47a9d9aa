# Sourced by the guest's /init inside /payload (helpers: guest_test, guest_counted,
# guest_record; environment: VFIO_TEST_EDU, VFIO_TEST_MDEV=<uuid1>,<uuid2>,
# VFIO_TEST_MDEV_FOREIGN). payload.conf is written by build-swift-payload.sh.
. ./payload.conf

MDEV1=${VFIO_TEST_MDEV%%,*}
MDEV2=${VFIO_TEST_MDEV##*,}
hooks() { echo "/sys/bus/mdev/devices/$1/vfio_testdev"; }

# 1. the C smoke test: the kernel facts the Swift suite is compared against
if [ -x ./vfio-smoke ]; then
    guest_counted vfio-smoke ./vfio-smoke
fi

# 2. the Swift conformance suite against edu and the test mdevs
guest_counted swift-testing sh ./run-swift-tests.sh "$SWIFT_FILTER" "$SWIFT_MIN_TESTS"

# 3. the CLI: list, probe, save device 1, load into device 2, compare BAR0
if [ "$CLI_CHECKS" = 1 ]; then
    # distinct contents: a pattern in device 1, power-on zeros in device 2
    echo 4711 >"$(hooks "$MDEV1")/fill"
    state=/tmp/mdev1.vfio-state
    guest_test cli-list ./vfio-migrate list
    guest_test cli-probe ./vfio-migrate probe "$MDEV1"
    guest_test cli-save ./vfio-migrate save "$MDEV1" --output "$state"
    guest_test cli-state-file test -s "$state"
    guest_test cli-load ./vfio-migrate load "$MDEV2" --input "$state"
    crc1=$(cat "$(hooks "$MDEV1")/bar_crc32")
    crc2=$(cat "$(hooks "$MDEV2")/bar_crc32")
    echo "BAR0 CRC-32: device 1 $crc1, device 2 $crc2"
    guest_test cli-bar-equal test "$crc1" = "$crc2"
    guest_test cli-inspect ./vfio-migrate inspect "$state"
    guest_test cli-verify ./vfio-migrate verify "$state"
    if [ -n "${VFIO_TEST_MDEV_FOREIGN:-}" ]; then
        # a type-2 device must be refused by the compatibility check, before RESUMING
        guest_test cli-foreign-refused sh -c "! ./vfio-migrate load $VFIO_TEST_MDEV_FOREIGN --input $state"
    fi
fi
