"""A full segment is backpressure for blocking calls, as a Python user meets
it: put()/send() wait for room until their timeout, then SegmentFullError;
put_nowait()/send_nowait() raise at once; Ctrl-C ends the wait; the
messages give the sizes and how to raise them.  A daemon a client starts is
sized by XICHAN_SIZE (and XICHAN_SESSIONS, XICHAN_OBJECTS, XICHAN_BINDINGS).

Each test runs its processes in a namespace of its own, in a runtime dir of
its own, autostarted with a 4 MiB segment (the test session's namespace is
not touched), and stops that daemon at the end.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import _env
from _env import XTestCase

SIZE = 4 << 20


class SmallSegment(XTestCase):

    def setUp(self):
        super().setUp()
        self.rundir = tempfile.mkdtemp(prefix='xichan-bp-')
        os.chmod(self.rundir, 0o700)
        self.name = f'bp{os.getpid()}x{int(time.monotonic() * 1000) % 10**8}'
        self.env = dict(os.environ, XICHAN_RUNTIME_DIR=self.rundir, XICHAN_NAME=self.name,
                        XICHAN_SIZE=str(SIZE), XICHAN_OBJECTS='64', XICHAN_SESSIONS='32',
                        XICHAN_BINDINGS='512')
        self.env.pop('XICHAN_AUTOSTART', None)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        _env.stop_daemon(self.rundir, self.name)
        super().tearDown()

    def spawn(self, code, *args):
        p = subprocess.Popen([sys.executable, '-c', _env.py_code(code), *map(str, args)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=self.env)
        self.procs.append(p)
        return p

    def run_py(self, code, *args, timeout=60):
        p = subprocess.run([sys.executable, '-c', _env.py_code(code), *map(str, args)],
                           capture_output=True, text=True, timeout=timeout, env=self.env)
        if p.returncode != 0:
            raise AssertionError(f'child failed ({p.returncode}):\n{p.stdout}\n{p.stderr}')
        return p.stdout

    @staticmethod
    def line(p):
        """The child's next line of output (it prints one per step)."""
        out = p.stdout.readline()
        if not out:
            raise AssertionError(f'child ended: {p.wait()}\n{p.stderr.read()}')
        return out.strip()


FILL = '''
from xichan import _xichan
BIG = b'x' * (64 * 1024)

def fill(put):
    """put() BIG items, then small ones, until the segment is full."""
    n = 0
    for item in (BIG, b's' * 64):
        while True:
            try:
                put(item)
            except xichan.SegmentFullError:
                break
            n += 1
    return n
'''


def with_fill(code):
    return FILL + textwrap.dedent(code)


class TestSized(SmallSegment):

    def test_autostart_takes_the_size_from_the_environment(self):
        out = self.run_py('''
            from xichan import _xichan
            queues.create()  # autostarts the daemon
            st = _xichan.stats()
            print(st['segment_size'], st['max_objects'], st['max_sessions'])
        ''')
        self.assertEqual(out.split(), [str(SIZE), '64', '32'])

    def test_bad_size_is_a_clear_error(self):
        self.env['XICHAN_SIZE'] = 'lots'
        p = subprocess.run([sys.executable, '-c', _env.py_code('queues.create()')],
                           capture_output=True, text=True, timeout=30, env=self.env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('XichanError', p.stderr)
        self.assertIn('XICHAN_SIZE', p.stderr)  # what to check
        self.assertIn('did not start', p.stderr)


class TestFullSegment(SmallSegment):

    def test_nowait_and_timeout_raise_and_queue_nothing(self):
        out = self.run_py(with_fill('''
            q = queues.create(syncobj=True)
            n = fill(q.put_nowait)
            for call in (lambda: q.put(BIG, timeout=0.2), lambda: q.put(BIG, block=False),
                         lambda: q.put_nowait(b's' * 64)):
                try:
                    call()
                except xichan.SegmentFullError as e:
                    msg = str(e)
                else:
                    raise SystemExit('no SegmentFullError')
                assert q.qsize() == n, (q.qsize(), n)  # nothing queued
            assert isinstance(xichan.SegmentFullError('x'), MemoryError)
            # The message: the item's size, the heap's, how to get more.
            heap = _xichan.stats()['heap_size']
            import re
            assert re.search(r'an item of [0-9]+ bytes needs [0-9]+ bytes of heap', msg), msg
            for part in (f"heap's {heap} bytes", '--size', 'XICHAN_SIZE'):
                assert part in msg, (part, msg)
            # A channel send waits until its timeout too.
            r, s = channels.create()
            try:
                s.send(BIG, timeout=0.2)
            except xichan.SegmentFullError:
                pass
            else:
                raise SystemExit('send: no SegmentFullError')
            # Too large for the heap ever: a ValueError saying so, at once.
            try:
                q.put(b'z' * (heap + 1))
            except ValueError as e:
                assert 'too large' in str(e) and 'XICHAN_SIZE' in str(e), str(e)
                assert re.search(f'item of [0-9]+ bytes can never fit: the heap of {heap} bytes',
                                 str(e)), str(e)
            else:
                raise SystemExit('no ValueError')
            print('ok')
        '''))
        self.assertEqual(out.strip(), 'ok')

    def test_blocking_put_waits_until_a_consumer_frees_room(self):
        producer = self.spawn(with_fill('''
            q = queues.create(syncobj=True, name='bp')
            n = fill(q.put_nowait)
            print('full', n, flush=True)
            q.put(BIG)  # no timeout: waits for room
            print('put', q.qsize(), flush=True)
            sys.stdin.readline()
        '''))
        state, n = self.line(producer).split()
        self.assertEqual(state, 'full')
        consumer = self.spawn('''
            q = queues.open('bp')
            sys.stdin.readline()
            item = q.get(timeout=10)
            print('got', len(item), flush=True)
            sys.stdin.readline()
        ''')
        # Give the producer a moment to block (were it not blocked yet, its
        # put would find the room and the test still holds).
        time.sleep(0.3)
        consumer.stdin.write('\n')
        consumer.stdin.flush()
        self.assertEqual(self.line(consumer), f'got {64 * 1024}')
        self.assertEqual(self.line(producer), f'put {n}')  # one out, one in
        for p in (consumer, producer):
            p.stdin.write('\n')
            p.stdin.flush()
            self.assertEqual(p.wait(timeout=30), 0)

    def test_ctrl_c_ends_a_put_waiting_for_room(self):
        out = self.run_py(with_fill('''
            import signal, threading
            q = queues.create(syncobj=True)
            n = fill(q.put_nowait)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                q.put(BIG)
            except KeyboardInterrupt:
                print('interrupted', q.qsize() == n)
        '''))
        self.assertEqual(out.strip(), 'interrupted True')
