#!/usr/bin/env bash
# tests/python/run.sh PYTHON -- run the Python tests on one interpreter:
# pytest if that Python has it (with -rs: skip reasons), else unittest (not
# in CI, which must count and explain skips).  Run from the repo root.
set -euo pipefail
py=${1:?usage: tests/python/run.sh PYTHON [args...]}
shift
cd "$(dirname "$0")/../.."
export PYTHONPATH=pyext${PYTHONPATH:+:$PYTHONPATH}
if "$py" -c 'import pytest' >/dev/null 2>&1; then
    # -rs: the reason of every skip is in the log.
    exec "$py" -m pytest -q -rs -p no:cacheprovider tests/python "$@"
elif [[ ${CI:-} == true || ${CI:-} == 1 ]]; then
    # unittest prints no skip reasons and counts no skips for the summary.
    echo "tests/python/run.sh: CI: pytest is not importable by $py (scripts/install-deps)" >&2
    exit 1
else
    exec "$py" -m unittest discover -s tests/python -t tests/python "$@"
fi
