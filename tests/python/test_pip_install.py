"""pip installs the package: `pip install ./pyext` and `pip install .` (the
repository root) each build the extension into a fresh venv, and so does
`pip install ./pyext` against an installed libxichan (`make install` to a
staging dir, XICHAN_LIBXICHAN=pkg-config).  Each installed copy is then
imported from outside the tree, with no PYTHONPATH, and passes an item
through a named queue to a second process, through a daemon it starts
itself -- found on PATH, through XICHAN_DAEMON, and beside the installed
library respectively.

Offline and bounded: the venvs see this Python's site-packages, pip runs
with --no-build-isolation --no-index, so setuptools must be installed
(scripts/install-deps installs it for the newest Python); without it, or
without venv, pip, a C compiler or pkg-config, a test skips, saying why.
Every Python builds `pip install ./pyext`; the other two variants run on
the newest Python only (the first of scripts/pythons), builds being slow on
a small machine.  The sources are copied to a temp dir first, so that nothing an earlier
build left in the tree (pyext/build, an in-tree _xichan*.so) can stand in
for the real thing.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import _env
from _env import XTestCase

PIP_TIMEOUT = 300

# Runs in the venv: put, then a second process takes the item by the
# queue's name (an item outlives its sender only as UNBOUND, so the sender
# waits for the taker).
CHECK = textwrap.dedent('''
    import subprocess, sys
    import xichan
    from xichan import queues
    assert xichan.__file__.startswith(sys.prefix + '/'), xichan.__file__
    q = queues.create(name='pip.check')
    q.put('hello through xichan')
    taker = 'from xichan import queues; print(queues.open("pip.check").get(timeout=10))'
    got = subprocess.run([sys.executable, '-c', taker], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    queues.destroy(q)
    print(got)
''')


def _missing():
    """Why these tests cannot run here, or None."""
    try:
        import venv  # noqa: F401
    except ImportError:
        return 'the venv module is not available'
    for mod, why in (('pip', 'pip is not installed for this Python'),
                     ('setuptools', 'setuptools is not installed for this Python '
                                    '(needed offline: pip --no-build-isolation)')):
        if subprocess.run([sys.executable, '-c', f'import {mod}'],
                          capture_output=True).returncode != 0:
            return why
    if not shutil.which('cc') and not shutil.which('gcc'):
        return 'no C compiler'
    return None


def _is_newest_python():
    """True on the first Python of scripts/pythons (the one run-demo uses)."""
    try:
        out = subprocess.run([os.path.join(_env.ROOT, 'scripts', 'pythons')], capture_output=True,
                             text=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return True
    return not out or os.path.realpath(out[0]) == os.path.realpath(sys.executable)


# Each build takes a while on a small machine: every Python builds
# `pip install ./pyext`, the newest one the other two variants as well.
only_on_newest = unittest.skipUnless(_is_newest_python(),
                                     'the other pip variants run on the newest Python only')


def _path_without_xichand():
    """$PATH less any directory with a xichand, so discovery is what we test."""
    dirs = os.environ.get('PATH', '/usr/bin:/bin').split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not os.path.exists(os.path.join(d, 'xichand')))


_MISSING = _missing()


@unittest.skipIf(_MISSING, _MISSING)
class TestPipInstall(XTestCase):
    timeout = 3 * PIP_TIMEOUT + 120

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix='xichan-pip-')
        cls.src = os.path.join(cls.tmp, 'src')
        skip = shutil.ignore_patterns('build', '__pycache__', '*.so', '*.egg-info', '*.o')
        for d in ('pyext', 'libclient'):
            shutil.copytree(os.path.join(_env.ROOT, d), os.path.join(cls.src, d), ignore=skip)
        for f in ('README.md', 'pyproject.toml', 'setup.py'):
            shutil.copy(os.path.join(_env.ROOT, f), cls.src)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def base_env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k not in ('PYTHONPATH', 'XICHAN_DAEMON', 'XICHAN_NAME', 'XICHAN_RUNTIME_DIR')}
        env['PATH'] = _path_without_xichand()
        env.update(extra)
        return env

    def pip_install(self, case, target, **env):
        """A fresh venv with target pip-installed; its python."""
        venv = os.path.join(self.tmp, f'venv-{case}')
        subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', '--without-pip',
                        venv], check=True, timeout=120, capture_output=True)
        python = os.path.join(venv, 'bin', 'python')
        p = subprocess.run([python, '-m', 'pip', 'install', '--no-build-isolation', '--no-index',
                            '--disable-pip-version-check',
                            '--no-deps', '--quiet', target],
                           cwd=self.src, env=self.base_env(**env), capture_output=True,
                           text=True, timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f'pip install {target} failed:\n{p.stdout}\n{p.stderr}')
        return python

    def check_queue(self, python, **env):
        """Runs CHECK with python from outside the tree in a namespace of its own."""
        rundir = tempfile.mkdtemp(prefix='xichan-pip-run-')
        os.chmod(rundir, 0o700)
        name = f'pip{os.getpid()}x{int(time.time() * 1000) % 100000000}'
        try:
            p = subprocess.run([python, '-c', CHECK], cwd=self.tmp, capture_output=True,
                               text=True, timeout=120, stdin=subprocess.DEVNULL,
                               env=self.base_env(XICHAN_NAME=name, XICHAN_RUNTIME_DIR=rundir,
                                                 **env))
        finally:
            _env.stop_daemon(rundir, name)  # the daemon the check started
        self.assertEqual(p.returncode, 0, f'installed xichan failed:\n{p.stdout}\n{p.stderr}')
        self.assertEqual(p.stdout.strip(), 'hello through xichan')

    def test_pip_install_pyext(self):
        python = self.pip_install('pyext', './pyext')
        bindir = os.path.dirname(_env.DAEMON)
        self.check_queue(python, PATH=bindir + os.pathsep + _path_without_xichand())

    @only_on_newest
    def test_pip_install_repo_root(self):
        python = self.pip_install('root', '.')
        self.check_queue(python, XICHAN_DAEMON=_env.DAEMON)

    @only_on_newest
    def test_pip_install_against_installed_libxichan(self):
        if not shutil.which('pkg-config') or not shutil.which('make'):
            self.skipTest('needs pkg-config and make')
        stage = os.path.join(self.tmp, 'stage')
        p = subprocess.run(['make', '-C', _env.ROOT, '--no-print-directory', 'install',
                            f'DESTDIR={stage}', 'PREFIX=/usr/local', f'BUILD={_env.BUILD}'],
                           capture_output=True, text=True, timeout=PIP_TIMEOUT)
        self.assertEqual(p.returncode, 0, f'make install failed:\n{p.stdout}\n{p.stderr}')
        python = self.pip_install(
            'installed', './pyext', XICHAN_LIBXICHAN='pkg-config',
            PKG_CONFIG_PATH=os.path.join(stage, 'usr/local/lib/pkgconfig'),
            PKG_CONFIG_SYSROOT_DIR=stage)
        # Neither PATH nor XICHAN_DAEMON: autostart finds the installed
        # xichand as ../bin/xichand beside the installed libxichan.so.
        self.check_queue(python)
