"""Failures of the system itself, as a Python user meets them: a full
segment, an item that can never fit, no daemon, a refused user.  Each gives
a clear exception and loses nothing."""
import os
import subprocess
import sys
import tempfile
import textwrap

import _env
from _env import XTestCase

import xichan
from xichan import _xichan, channels, queues

MIB = 1 << 20


class TestSegmentFull(XTestCase):

    def fill(self, put):
        """put() 1 MiB items until the segment is full: how many went in."""
        blob = b'x' * MIB
        n = 0
        with self.assertRaises(xichan.SegmentFullError) as cm:
            for _ in range(_xichan.stats()['heap_size'] // MIB + 2):
                put(blob)
                n += 1
        exc = cm.exception
        self.assertIsInstance(exc, MemoryError)
        self.assertIsInstance(exc, xichan.XichanError)
        self.assertIn('--size', str(exc))  # says how to get more room
        self.assertGreater(n, 0)
        return blob, n

    def test_queue_put(self):
        q = queues.create(syncobj=True)
        blob, n = self.fill(q.put_nowait)
        self.assertEqual(q.qsize(), n)  # the failed put left nothing behind
        for _ in range(n):
            self.assertEqual(q.get_nowait(), blob)
        q.put(blob)  # room again once drained
        self.assertEqual(q.get(timeout=1), blob)

    def test_channel_send(self):
        r, s = channels.create()
        blob, n = self.fill(s.send_nowait)
        self.assertEqual(_xichan.chan_count(int(s.id)), n)
        for _ in range(n):
            self.assertEqual(r.recv_nowait(), blob)
        s.send_nowait(blob)
        self.assertEqual(r.recv(timeout=1), blob)

    def test_item_that_can_never_fit(self):
        q = queues.create(syncobj=True)
        with self.assertRaises(ValueError) as cm:
            q.put(b'\0' * (_xichan.stats()['segment_size'] + 1))
        self.assertIn('too large', str(cm.exception))
        self.assertEqual(q.qsize(), 0)


class TestNoDaemon(XTestCase):

    def test_autostart_off(self):
        with tempfile.TemporaryDirectory() as rundir:
            os.chmod(rundir, 0o700)
            env = dict(os.environ, XICHAN_AUTOSTART='0', XICHAN_RUNTIME_DIR=rundir,
                       XICHAN_NAME=f'nodaemon{os.getpid()}')
            code = textwrap.dedent('''
                import xichan
                from xichan import queues, _xichan
                try:
                    queues.create()
                except xichan.XichanError as e:
                    print(_xichan.strerror(e.code)[0])
                    print(e)
            ''')
            out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                                 text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        name, message = out.stdout.split('\n', 1)
        self.assertEqual(name, 'XICHAN_ENODAEMON')
        self.assertIn('xichand', message)  # how to start one
        self.assertIn('XICHAN_AUTOSTART', message)


class TestAccessDenied(XTestCase):

    def test_class(self):
        # Triggering it takes another uid that can run this Python (see the
        # C tests security_refuse and security_group for the refusal itself).
        self.assertTrue(issubclass(xichan.AccessDeniedError, PermissionError))
        self.assertTrue(issubclass(xichan.AccessDeniedError, xichan.XichanError))
        self.assertIn('AccessDeniedError', xichan.__all__)
