#!/usr/bin/env bash
# tests/run-integ.sh -- run the integration/crash test programs given as arguments.
#
#   BUILD=build tests/run-integ.sh build/tests/integ/daemon_second_refused ...
#
# One process per test, each under `timeout -k 5 ${XICHAN_TEST_TIMEOUT:-120}`
# and with a world of its own:
#   XICHAN_RUNTIME_DIR  a fresh mktemp -d dir under /tmp (0700)
#   XICHAN_NAME         t<this script's pid>_<n>, unique per test
#   XICHAN_AUTOSTART=0, XICHAN_DAEMON=$BUILD/bin/xichand, $BUILD/bin first on PATH
# After each test, whatever it left is cleaned up: any xichand still serving
# its runtime dir (found with pgrep and in the harness's xt-daemon.pids) gets
# SIGTERM, then SIGKILL after 2 s; any process left in the test's process
# group gets SIGKILL; its segment /dev/shm/xichan-<uid>-<name> and the dir
# are removed.  Exit 0 passes, 77 skips, anything else (124: timed out)
# fails; on failure the test's output and the daemon logs are printed (always
# the output with V=1).  The last line is the summary
#   integ: N passed, M failed[, K skipped]
# and the script exits 1 if any test failed.  With XICHAN_SKIP_LOG set, the
# skip count is also appended to that file (scripts/test-all sums them).
set -euo pipefail

BUILD=${BUILD:-build}
limit=${XICHAN_TEST_TIMEOUT:-120}
build_abs=$(realpath -m -- "$BUILD")
uid=$(id -u)
passed=0 failed=0 skipped=0 n=0
failures=()
out=$(mktemp /tmp/xichan-integ-out.XXXXXX)
dir="" tpid=""

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

# A live (not zombie) process whose command line mentions the test's dir.
serves_dir() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $st != Z* ]] || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$dir"
}

# Stops what the test left behind and removes its segment and dir.
cleanup_test() {
    local pids pid
    [[ -n $dir ]] || return 0
    pids=$({
        pgrep -f -- "--runtime-dir $dir" || true
        cat "$dir/xt-daemon.pids" 2>/dev/null || true
    } | sort -un)
    for pid in $pids; do
        if serves_dir "$pid"; then
            echo "   note: stopping leftover xichand (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 20); do
                serves_dir "$pid" || break
                sleep 0.1
            done
            if serves_dir "$pid"; then
                echo "   note: xichand (pid $pid) ignored SIGTERM; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
    done
    # Children the test forked and left (the group of `timeout`).
    if [[ -n $tpid ]]; then
        kill -KILL -- "-$tpid" 2>/dev/null || true
    fi
    if [[ -e /dev/shm/xichan-$uid-$ns ]]; then
        rm -f -- "/dev/shm/xichan-$uid-$ns"
    fi
    rm -rf -- "$dir"
    dir="" tpid=""
}

on_signal() {
    echo "run-integ: interrupted" >&2
    cleanup_test
    rm -f "$out"
    exit 130
}
trap on_signal INT TERM
trap 'rm -f "$out"' EXIT

for bin in "$@"; do
    n=$((n + 1))
    name=$(basename -- "$bin")
    echo "== integ $name"
    if [[ ! -x $bin ]]; then
        echo "   FAILED: $bin is not an executable (was it built?)"
        failed=$((failed + 1))
        failures+=("$name")
        continue
    fi
    dir=$(mktemp -d /tmp/xichan-integ.XXXXXX)
    chmod 0700 "$dir"
    ns="t$$_$n"
    t0=$(now)
    rc=0
    # In the background so that its process group (timeout makes one) is
    # known: `wait` still gives its status.
    XICHAN_RUNTIME_DIR=$dir XICHAN_NAME=$ns XICHAN_AUTOSTART=0 \
        XICHAN_DAEMON=$build_abs/bin/xichand PATH="$build_abs/bin:$PATH" \
        timeout -k 5 "$limit" "$bin" >"$out" 2>&1 </dev/null &
    tpid=$!
    wait "$tpid" || rc=$?
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
        for log in "$dir"/*.log; do
            [[ -f $log ]] || continue
            echo "   ---- $(basename -- "$log") ----"
            sed 's/^/   | /' "$log"
        done
        failed=$((failed + 1))
        failures+=("$name")
        ;;
    esac
    cleanup_test
done

if [[ $failed -gt 0 ]]; then
    echo "failed integration tests: ${failures[*]}"
fi
summary="integ: $passed passed, $failed failed"
if [[ $skipped -gt 0 ]]; then
    summary+=", $skipped skipped"
fi
echo "$summary"
# scripts/test-all collects every suite's skips for its closing line.
if [[ -n ${XICHAN_SKIP_LOG:-} ]]; then
    suite="integ ($BUILD)"
    echo "$suite: $skipped skipped of $((passed + failed + skipped))" >>"$XICHAN_SKIP_LOG"
fi
[[ $failed -eq 0 ]]
