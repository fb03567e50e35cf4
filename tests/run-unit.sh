#!/usr/bin/env bash
# tests/run-unit.sh -- run the cmocka unit test programs given as arguments.
#
#   tests/run-unit.sh build/tests/unit/test_queue build/tests/unit/test_channel ...
#
# Each program runs once under `timeout -k 5 120` (XICHAN_UNIT_TIMEOUT overrides
# the 120; XICHAN_UNIT_WRAP prefixes a command such as valgrind), its stdout+stderr captured; the output is shown when it fails
# (always with V=1).  Exit 0 passes, 77 skips, anything else (124: timed out)
# fails.  The last line is the summary
#   unit: N passed, M failed[, K skipped]
# and the script exits 1 if any program failed.  With XICHAN_SKIP_LOG set,
# the skip count is also appended to that file (scripts/test-all sums them).
set -euo pipefail

limit=${XICHAN_UNIT_TIMEOUT:-120}
# XICHAN_UNIT_WRAP: a command to run each program under (e.g. valgrind).
read -r -a wrap <<<"${XICHAN_UNIT_WRAP:-}"
out=$(mktemp /tmp/xichan-unit.XXXXXX)
trap 'rm -f "$out"' EXIT
# shellcheck source=tests/run-common.sh
. "$(dirname -- "$0")/run-common.sh"

for bin in "$@"; do
    name=$(basename -- "$bin")
    echo "== unit $name"
    is_program "$bin" "$name" || continue
    t0=$(now)
    rc=0
    timeout -k 5 "$limit" ${wrap[@]+"${wrap[@]}"} "$bin" >"$out" 2>&1 </dev/null || rc=$?
    verdict "$name" "$rc" "$(elapsed "$t0")"
done

summary unit unit "unit (${1:+$(dirname -- "$(dirname -- "$(dirname -- "$1")")")}${wrap[0]:+, ${wrap[0]}})"
