"""Shared setup for the Python tests (imported by conftest.py and by every
test module, so both pytest and ``python -m unittest`` work).

On first import it:
  - points XICHAN_RUNTIME_DIR at a fresh temporary directory and XICHAN_NAME
    at a namespace unique to this test session (pid + time), so runs on
    several Pythons side by side never share a daemon;
  - sets XICHAN_DAEMON to $BUILD/bin/xichand (BUILD defaults to "build") so
    libxichan's autostart finds the in-tree daemon, and PYTHONPATH to pyext/
    for subprocesses;
  - raises unittest.SkipTest (a clean skip under both runners) when the
    extension is not built for this Python;
  - registers stop_daemon() at exit (SIGTERM to the daemon: <runtime_dir>/
    <name>.pid if the daemon wrote one, else pgrep -f on the runtime dir).

XTestCase bounds every test with an interval timer (TEST_TIMEOUT seconds):
the SIGALRM handler raises TestTimeout in the main thread, which also
interrupts a blocked xichan call (its interrupt callback runs handlers).
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYEXT = os.path.join(ROOT, 'pyext')
BUILD = os.environ.get('BUILD', 'build')
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
DAEMON = os.path.join(BUILD, 'bin', 'xichand')
TEST_TIMEOUT = float(os.environ.get('XICHAN_TEST_TIMEOUT', '60'))

if PYEXT not in sys.path:
    sys.path.insert(0, PYEXT)


def _setup():
    if os.environ.get('_XICHAN_TEST_ENV') == str(os.getpid()):
        return
    rundir = tempfile.mkdtemp(prefix='xichan-pytest-')
    os.chmod(rundir, 0o700)
    os.environ['XICHAN_RUNTIME_DIR'] = rundir
    os.environ['XICHAN_NAME'] = f'pyt{os.getpid()}x{int(time.time() * 1000) % 100000000}'
    os.environ['XICHAN_DAEMON'] = DAEMON
    os.environ.pop('XICHAN_AUTOSTART', None)
    pp = os.environ.get('PYTHONPATH', '')
    # Absolute, so that a child run from another directory finds xichan too.
    parts = [os.path.abspath(p) for p in pp.split(os.pathsep) if p]
    if PYEXT not in parts:
        parts.insert(0, PYEXT)
    os.environ['PYTHONPATH'] = os.pathsep.join(parts)
    os.environ['_XICHAN_TEST_ENV'] = str(os.getpid())
    atexit.register(stop_daemon, rundir, os.environ['XICHAN_NAME'])


def stop_daemon(rundir=None, name=None):
    rundir = rundir or os.environ.get('XICHAN_RUNTIME_DIR')
    name = name or os.environ.get('XICHAN_NAME')
    if not rundir:
        return
    pids = set()
    pidfile = os.path.join(rundir, f'{name}.pid')
    try:
        with open(pidfile) as f:
            pids.add(int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        try:
            out = subprocess.run(['pgrep', '-f', rundir], capture_output=True,
                                 text=True, timeout=5).stdout
            pids.update(int(p) for p in out.split() if int(p) != os.getpid())
        except Exception:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.02)
    shutil.rmtree(rundir, ignore_errors=True)
    # A stopped daemon keeps its segment for the next one (xichand(8)); this
    # test session's namespace is gone for good, so remove it.
    if name:
        try:
            os.unlink(f'/dev/shm/xichan-{os.getuid()}-{name}')
        except OSError:
            pass


_setup()

import sysconfig  # noqa: E402
_SO = os.path.join(PYEXT, 'xichan', '_xichan' + sysconfig.get_config_var('EXT_SUFFIX'))
if not os.path.exists(_SO):
    raise unittest.SkipTest(
        f'xichan._xichan is not built for {sys.executable} '
        f'(run `make pyext PYTHON={sys.executable}`)')


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout(f'test took longer than {TEST_TIMEOUT} s')


class XTestCase(unittest.TestCase):
    """A TestCase whose every test is bounded in time."""

    timeout = TEST_TIMEOUT

    def setUp(self):
        super().setUp()
        self._old_alarm = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, self.timeout)

    def tearDown(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._old_alarm)
        super().tearDown()

    def assertTakes(self, lo, hi):
        """Context manager: the block takes between lo and hi seconds."""
        return _Takes(self, lo, hi)


class _Takes:
    def __init__(self, tc, lo, hi):
        self.tc, self.lo, self.hi = tc, lo, hi

    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0
        if exc[0] is None:
            self.tc.assertGreaterEqual(self.elapsed, self.lo)
            self.tc.assertLessEqual(self.elapsed, self.hi)
        return False


# ----------------------------------------------------------- subprocesses

PRELUDE = 'import sys, os, time, pickle\nfrom xichan import queues, channels\nimport xichan\n'


def py_code(code):
    return PRELUDE + textwrap.dedent(code)


def run_py(code, *args, timeout=60, check=True):
    """Run code in a fresh Python process (same interpreter, same namespace)."""
    p = subprocess.run([sys.executable, '-c', py_code(code), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f'child failed ({p.returncode}):\n{p.stdout}\n{p.stderr}')
    return p


def spawn_py(code, *args, **kw):
    return subprocess.Popen([sys.executable, '-c', py_code(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(pred, timeout=10, interval=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


HAVE_SUBINTERP = sys.version_info >= (3, 13)
if HAVE_SUBINTERP:
    try:
        from test.support import interpreters  # noqa: F401
    except ImportError:
        HAVE_SUBINTERP = False

needs_subinterp = unittest.skipUnless(HAVE_SUBINTERP, 'subinterpreters need Python 3.13')


class Producer:
    """A child process that runs code with `objs` (unpickled into `objs`),
    then reports ready and waits to be told to exit, so its items stay bound
    until the test ends its session (finish(), or kill())."""

    def __init__(self, code, *objs):
        import pickle
        from xichan import queues
        self.ctl, self.ack = queues.create(), queues.create()
        body = ('objs, ctl, ack = pickle.loads(bytes.fromhex(sys.argv[1]))\n'
                + textwrap.dedent(code)
                + '\nack.put("ready")\nhow = ctl.get(timeout=60)\n'
                + 'if how == "hard": os._exit(0)\n'
                + 'if how == "unbind":\n'
                + '    from xichan import _xichan; _xichan._end_session(True); os._exit(0)\n')
        self.proc = spawn_py(body, pickle.dumps((objs, self.ctl, self.ack)).hex())
        got = self.ack.get(timeout=30)
        assert got == 'ready', got

    def finish(self, hard=False, unbind=False):
        """Ends the child's session cleanly (interpreter exit), with
        os._exit (hard=True: the daemon notices the death), or by an unbind
        (unbind=True: as a destroyed subinterpreter, so the unbound ops
        apply to its items); returns once the session has ended."""
        self.ctl.put('unbind' if unbind else 'hard' if hard else 'exit')
        out, err = self.proc.communicate(timeout=30)
        if self.proc.returncode != 0:
            raise AssertionError(f'producer failed:\n{out}\n{err}')

    def kill(self):
        self.proc.kill()
        self.proc.communicate(timeout=30)
