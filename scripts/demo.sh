#!/usr/bin/env bash
# scripts/demo.sh -- the demo that scripts/run-demo runs, against the daemon
# it started (XICHAN_NAME, XICHAN_RUNTIME_DIR and PATH come from there).
#
#   1. the Python word-count pool (scripts/demo/wordcount.py), on xichan
#      queues and then on multiprocessing.Queue, with their throughput;
#   2. the C worker pool (build/demo/workers).
# Both leave their named queues behind for run-demo's `xichanctl list`.
# Extra arguments go to wordcount.py (e.g. --jobs 200).
set -euo pipefail

cd "$(dirname "$0")/.."

# The newest Python that `make` built the extension for.
python=""
while IFS= read -r py; do
    suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    if [[ -e pyext/xichan/_xichan$suffix ]]; then
        python=$py
        break
    fi
done < <(scripts/pythons)
if [[ -z $python ]]; then
    echo "demo.sh: xichan's extension is not built for any Python (run make)" >&2
    exit 1
fi

echo "--- Python: word count over xichan queues vs multiprocessing.Queue ($python)"
PYTHONPATH=$PWD/pyext${PYTHONPATH:+:$PYTHONPATH} "$python" scripts/demo/wordcount.py --keep "$@"

echo "--- C: build/demo/workers"
build/demo/workers
