"""How setuptools builds the extension xichan._xichan: shared by pyext/setup.py
(`pip install ./pyext`) and the repository root's setup.py (`pip install .`).
Not part of the installed package.

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

The daemon is not part of the package: put xichand on PATH (`make
install`) or point XICHAN_DAEMON at it; clients start it on demand.
"""
import glob
import os
import shlex
import subprocess

from setuptools import Extension

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


def _in_tree(root, archive=None):
    """Extension arguments for libclient/ compiled in, or a built archive."""
    libclient = os.path.join(root, 'libclient')
    if not os.path.isdir(libclient):
        raise SystemExit(f'xichan: libclient/ not found in {root}: build from the xichan '
                         'repository, or set XICHAN_LIBXICHAN=pkg-config to use an '
                         'installed libxichan')
    args = dict(include_dirs=[os.path.join(libclient, 'include'), libclient],
                libraries=['msgpackc'], sources=[], extra_objects=[])
    if archive:
        args['extra_objects'].append(os.path.abspath(archive))
    else:
        args['sources'] = sorted(glob.glob(os.path.join(libclient, '*.c')))
    return args


def extension(root, setup_dir):
    """The Extension for xichan._xichan.

    root is the repository root (libclient/ and pyext/ in it), setup_dir the
    directory of the calling setup.py: setuptools wants source paths
    relative to it.
    """
    mode = os.environ.get('XICHAN_LIBXICHAN') or os.environ.get('XICHAN_LIBXICHAN_A') or 'auto'
    if mode == 'auto':
        mode = 'source' if os.path.isdir(os.path.join(root, 'libclient')) else 'pkg-config'
    if mode == 'pkg-config':
        args = _installed()
        args['sources'] = []
    elif mode == 'source':
        args = _in_tree(root)
    else:
        args = _in_tree(root, archive=mode)
    sources = sorted(glob.glob(os.path.join(root, 'pyext', '_xichan', '*.c'))) + args.pop('sources')
    extra_compile_args = _CFLAGS + args.pop('extra_compile_args', [])
    return Extension(
        'xichan._xichan',
        sources=[os.path.relpath(s, setup_dir) for s in sources],
        define_macros=_MACROS,
        extra_compile_args=extra_compile_args,
        extra_link_args=['-pthread'],
        **args,
    )
