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
    """True if an item put by a process that then exits is still delivered
    once the daemon has ended that process's session."""
    import pickle
    from xichan import _xichan, queues
    q = queues.create()
    sessions = _xichan.stats()['sessions']
    code = ('import pickle, sys\nq = pickle.loads(bytes.fromhex(sys.argv[1]))\n'
            'q.put("kept")\n')
    subprocess.run([sys.executable, '-c', code, pickle.dumps(q).hex()], check=True,
                   timeout=60, env=os.environ)
    if not _env.wait_for(lambda: _xichan.stats()['sessions'] <= sessions, timeout=30):
        raise AssertionError("the daemon did not end the child's session within 30 s")
    return q.get(timeout=10) == 'kept'


if _cpython_mpq.cpy is None:
    raise unittest.SkipTest(f'no test package in this Python: {_cpython_mpq.IMPORT_ERROR}')

_cpython_mpq._XichanMixin.items_outlive_producer = _items_outlive_producer()
