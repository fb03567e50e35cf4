"""How setuptools builds the extension xichan._xichan (and the daemon it
ships): shared by pyext/setup.py (`pip install ./pyext`, `python -m build
pyext`) and the repository root's setup.py (`pip install .`, `python -m
build`).  Not part of the installed package.

Sources are found in either layout: the repository (root/libclient,
root/broker, root/pyext/_xichan) and an sdist of pyext/ (libclient/ and
broker/ beside _xichan/: pyext/libclient and pyext/broker are symlinks into
the repository, which the sdist stores as directories).

Which libxichan the extension is built against is $XICHAN_LIBXICHAN:

  (unset), "auto"  the in-tree sources when libclient/ is there, else the
                   installed library ("pkg-config");
  "source"         compile libclient/*.c into the extension (needs only
                   msgpack-c, Debian libmsgpack-dev);
  "pkg-config"     the installed library (`make install`): flags from
                   `pkg-config xichan`, linked to libxichan.so with an rpath
                   to its directory, so no ldconfig or LD_LIBRARY_PATH is
                   needed -- and the library's autostart then finds the
                   installed xichand as ../bin/xichand beside it;
  a path to libxichan.a   that archive (compiled with -fPIC, as the top
                   Makefile does: build/lib/libxichan.a).

XICHAN_LIBXICHAN_A=path is the older spelling of the last form.  The
extension uses libxichan's public API only (xichan.h), which is why the
installed shared library will do.

The daemon, xichand, is built into the package too (xichan/xichand, beside
the extension, where the client's autostart looks first after
$XICHAN_DAEMON), so that `pip install` alone gives a working system.  It
needs libuv's headers to build (Debian libuv1-dev) and libuv at run time.
$XICHAN_BUNDLE_DAEMON: "1" (the default with the in-tree sources) builds
it, "0" (the default with XICHAN_LIBXICHAN=pkg-config, whose installed
xichand the library finds beside itself) leaves it out; then put xichand
on PATH (`make install`) or point XICHAN_DAEMON at it.
"""
import glob
import os
import shlex
import subprocess

from setuptools import Extension
from setuptools.command.build_ext import build_ext

# Compiler flags of the Makefile's build (pyext/build.mk) that matter for
# correctness; warnings are the Makefile's business.
_CFLAGS = ['-std=c11', '-fvisibility=hidden', '-pthread',
           '-Wno-unused-parameter', '-Wno-missing-field-initializers']
_MACROS = [('_GNU_SOURCE', None), ('NDEBUG', None)]


def _pkg_config(*args):
    try:
        out = subprocess.run(['pkg-config', *args, 'xichan'], capture_output=True,
                             text=True, check=True).stdout
    except FileNotFoundError:
        raise SystemExit('xichan: XICHAN_LIBXICHAN=pkg-config needs pkg-config '
                         '(apt-get install pkg-config)')
    except subprocess.CalledProcessError as e:
        raise SystemExit('xichan: pkg-config finds no installed libxichan ('
                         + e.stderr.strip() + '); run `make install` in the xichan '
                         'repository, set PKG_CONFIG_PATH, or build from the repository')
    return shlex.split(out)


def _installed():
    """Extension arguments for the installed libxichan (pkg-config)."""
    cflags = _pkg_config('--cflags')
    libs = _pkg_config('--libs')
    libdirs = [f[2:] for f in libs if f.startswith('-L')]
    return dict(
        include_dirs=[f[2:] for f in cflags if f.startswith('-I')],
        extra_compile_args=[f for f in cflags if not f.startswith('-I')],
        library_dirs=libdirs,
        runtime_library_dirs=libdirs,
        # codec.c speaks msgpack itself, not only through libxichan.
        libraries=[f[2:] for f in libs if f.startswith('-l')] + ['msgpackc'],
    )


def _source_dir(root, name):
    """root/name, or root/pyext/name: the sdist and repository layouts."""
    for d in (os.path.join(root, name), os.path.join(root, 'pyext', name)):
        if os.path.isdir(d):
            return d
    return None


def _in_tree(root, archive=None):
    """Extension arguments for libclient/ compiled in, or a built archive."""
    libclient = os.path.join(root, 'libclient')
    if not os.path.isdir(libclient):
        raise SystemExit(f'xichan: libclient/ not found in {root}: build from the xichan '
                         'repository or its sdist, or set XICHAN_LIBXICHAN=pkg-config to '
                         'use an installed libxichan')
    args = dict(include_dirs=[os.path.join(libclient, 'include'), libclient],
                libraries=['msgpackc'], sources=[], extra_objects=[])
    if archive:
        args['extra_objects'].append(os.path.abspath(archive))
    else:
        args['sources'] = sorted(glob.glob(os.path.join(libclient, '*.c')))
    return args


def _mode(root):
    mode = os.environ.get('XICHAN_LIBXICHAN') or os.environ.get('XICHAN_LIBXICHAN_A') or 'auto'
    if mode == 'auto':
        mode = 'source' if os.path.isdir(os.path.join(root, 'libclient')) else 'pkg-config'
    return mode


def extension(root, setup_dir):
    """The Extension for xichan._xichan.

    root is the directory that holds libclient/ (the repository root, or
    the root of an sdist of pyext/), setup_dir the directory of the calling
    setup.py: setuptools wants source paths relative to it.
    """
    mode = _mode(root)
    if mode == 'pkg-config':
        args = _installed()
        args['sources'] = []
    elif mode == 'source':
        args = _in_tree(root)
    else:
        args = _in_tree(root, archive=mode)
    sources = sorted(glob.glob(os.path.join(_source_dir(root, '_xichan'), '*.c'))) + \
        args.pop('sources')
    extra_compile_args = _CFLAGS + args.pop('extra_compile_args', [])
    return Extension(
        'xichan._xichan',
        sources=[os.path.relpath(s, setup_dir) for s in sources],
        define_macros=_MACROS,
        extra_compile_args=extra_compile_args,
        extra_link_args=['-pthread'],
        **args,
    )


def _bundle_daemon(root):
    want = os.environ.get('XICHAN_BUNDLE_DAEMON')
    if want in ('0', '1'):
        return want == '1'
    if want:
        raise SystemExit(f'xichan: XICHAN_BUNDLE_DAEMON must be 0 or 1, not {want!r}')
    return _mode(root) != 'pkg-config'


def daemon_sources(root):
    """xichand's sources: broker/*.c but xichanctl.c (the Makefile's
    xichand_SRCS), and libclient/*.c."""
    broker = os.path.join(root, 'broker')
    own = [f for f in sorted(glob.glob(os.path.join(broker, '*.c')))
           if os.path.basename(f) != 'xichanctl.c']
    return own + sorted(glob.glob(os.path.join(root, 'libclient', '*.c')))


def build_ext_class(root):
    """A build_ext that also builds xichand into the package (see the top)."""

    class BuildExtAndDaemon(build_ext):
        def run(self):
            super().run()
            if not _bundle_daemon(root):
                return
            if not os.path.isdir(os.path.join(root, 'broker')):
                raise SystemExit(f'xichan: broker/ not found in {root}, so xichand cannot be '
                                 'built into the package; set XICHAN_BUNDLE_DAEMON=0 to '
                                 'leave it out')
            self._build_daemon()

        def _build_daemon(self):
            out_dir = os.path.join(self.build_lib, 'xichan')
            if self.inplace:
                out_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath('xichan._xichan')))
            tmp = os.path.join(self.build_temp, 'xichand')
            include = [os.path.join(root, 'libclient', 'include'), os.path.join(root, 'libclient'),
                       os.path.join(root, 'broker')]
            try:
                objects = self.compiler.compile(
                    daemon_sources(root), output_dir=tmp, include_dirs=include,
                    macros=_MACROS, extra_postargs=_CFLAGS)
            except Exception as e:
                raise SystemExit(f'xichan: building xichand failed ({e}); it needs libuv '
                                 '(Debian libuv1-dev) and msgpack-c (libmsgpack-dev), or '
                                 'set XICHAN_BUNDLE_DAEMON=0 to leave it out') from None
            os.makedirs(out_dir, exist_ok=True)
            self.compiler.link_executable(objects, 'xichand', output_dir=out_dir,
                                          libraries=['uv', 'msgpackc'],
                                          extra_postargs=['-pthread'])

    return BuildExtAndDaemon
