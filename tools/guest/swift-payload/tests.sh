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
    # list --json: the test mdevs are migratable, edu is not (no migration feature). The JSON
    # is pretty-printed with sorted keys: a device's "name" comes before its verdict's
    # "status", and blocker kinds are the only "kind" values starting with "no".
    ./vfio-migrate list --json >/tmp/list.json
    guest_test cli-list-json test -s /tmp/list.json
    verdict_of() {
        awk -v dev="$1" '/"name" : "/ { split($0, a, "\""); name = a[4] }
            /"status" : "/ && name == dev { split($0, a, "\""); print a[4]; exit }' /tmp/list.json
    }
    blockers_of() {
        awk -v dev="$1" '/"name" : "/ { split($0, a, "\""); name = a[4] }
            name == dev && /"kind" : "no/ { split($0, a, "\""); print a[4] }' /tmp/list.json
    }
    echo "list: $MDEV1 $(verdict_of "$MDEV1"), $MDEV2 $(verdict_of "$MDEV2"), edu $(verdict_of "$VFIO_TEST_EDU") ($(blockers_of "$VFIO_TEST_EDU"))"
    guest_test cli-list-mdev1-migratable test "$(verdict_of "$MDEV1")" = migratable
    guest_test cli-list-mdev2-migratable test "$(verdict_of "$MDEV2")" = migratable
    guest_test cli-list-edu-not-migratable test "$(verdict_of "$VFIO_TEST_EDU")" = not-migratable
    guest_test cli-list-edu-reason test "$(blockers_of "$VFIO_TEST_EDU")" = no-migration-feature

    # target-spec of device 1's stream: the parent is found (the only one offering the type),
    # the printed sysfs command creates the device, the stream loads into it, BAR0 matches.
    MDEV4=6a1c1a9e-0004-4c57-9d6e-7e5700000004
    ./vfio-migrate target-spec "$state" --uuid "$MDEV4" >/tmp/target-spec.txt
    cat /tmp/target-spec.txt
    ./vfio-migrate target-spec "$state" --uuid "$MDEV4" --json >/tmp/target-spec.json
    guest_test cli-target-spec-type grep -q '"mdev_type" : "vfio_testdev-1"' /tmp/target-spec.json
    guest_test cli-target-spec-parent grep -q '"parent" : "vfio_testdev"' /tmp/target-spec.json
    create=$(grep "mdev_supported_types/.*/create" /tmp/target-spec.txt)
    guest_test cli-target-spec-create sh -c "$create"
    guest_test cli-target-spec-exists test -d "/sys/bus/mdev/devices/$MDEV4"
    guest_test cli-target-spec-load ./vfio-migrate load "$MDEV4" --input "$state"
    crc4=$(cat "$(hooks "$MDEV4")/bar_crc32")
    echo "BAR0 CRC-32: device 1 $crc1, target-spec device $crc4"
    guest_test cli-target-spec-bar-equal test "$crc1" = "$crc4"
    echo 1 >"/sys/bus/mdev/devices/$MDEV4/remove"

    # send/receive over loopback TCP inside the guest: device 1 -> device 2, two channels,
    # BAR0 equal afterwards; then a receiver that dies leaves device 1 RUNNING.
    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null || true
    echo 815 >"$(hooks "$MDEV1")/fill"
    ./vfio-migrate receive "$MDEV2" --listen 127.0.0.1:0 --insecure --quiet 2>/tmp/recv.err &
    rpid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^listening on 127.0.0.1://p' /tmp/recv.err)
        [ -n "$port" ] && break
        sleep 0.1
    done
    echo "receiver listening on port ${port:-?}"
    guest_test cli-send ./vfio-migrate send "$MDEV1" --to "127.0.0.1:$port" --insecure --channels 2
    guest_test cli-receive wait "$rpid"
    cat /tmp/recv.err
    crc1=$(cat "$(hooks "$MDEV1")/bar_crc32")
    crc2=$(cat "$(hooks "$MDEV2")/bar_crc32")
    echo "BAR0 CRC-32 after send/receive: device 1 $crc1, device 2 $crc2"
    guest_test cli-send-bar-equal test "$crc1" = "$crc2"
    guest_test cli-send-target-running sh -c "./vfio-migrate probe $MDEV2 | grep -q 'state RUNNING'"

    # A receiver that stops answering and is then killed, while the source waits on it
    # (frozen right after it listens: the kernel still completes the connection, so the
    # source has proposed and waits for the answer): the source fails and device 1 ends
    # RUNNING. (With a 16 KiB device a kill between two records cannot be timed from a shell;
    # the emulator's CLI tests kill a receiver in the middle of the data.)
    ./vfio-migrate receive "$MDEV2" --listen 127.0.0.1:0 --insecure --quiet 2>/tmp/recv2.err &
    rpid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^listening on 127.0.0.1://p' /tmp/recv2.err)
        [ -n "$port" ] && break
        sleep 0.1
    done
    kill -STOP "$rpid"
    ( sleep 2; kill -9 "$rpid" ) &
    ./vfio-migrate send "$MDEV1" --to "127.0.0.1:$port" --insecure --handshake-timeout 20 2>/tmp/send2.err
    rc=$?
    wait "$rpid" 2>/dev/null
    cat /tmp/send2.err
    guest_test cli-send-killed-receiver-fails test "$rc" = 1
    guest_test cli-send-killed-receiver-source-running sh -c "./vfio-migrate probe $MDEV1 | grep -q 'state RUNNING'"

    # guest memory with the device state: a tmpfs file as guest RAM (mapped into device 1's
    # container by the save, as a VMM maps its RAM) saved with device 1 and loaded with
    # device 2 into another tmpfs file, which must end equal to the source's; a target file at
    # another IOVA is refused before a page is written. (The DMA engine writing the RAM while
    # pre-copy runs is MemoryConformanceTests, in the Swift suite above: the CLI holds the
    # device, so a shell cannot start its DMA meanwhile.)
    echo 4711 >"$(hooks "$MDEV1")/fill"
    ram_src=/tmp/guest-ram-src ram_dst=/tmp/guest-ram-dst ram_other=/tmp/guest-ram-other
    dd if=/dev/urandom of="$ram_src" bs=1M count=16 2>/dev/null
    dd if=/dev/zero of="$ram_src" bs=4096 count=8 seek=100 conv=notrunc 2>/dev/null   # zero pages
    dd if=/dev/zero of="$ram_dst" bs=1M count=16 2>/dev/null
    dd if=/dev/zero of="$ram_other" bs=1M count=16 2>/dev/null
    vm=/tmp/vm.vfio-state
    guest_test cli-memory-save ./vfio-migrate save "$MDEV1" --memory "$ram_src@0x100000" --output "$vm"
    guest_test cli-memory-verify ./vfio-migrate verify "$vm"
    guest_test cli-memory-other-iova-refused sh -c "! ./vfio-migrate load $MDEV2 --memory $ram_other@0x200000 --input $vm"
    guest_test cli-memory-other-untouched cmp "$ram_other" /tmp/guest-ram-dst
    guest_test cli-memory-load ./vfio-migrate load "$MDEV2" --memory "$ram_dst@0x100000" --input "$vm"
    guest_test cli-memory-equal cmp "$ram_src" "$ram_dst"
    crc1=$(cat "$(hooks "$MDEV1")/bar_crc32")
    crc2=$(cat "$(hooks "$MDEV2")/bar_crc32")
    echo "with memory: BAR0 CRC-32 device 1 $crc1, device 2 $crc2"
    guest_test cli-memory-bar-equal test "$crc1" = "$crc2"
    rm -f "$ram_src" "$ram_dst" "$ram_other" "$vm"

    # bench --device on the test mdevs: device 1 saved into memory and loaded into device 2,
    # five times; the percentiles and the report written, BAR0 equal, both devices RUNNING.
    # Then device 2 held by a listening receiver: bench refuses it (EBUSY, said so).
    echo 4242 >"$(hooks "$MDEV1")/fill"
    rm -rf /tmp/bench-report
    guest_test cli-bench-device sh -c "./vfio-migrate bench --device $MDEV1 --target $MDEV2 --runs 5 --json --report /tmp/bench-report >/tmp/bench.json"
    guest_test cli-bench-device-percentiles grep -q '"p25"' /tmp/bench.json
    guest_test cli-bench-device-host grep -q '"kernelRelease"' /tmp/bench.json
    guest_test cli-bench-device-final-running test "$(grep -c '" : "RUNNING"' /tmp/bench.json)" = 2
    guest_test cli-bench-device-report test -s /tmp/bench-report/index.html
    crc1=$(cat "$(hooks "$MDEV1")/bar_crc32")
    crc2=$(cat "$(hooks "$MDEV2")/bar_crc32")
    echo "after bench --device: BAR0 CRC-32 device 1 $crc1, device 2 $crc2"
    guest_test cli-bench-device-bar-equal test "$crc1" = "$crc2"
    guest_test cli-bench-device-running sh -c "./vfio-migrate probe $MDEV1 | grep -q 'state RUNNING' && ./vfio-migrate probe $MDEV2 | grep -q 'state RUNNING'"
    ./vfio-migrate bench --device "$MDEV1" --runs 1 --sink null --quiet
    guest_test cli-bench-device-null test $? = 0
    ./vfio-migrate receive "$MDEV2" --listen 127.0.0.1:0 --insecure --quiet 2>/tmp/recv3.err &
    rpid=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on ' /tmp/recv3.err && break
        sleep 0.1
    done
    ./vfio-migrate bench --device "$MDEV2" --runs 1 2>/tmp/bench-busy.err
    rc=$?
    kill "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
    cat /tmp/bench-busy.err
    guest_test cli-bench-device-busy-refused test "$rc" = 1
    guest_test cli-bench-device-busy-said grep -q 'held by another process' /tmp/bench-busy.err

    if [ -n "${VFIO_TEST_MDEV_FOREIGN:-}" ]; then
        # a type-2 device must be refused by the compatibility check, before RESUMING
        guest_test cli-foreign-refused sh -c "! ./vfio-migrate load $VFIO_TEST_MDEV_FOREIGN --input $state"
    fi
fi
