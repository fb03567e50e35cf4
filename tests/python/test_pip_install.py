"""pip installs the package: `pip install ./pyext` and `pip install .` (the
repository root) each build the extension into a fresh venv, and so does
`pip install ./pyext` against an installed libxichan (`make install` to a
staging dir, XICHAN_LIBXICHAN=pkg-config).  Each installed copy is then
imported from outside the tree, with no PYTHONPATH, and passes an item
through a named queue to a second process, through a daemon it starts
itself -- the xichand built into the package (no xichand on PATH, no
XICHAN_DAEMON), the one XICHAN_DAEMON names, and the one beside the
installed library respectively.

`python -m build --no-isolation` (offline: the build tools of this Python)
makes an sdist and a wheel from the root and from pyext/; each sdist and
wheel holds the LICENSE and what it needs, and the sdist of pyext/ then
builds and installs offline in a fresh venv (pip --no-build-isolation
--no-index), where the package works with its own xichand and nothing on
PATH.

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
    for check, why in (('import pip', 'pip is not installed for this Python'),
                       ('import setuptools, sys; '
                        'sys.exit(int(setuptools.__version__.split(".")[0]) < 77)',
                        'setuptools >= 77 is not installed for this Python (needed '
                        'offline, pip --no-build-isolation; scripts/install-deps)')):
        if subprocess.run([sys.executable, '-I', '-c', check],
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


class _Venvs(XTestCase):
    """A copy of the sources, fresh venvs, and a check of what they install."""
    timeout = 3 * PIP_TIMEOUT + 120

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix='xichan-pip-')
        cls.src = os.path.join(cls.tmp, 'src')
        skip = shutil.ignore_patterns('build', '__pycache__', '*.so', '*.egg-info', '*.o')
        for d in ('pyext', 'libclient', 'broker'):
            shutil.copytree(os.path.join(_env.ROOT, d), os.path.join(cls.src, d), ignore=skip,
                            symlinks=True)
        for f in ('README.md', 'pyproject.toml', 'setup.py', 'LICENSE', 'MANIFEST.in'):
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


@unittest.skipIf(_MISSING, _MISSING)
class TestPipInstall(_Venvs):

    def test_pip_install_pyext(self):
        python = self.pip_install('pyext', './pyext')
        # No xichand on PATH, no XICHAN_DAEMON: the package's own is found.
        self.check_queue(python)

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


def _members(archive):
    """The file names in an sdist (without its top directory) or a wheel."""
    if archive.endswith('.whl'):
        import zipfile
        with zipfile.ZipFile(archive) as z:
            return {i.filename: (i.external_attr >> 16) for i in z.infolist()}
    import tarfile
    with tarfile.open(archive) as t:
        return {m.name.split('/', 1)[1]: m.mode for m in t.getmembers() if '/' in m.name}


_NO_BUILD = None if subprocess.run([sys.executable, '-I', '-c', 'import build'],
                                   capture_output=True).returncode == 0 else \
    'the build package is not installed for this Python (scripts/install-deps)'


@only_on_newest  # outermost: its reason is the one reported on other Pythons
@unittest.skipIf(_NO_BUILD, _NO_BUILD)
@unittest.skipIf(_MISSING, _MISSING)
class TestBuild(_Venvs):
    """python -m build from the root and from pyext/, offline."""

    def build(self, where):
        out = os.path.join(self.tmp, 'dist-' + where.replace('.', 'root'))
        p = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '-o', out, where],
                           cwd=self.src, env=self.base_env(), capture_output=True, text=True,
                           timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f'python -m build {where} failed:\n{p.stdout}\n{p.stderr}')
        sdist, = [os.path.join(out, f) for f in os.listdir(out) if f.endswith('.tar.gz')]
        wheel, = [os.path.join(out, f) for f in os.listdir(out) if f.endswith('.whl')]
        return sdist, wheel

    def check_archives(self, sdist, wheel, prefix):
        src = _members(sdist)
        for f in ('LICENSE', 'PKG-INFO', 'libclient/include/xichan.h', 'libclient/shm_layout.h',
                  'broker/xichand.c', 'broker/daemon.h', prefix + '_xichan/xichan_py.h',
                  prefix + 'xichan_build.py', prefix + 'xichan/py.typed'):
            self.assertIn(f, src, f'{f} missing from the sdist')
        self.assertFalse([f for f in src if f.endswith(('.so', '.o'))], 'built files in the sdist')
        whl = _members(wheel)
        for f in ('xichan/py.typed', 'xichan/multiprocessing.py', 'xichan/queues.pyi',
                  'xichan-0.1.0.dist-info/licenses/LICENSE'):
            self.assertIn(f, whl, f'{f} missing from the wheel')
        self.assertTrue(whl['xichan/xichand'] & 0o111, 'xichand is not executable in the wheel')
        import zipfile
        with zipfile.ZipFile(wheel) as z:
            meta = z.read('xichan-0.1.0.dist-info/METADATA').decode()
        self.assertIn('License-Expression: MIT', meta)
        self.assertNotIn('License: see', meta)

    def test_build_from_root(self):
        self.check_archives(*self.build('.'), prefix='pyext/')

    def test_build_from_pyext_and_install_its_sdist_offline(self):
        sdist, wheel = self.build('pyext')
        self.check_archives(sdist, wheel, prefix='')
        python = self.pip_install('sdist', sdist)
        self.check_queue(python)
