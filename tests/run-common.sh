# tests/run-common.sh -- sourced by tests/run-unit.sh and tests/run-integ.sh:
# timing, the verdict on one test program and the closing summary, the same
# for both suites.
#
# The runner sets limit (its timeout in seconds, for the messages) and out
# (the file that captured the program's stdout+stderr), then per program:
#   is_program BIN NAME    false (and counts a failure) if BIN is not executable
#   verdict NAME RC TOOK [ON_FAIL]
#                          0 passed, 77 skipped (its last line is the reason),
#                          anything else FAILED: the output is shown (always
#                          with V=1) and ON_FAIL, a command, runs after it
# and at the end `summary KIND WHAT SUITE`: "failed WHAT tests: ...", the
# line "KIND: N passed, M failed[, K skipped]", SUITE's skip count appended
# to $XICHAN_SKIP_LOG when set (scripts/test-all sums them), and a status
# that is 1 if any program failed.
passed=0 failed=0 skipped=0
failures=()

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

is_program() {
    [[ -x $1 ]] && return 0
    echo "   FAILED: $1 is not an executable (was it built?)"
    failed=$((failed + 1))
    failures+=("$2")
    return 1
}

verdict() {
    local name=$1 rc=$2 took=$3 on_fail=${4:-}
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
        if [[ -n $on_fail ]]; then
            $on_fail
        fi
        failed=$((failed + 1))
        failures+=("$name")
        ;;
    esac
}

summary() {
    local kind=$1 what=$2 suite=$3 line
    if [[ $failed -gt 0 ]]; then
        echo "failed $what tests: ${failures[*]}"
    fi
    line="$kind: $passed passed, $failed failed"
    if [[ $skipped -gt 0 ]]; then
        line+=", $skipped skipped"
    fi
    echo "$line"
    if [[ -n ${XICHAN_SKIP_LOG:-} ]]; then
        echo "$suite: $skipped skipped of $((passed + failed + skipped))" >>"$XICHAN_SKIP_LOG"
    fi
    [[ $failed -eq 0 ]]
}
