"""The README's documentation runs: the demo behind scripts/run-demo (in a
short mode) and the README's Python example, extracted from README.md so
that the two cannot drift apart.

scripts/run-demo itself also installs and builds, which is too much for a
test; this runs what it runs against the test's own daemon instead.
"""
import os
import re
import subprocess
import sys

import _env
from _env import XTestCase

from xichan import queues

DEMO = os.path.join(_env.ROOT, 'scripts', 'demo', 'wordcount.py')
README = os.path.join(_env.ROOT, 'README.md')
XICHANCTL = os.path.join(_env.BUILD, 'bin', 'xichanctl')


def run(args, timeout=120):
    """Runs a command in the test's namespace; its CompletedProcess."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class TestDemo(XTestCase):
    timeout = 180

    def run_demo(self, *args):
        p = run([sys.executable, DEMO, '--jobs', '200', '--workers', '2', *args])
        self.assertEqual(p.returncode, 0, f'demo failed:\n{p.stdout}\n{p.stderr}')
        return p.stdout

    def test_demo_checks_and_compares(self):
        out = self.run_demo('--keep')
        self.assertIn('every job answered exactly once, counts equal the reference', out)
        for row in ('xichan queues', 'multiprocessing.Queue'):
            self.assertRegex(out, rf'\n  {re.escape(row)} +[\d,]+ +[\d.]+ +[\d.]+\n')
        # Not a terminal: the progress bars print a few lines, not one per
        # redraw, and nothing redraws in place.
        self.assertLess(len(out.splitlines()), 20, out)
        self.assertNotIn('\r', out)

        # --keep leaves the named queues for `xichanctl list`.
        p = run([XICHANCTL, 'list'])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('wordcount.jobs', p.stdout)
        self.assertIn('wordcount.results', p.stdout)

        # A second run replaces those leftovers, and without --keep leaves
        # nothing behind.
        self.run_demo('--no-progress')
        for name in ('wordcount.jobs', 'wordcount.results'):
            with self.assertRaises(queues.QueueNotFoundError):
                queues.open(name)


def readme_python_example():
    """The first ```python block of README.md."""
    with open(README) as f:
        m = re.search(r'^```python\n(.*?)^```$', f.read(), re.S | re.M)
    assert m, 'README.md has no ```python block'
    return m.group(1)


def readme_migration_example():
    """The ```python block under README.md's "Coming from multiprocessing.Queue"."""
    with open(README) as f:
        text = f.read()
    m = re.search(r'^### Coming from multiprocessing\.Queue\n.*?^```python\n(.*?)^```$',
                  text, re.S | re.M)
    assert m, 'README.md has no migration example'
    return m.group(1)


class TestReadmeExample(XTestCase):
    timeout = 120

    def run_script(self, code, name):
        path = os.path.join(os.environ['XICHAN_RUNTIME_DIR'], name)
        with open(path, 'w') as f:
            f.write(code)
        p = subprocess.run([sys.executable, path], capture_output=True, text=True,
                           timeout=60, cwd=os.path.dirname(path), stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f'{name} failed:\n{p.stdout}\n{p.stderr}')
        return p.stdout

    def test_readme_migration_is_one_line(self):
        code = readme_migration_example()
        # The first line is the change, and says what it replaces.
        first, rest = code.split('\n', 1)
        m = re.fullmatch(r'(from xichan\.multiprocessing import \w+) +# was: (.*)', first)
        self.assertTrue(m, first)
        want = re.findall(r'# prints: (.*)', code)[-1].strip()
        self.assertEqual(self.run_script(code, 'migration.py').strip(), want)
        # The line it replaces gives the same program over multiprocessing.
        original = m.group(2) + '\n' + rest
        self.assertEqual(self.run_script(original, 'original.py').strip(), want)

    def test_readme_python_example_runs(self):
        code = readme_python_example()
        self.assertLessEqual(len(code.splitlines()), 20, 'the README example should stay short')
        # Run as a script (so that its __main__ guard and multiprocessing
        # work as for a reader), from outside the tree.
        path = os.path.join(os.environ['XICHAN_RUNTIME_DIR'], 'readme_example.py')
        with open(path, 'w') as f:
            f.write(code)
        p = subprocess.run([sys.executable, path], capture_output=True, text=True,
                           timeout=60, cwd=os.path.dirname(path), stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f'README example failed:\n{p.stdout}\n{p.stderr}')
        # The example says what it prints in its last comment: "# prints: ...".
        want = re.findall(r'# prints: (.*)', code)
        self.assertTrue(want, 'the README example should say what it prints ("# prints: ...")')
        self.assertEqual(p.stdout.strip(), want[-1].strip())
