"""CPython's own multiprocessing queue tests, run against xichan.multiprocessing.

Takes _TestQueue (which covers Queue and JoinableQueue) and TestSimpleQueue
from this Python's Lib/test/_test_multiprocessing.py, unchanged, and makes
test classes of them whose Queue/JoinableQueue are xichan's; the tests that
call multiprocessing.Queue() (or SimpleQueue, JoinableQueue) directly get
xichan's too, through a patch of the multiprocessing module for the test's
duration.  _TestQueue runs under each start method (fork, spawn,
forkserver), so that the queues are pickled into spawned children too.

A separate module from test_mp_cpython.py because spawned children import
it (to find the test classes' target methods), and must not import _env,
which would give them a namespace of their own.

NOT_APPLICABLE lists the tests that cannot apply, with the reason; they are
skipped with that reason, so the count shows in every run.
"""
import multiprocessing
import os
import unittest
from unittest import mock

import xichan.multiprocessing as xmp

try:
    from test import _test_multiprocessing as cpy
except ImportError as e:  # a Python without its test package
    cpy = None
    IMPORT_ERROR = str(e)
else:
    IMPORT_ERROR = None

NOT_APPLICABLE = {
    'test_queue_feeder_donot_stop_onexc':
        'asserts that put() of an unpicklable object succeeds and the error '
        'goes to the feeder thread; xichan pickles in put() itself, which '
        'raises there and queues nothing (there is no feeder thread)',
    'test_queue_feeder_on_queue_feeder_error':
        "subclasses multiprocessing.queues.Queue to override its feeder "
        "thread's _on_queue_feeder_error hook; xichan has no feeder thread",
    'test_closed_queue_empty_exceptions':
        "expects empty() to raise OSError after close() of a used queue "
        "(multiprocessing closes its pipe's read end); xichan's close() ends "
        "this handle's put() and get() only, and empty() keeps answering",
    'test_closed':
        "checks multiprocessing.SimpleQueue's private pipe ends "
        "(_reader.closed, _writer.closed); xichan's queue has no pipe",
}

START_METHODS = ('fork', 'spawn', 'forkserver')


def _patched_multiprocessing():
    return mock.patch.multiple(multiprocessing, Queue=xmp.Queue, SimpleQueue=xmp.SimpleQueue,
                               JoinableQueue=xmp.JoinableQueue)


class _XichanMixin:
    """ProcessesMixin with xichan's queues, under one start method."""
    start_method = 'fork'
    Queue = staticmethod(xmp.Queue)
    JoinableQueue = staticmethod(xmp.JoinableQueue)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._old_method = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method(cls.start_method, force=True)

    @classmethod
    def tearDownClass(cls):
        multiprocessing.set_start_method(cls._old_method, force=True)
        super().tearDownClass()

    def setUp(self):
        name = self._testMethodName
        if name in NOT_APPLICABLE:
            self.skipTest('not applicable to xichan: ' + NOT_APPLICABLE[name])
        patcher = _patched_multiprocessing()
        patcher.start()
        self.addCleanup(patcher.stop)
        super().setUp()


def _make_classes():
    classes = {}
    if cpy is None:
        return classes
    for method in START_METHODS:
        name = f'TestXichanQueue_{method}'
        classes[name] = type(name, (_XichanMixin, cpy._TestQueue, cpy.ProcessesMixin,
                                    unittest.TestCase),
                             {'start_method': method, '__module__': __name__})
    name = 'TestXichanSimpleQueue'
    classes[name] = type(name, (_XichanMixin, cpy.TestSimpleQueue),
                         {'start_method': 'fork', '__module__': __name__})
    return classes


globals().update(_make_classes())
del os
