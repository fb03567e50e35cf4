"""The package's types: tests/python/typing_usage.py runs (make pytypes
type-checks it with mypy --strict, with stubtest comparing the stubs to the
modules), and mypy, where this Python has it, rejects misuse -- so the
stubs are not Any everywhere."""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import _env
from _env import XTestCase

HAVE_MYPY = subprocess.run([sys.executable, '-I', '-c', 'import mypy'],
                           capture_output=True).returncode == 0

MISUSE = textwrap.dedent('''
    import xichan.multiprocessing as xmp
    from xichan import queues, channels
    q = queues.create()
    q.put()                                  # obj missing
    q.get(timeout='soon')                    # not a number
    n: str = q.qsize()                       # an int
    r, s = channels.create()
    s.recv()                                 # the send end cannot recv
    mq: xmp.Queue[int] = xmp.Queue()
    mq.put('text')                           # not an int
    mq.task_done()                           # only JoinableQueue has it
''')


class TestTyping(XTestCase):
    timeout = 300

    def test_typing_usage_runs(self):
        p = subprocess.run([sys.executable, os.path.join(_env.HERE, 'typing_usage.py')],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)

    @unittest.skipUnless(HAVE_MYPY, 'mypy is installed for the newest Python only '
                                    '(scripts/install-deps); make pytypes runs it')
    def test_mypy_rejects_misuse(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'misuse.py')
            with open(path, 'w') as f:
                f.write(MISUSE)
            p = subprocess.run([sys.executable, '-m', 'mypy', '--strict', '--no-incremental',
                                '--cache-dir', os.devnull, path],
                               capture_output=True, text=True, timeout=240,
                               env=dict(os.environ, MYPYPATH=_env.PYEXT))
        lines = [ln for ln in p.stdout.splitlines() if ': error:' in ln]
        flagged = sorted({int(ln.split(':')[1]) for ln in lines})
        # Each line with a comment above is an error, and nothing else is.
        want = [i + 1 for i, ln in enumerate(MISUSE.splitlines()) if '#' in ln]
        self.assertEqual(flagged, want, p.stdout)
