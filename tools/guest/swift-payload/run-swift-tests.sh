#!/bin/busybox sh
# Run the Swift test bundle with swift-testing inside the guest and turn its xUnit report
# into the "N passed, M failed" line the guest's /init counts (skipped tests are reported
# but not counted). Arguments: the test filter (may be empty) and the minimum number of
# tests that must have run.
filter=$1
min_tests=${2:-1}
bundle=./vfio-migrationPackageTests.xctest
xml=/tmp/swift-testing.xml
rm -f "$xml"
set -- --testing-library swift-testing --xunit-output "$xml"
[ -n "$filter" ] && set -- "$@" --filter "$filter"
NO_COLOR=1 "$bundle" "$@"
rc=$?
if [ ! -s "$xml" ]; then
    echo "swift-testing wrote no xUnit report (exit code $rc)"
    echo "0 passed, 1 failed"
    exit 1
fi
head=$(grep -m 1 '<testsuite ' "$xml")
attr() { echo "$head" | sed -n -E "s/.* $1=\"([0-9]+)\".*/\1/p"; }
tests=$(attr tests)
failures=$(attr failures)
errors=$(attr errors)
skipped=$(attr skipped)
failed=$(( ${failures:-0} + ${errors:-0} ))
passed=$(( ${tests:-0} - failed ))
echo "swift-testing: ${tests:-0} tests run, ${skipped:-0} skipped, $failed failed (exit code $rc)"
grep -B 1 '<failure' "$xml" | sed -n -E 's/.*classname="([^"]*)" name="([^"]*)".*/  failed: \1.\2/p'
# swift-testing exits with 69 (EX_UNAVAILABLE) when no test matched: min_tests decides.
[ "$rc" = 69 ] && [ "${tests:-0}" = 0 ] && rc=0
if [ "${tests:-0}" -lt "$min_tests" ]; then
    echo "fewer tests ran than the required $min_tests (filter '${filter}')"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$rc" = 0 ]
