#!/usr/bin/env bash
# tests/python/run.sh PYTHON -- run the Python tests on one interpreter:
# pytest if that Python has it, else unittest.  Run from the repo root.
set -euo pipefail
py=${1:?usage: tests/python/run.sh PYTHON [args...]}
shift
cd "$(dirname "$0")/../.."
export PYTHONPATH=pyext${PYTHONPATH:+:$PYTHONPATH}
if "$py" -c 'import pytest' >/dev/null 2>&1; then
    exec "$py" -m pytest -q -p no:cacheprovider tests/python "$@"
else
    exec "$py" -m unittest discover -s tests/python -t tests/python "$@"
fi
