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
passed=0 failed=0 skipped=0
failures=()
out=$(mktemp /tmp/xichan-unit.XXXXXX)
trap 'rm -f "$out"' EXIT

now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }'; }
describe() {
    if [[ $1 -eq 124 ]]; then
        echo "timed out after ${limit} s"
    elif [[ $1 -gt 128 ]]; then
        echo "killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
    else
        echo "exit status $1"
    fi
}

for bin in "$@"; do
    name=$(basename -- "$bin")
    echo "== unit $name"
    if [[ ! -x $bin ]]; then
        echo "   FAILED: $bin is not an executable (was it built?)"
        failed=$((failed + 1))
        failures+=("$name")
        continue
    fi
    t0=$(now)
    rc=0
    timeout -k 5 "$limit" ${wrap[@]+"${wrap[@]}"} "$bin" >"$out" 2>&1 </dev/null || rc=$?
    took=$(elapsed "$t0")
    if [[ ${V:-0} == 1 ]]; then
        cat "$out"
    fi
    case $rc in
    0)
        echo "   passed ($took)"
        passed=$((passed + 1))
        ;;
    77)
        echo "   skipped: $(tail -n 1 "$out")"
        skipped=$((skipped + 1))
        ;;
    *)
        echo "   FAILED: $(describe "$rc") ($took)"
        if [[ ${V:-0} != 1 ]]; then
            sed 's/^/   | /' "$out"
        fi
        failed=$((failed + 1))
        failures+=("$name")
        ;;
    esac
done

if [[ $failed -gt 0 ]]; then
    echo "failed unit tests: ${failures[*]}"
fi
summary="unit: $passed passed, $failed failed"
if [[ $skipped -gt 0 ]]; then
    summary+=", $skipped skipped"
fi
echo "$summary"
# scripts/test-all collects every suite's skips for its closing line.
if [[ -n ${XICHAN_SKIP_LOG:-} ]]; then
    suite="unit (${1:+$(dirname -- "$(dirname -- "$(dirname -- "$1")")")}${wrap[0]:+, ${wrap[0]}})"
    echo "$suite: $skipped skipped of $((passed + failed + skipped))" >>"$XICHAN_SKIP_LOG"
fi
[[ $failed -eq 0 ]]
