"""A process stopped while it holds a queue's lock (SIGSTOP, Ctrl-Z, a
debugger) hangs nobody: calls on that queue give up at their timeout, or
after the short bound when they have none, with ObjectLockedError naming
the stopped pid -- never a silent hang, never a wrong QueueEmpty.

The holder is a real worker process that moves batches through the queue
(put_many/get_many hold the queue's lock for a whole batch); it is stopped
until a stop lands inside a critical section, which the first call that
meets the lock shows."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import _env
from _env import XTestCase

import xichan
from xichan import queues

WORKER = textwrap.dedent('''
    import sys
    from xichan import queues
    q = queues.open(sys.argv[1])
    print('ready', flush=True)
    batch = list(range(256))
    while True:
        q.put_many(batch)
        q.get_many(256, timeout=5)
''')


def stopped(pid):
    with open(f'/proc/{pid}/stat') as f:
        return f.read().rsplit(')', 1)[1].split()[0] in 'Tt'


class TestStoppedHolder(XTestCase):

    def test_calls_give_up_naming_the_stopped_pid(self):
        name = f'locked-{os.getpid()}'
        q = queues.create(name=name)
        w = subprocess.Popen([sys.executable, '-c', WORKER, name],
                             stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(w.stdout.readline().strip(), 'ready')
            caught = None
            for _ in range(500):
                os.kill(w.pid, signal.SIGSTOP)
                t0 = time.monotonic()
                while not stopped(w.pid):
                    self.assertLess(time.monotonic() - t0, 5)
                    time.sleep(0.001)
                try:
                    q.qsize()
                except xichan.ObjectLockedError as e:
                    caught = e
                    break
                os.kill(w.pid, signal.SIGCONT)
                time.sleep(0.002)
            self.assertIsNotNone(caught, 'no stop landed in a critical section')
            self.assertIsInstance(caught, TimeoutError)
            self.assertIsInstance(caught, xichan.XichanError)
            self.assertIn(f'process {w.pid}', str(caught))
            self.assertIn('stopped', str(caught))
            # A timed get keeps its timeout and does not claim "empty".
            t0 = time.monotonic()
            with self.assertRaises(xichan.ObjectLockedError):
                q.get(timeout=0.2)
            self.assertGreaterEqual(time.monotonic() - t0, 0.2)
            self.assertLess(time.monotonic() - t0, 5)  # hang bound
            for call in (q.get_nowait, lambda: q.put_nowait(1), q.empty, q.full):
                with self.assertRaises(xichan.ObjectLockedError):
                    call()
        finally:
            os.kill(w.pid, signal.SIGCONT)
            w.kill()
            w.wait(10)
            w.stdout.close()
        # Once the holder is gone, the queue works again.
        q.put_nowait('after')
        while q.get(timeout=5) != 'after':
            pass
