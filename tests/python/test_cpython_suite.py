"""CPython 3.13's own test_interpreters/test_queues.py and test_channels.py,
run unmodified against xichan (Python 3.13 only: they need
test.support.interpreters and real subinterpreters).

The files are loaded from this Python's installation, not copied.  Each runs
in a child Python (cpython_shim/run_suite.py) with cpython_shim/ first on
PYTHONPATH: its sitecustomize.py makes, in the main interpreter and in every
subinterpreter, test.support.interpreters.queues/.channels/._crossinterp
xichan's modules and _interpqueues/_interpchannels thin layers over
_xichan (cpython_shim/xichan_cpython_shim.py).  Each child gets a namespace
and daemon of its own (the tests expect list_all() to start empty).

A test that cannot apply to xichan is skipped by its id in SKIPS, with the
reason; everything else must pass, and the tests skipped must be exactly
SKIPS and the ones CPython's file skips itself (CPYTHON_SKIPS).  The counts
and both lists are printed (pytest: in the terminal summary).

TestShimModules checks the low-level layers' calls the CPython files do not
use, on every Python.
"""
import json
import os
import pickle
import subprocess
import sys
import tempfile
import unittest

import _env
from _env import XTestCase, needs_subinterp

import xichan
from xichan import channels, queues, _xichan

SHIM = os.path.join(_env.HERE, 'cpython_shim')
if SHIM not in sys.path:
    sys.path.append(SHIM)  # after pyext/: only the two xichan_interp* modules are taken from it

import xichan_interpchannels  # noqa: E402
import xichan_interpqueues  # noqa: E402

_PKG = 'test.test_interpreters'

# Tests of CPython's files that cannot apply to xichan: {test id: reason}.
# (Empty: with the lifetime rules of xichan(7) -- the unbound ops apply when
# a subinterpreter is destroyed -- and the xichan fixes the suite needed
# (NotShareableError subclasses _interpreters.NotShareableError; a blocking
# send_buffer to a receiver in the same process shares the sender's memory),
# every test of both files applies and passes.)
SKIPS = {}

# Skipped by CPython's own files (@unittest.skip): {test id: CPython's reason}.
CPYTHON_SKIPS = {
    f'{_PKG}.test_channels.TestSendRecv.test_send_recv_different_interpreters':
        'broken (see BPO-...)',
    f'{_PKG}.test_channels.TestSendRecv.test_send_recv_nowait_different_interpreters':
        'broken (see BPO-...)',
}

SUITE_TIMEOUT = 240  # a hang bound: each file takes a few seconds

# Lines for the report (conftest.py prints them in pytest's terminal summary).
SUMMARY = []


def _report(line):
    SUMMARY.append(line)
    print(line)


def _skip_list_lines():
    lines = ['xichan skip list for CPython 3.13 test_queues.py/test_channels.py:']
    if not SKIPS:
        lines.append('  (none: every test applies)')
    lines += [f'  {tid}: {why}' for tid, why in sorted(SKIPS.items())]
    lines.append("skipped by CPython's own files:")
    lines += [f'  {tid}: {why}' for tid, why in sorted(CPYTHON_SKIPS.items())]
    return lines


@needs_subinterp
class TestCPythonSuite(XTestCase):

    timeout = SUITE_TIMEOUT + 30

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for line in _skip_list_lines():
            _report(line)

    def run_file(self, name):
        module = f'{_PKG}.{name}'
        skips = {tid: why for tid, why in SKIPS.items() if tid.startswith(module + '.')}
        rundir = tempfile.mkdtemp(prefix='xichan-cpy-')
        os.chmod(rundir, 0o700)
        ns = f'{os.environ["XICHAN_NAME"]}{name[5]}'  # test_queues -> ...q
        env = dict(os.environ, XICHAN_RUNTIME_DIR=rundir, XICHAN_NAME=ns,
                   PYTHONPATH=os.pathsep.join([SHIM, os.environ['PYTHONPATH']]))
        try:
            p = subprocess.run(
                [sys.executable, os.path.join(SHIM, 'run_suite.py'), module, json.dumps(skips)],
                env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
        finally:
            _env.stop_daemon(rundir, ns)
        last = p.stdout.strip().splitlines()[-1:] or ['']
        try:
            res = json.loads(last[0])
        except ValueError:
            self.fail(f'{module}: no results (exit {p.returncode}):\n{p.stdout}\n{p.stderr}')
        skipped = res['skipped']
        passed = res['run'] - len(skipped) - len(res['failures']) - len(res['errors'])
        _report(f'{name}.py ({res["file"]}): {res["run"]} run, {passed} passed, '
                f'{len(skipped)} skipped ({len(skips)} by xichan, '
                f'{len(skipped) - len(skips)} by CPython), '
                f'{len(res["failures"])} failed, {len(res["errors"])} errors')
        bad = res['failures'] + res['errors'] + res['unexpected_successes']
        self.assertEqual(bad, [], f'{module}:\n{p.stderr}')
        self.assertEqual(res['unknown_skips'], [], 'SKIPS names tests the file does not have')
        want = {tid: f'xichan: {why}' for tid, why in skips.items()}
        want.update({tid: why for tid, why in CPYTHON_SKIPS.items()
                     if tid.startswith(module + '.')})
        self.assertEqual(skipped, want, f'{module}: the skipped tests changed')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreater(passed, 0)

    def test_queues(self):
        self.run_file('test_queues')

    def test_channels(self):
        self.run_file('test_channels')


class TestShimModules(XTestCase):
    """The low-level calls of cpython_shim that CPython's two files leave
    unused, each against xichan's own view of the same object."""

    def test_queue_calls(self):
        q = xichan_interpqueues
        qid = q.create(2, 1, 2)  # pickled, UNBOUND_ERROR
        self.assertIn((qid, 1, 2), q.list_all())
        self.assertEqual(q.get_maxsize(qid), 2)
        self.assertEqual(q.get_queue_defaults(qid), (1, 2))
        q.put(qid, pickle.dumps([1, 2]), 1, 3)
        q.put(qid, 'spam', 0, 3)
        self.assertTrue(q.is_full(qid))
        self.assertEqual(q.get_count(qid), 2)
        with self.assertRaises(queues.QueueFull):
            q.put(qid, 'x', 0, 3)
        self.assertEqual(q.get(qid), ([1, 2], 0, None))
        self.assertEqual(q.get(qid), ('spam', 0, None))
        with self.assertRaises(queues.QueueEmpty):
            q.get(qid)
        with self.assertRaises(ValueError):
            q.put(qid, 'x', 5, 3)
        self.assertIs(q.QueueError, queues.QueueError)
        q.destroy(qid)
        with self.assertRaises(q.QueueNotFoundError):
            q.get_count(qid)

    def test_queue_create_unbound(self):
        q = xichan_interpqueues
        qid = q.create(0, 0, 3)
        with self.assertRaises(queues.QueueError):
            q.release(qid)  # never bound, as CPython's
        self.assertEqual(q.get_count(qid), 0)  # and still there
        q.bind(qid)
        q.bind(qid)
        q.release(qid)
        self.assertEqual(q.get_count(qid), 0)
        q.release(qid)  # the last binding: destroyed
        with self.assertRaises(queues.QueueNotFoundError):
            q.get_count(qid)

    def test_channel_calls(self):
        c = xichan_interpchannels
        cid = c.create(3)
        self.assertIsInstance(cid, c.ChannelID)
        self.assertIn((cid, 3), c.list_all())
        self.assertEqual(c.get_channel_defaults(cid), 3)
        self.assertIs(c.send(cid, b'spam', blocking=False), False)
        self.assertIs(c.send_buffer(cid, bytearray(b'eggs'), 1, blocking=False), False)
        with self.assertRaises(ValueError):
            c.send(cid, 1, blocking=False, timeout=1)
        self.assertEqual(c.get_count(cid), 2)
        self.assertEqual(c.get_info(cid).count, 2)
        self.assertEqual(c.recv(cid), (b'spam', None))
        obj, op = c.recv(cid)
        self.assertEqual((bytes(obj), op), (b'eggs', None))
        default = object()
        self.assertEqual(c.recv(cid, default), (default, None))
        with self.assertRaises(c.ChannelEmptyError):
            c.recv(cid)
        with self.assertRaises(TimeoutError):
            c.send(cid, 1, timeout=0.05)
        send_end = c._channel_id(int(cid), send=True)
        self.assertEqual(send_end.end, 'send')
        self.assertEqual(channels.SendChannel(send_end), channels.SendChannel(int(cid)))
        c.release(cid, send=True)
        with self.assertRaises(c.ChannelClosedError):
            c.send(cid, 1, blocking=False)
        c.close(cid, force=True)
        self.assertTrue(c.get_info(cid).closed)
        c.destroy(cid)
        with self.assertRaises(c.ChannelNotFoundError):
            c.get_count(cid)


if __name__ == '__main__':
    unittest.main()
