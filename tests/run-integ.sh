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
n=0
out=$(mktemp /tmp/xichan-integ-out.XXXXXX)
dir="" tpid=""
# shellcheck source=tests/run-common.sh
. "$(dirname -- "$0")/run-common.sh"

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

# After a failure: the logs the test's daemons wrote.
show_daemon_logs() {
    local log
    for log in "$dir"/*.log; do
        [[ -f $log ]] || continue
        echo "   ---- $(basename -- "$log") ----"
        sed 's/^/   | /' "$log"
    done
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
    is_program "$bin" "$name" || continue
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
    verdict "$name" "$rc" "$(elapsed "$t0")" show_daemon_logs
    cleanup_test
done

summary integ integration "integ ($BUILD)"
