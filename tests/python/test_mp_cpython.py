"""CPython's multiprocessing queue tests (_TestQueue, TestSimpleQueue from
Lib/test/_test_multiprocessing.py of the running Python) against
xichan.multiprocessing: see _cpython_mpq.py for how they are adapted and
which cannot apply, and why.
"""
import unittest

import _env  # noqa: F401  (the test namespace, before any xichan import)

import _cpython_mpq
from _cpython_mpq import *  # noqa: F401,F403  (the adapted test classes)


if _cpython_mpq.cpy is None:
    raise unittest.SkipTest(f'no test package in this Python: {_cpython_mpq.IMPORT_ERROR}')

