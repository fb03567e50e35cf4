"""CPython's multiprocessing queue tests (_TestQueue, TestSimpleQueue from
Lib/test/_test_multiprocessing.py of the running Python) against
xichan.multiprocessing: see _cpython_mpq.py for how they are adapted and
which cannot apply, and why.
"""
import os
import subprocess
import sys
import unittest

import _env  # noqa: F401  (the test namespace, before any xichan import)

import _cpython_mpq
from _cpython_mpq import *  # noqa: F401,F403  (the adapted test classes)


def _items_outlive_producer():
    """True if an item put by a process that then exits is still delivered."""
    from xichan import queues
    q = queues.create()
    code = ('import pickle, sys\nq = pickle.loads(bytes.fromhex(sys.argv[1]))\n'
            'q.put("kept")\n')
    import pickle
    subprocess.run([sys.executable, '-c', code, pickle.dumps(q).hex()], check=True,
                   timeout=60, env=os.environ)
    return q.get(timeout=10) == 'kept'


if _cpython_mpq.cpy is None:
    raise unittest.SkipTest(f'no test package in this Python: {_cpython_mpq.IMPORT_ERROR}')

_cpython_mpq._XichanMixin.items_outlive_producer = _items_outlive_producer()
