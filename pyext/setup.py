"""Builds xichan._xichan with setuptools (`pip install ./pyext`).

The extension is compiled from pyext/_xichan/*.c together with the in-tree
libxichan sources (libclient/*.c), so nothing needs to be built or installed
first but msgpack-c (Debian: libmsgpack-dev).  To link an already built
archive instead, set XICHAN_LIBXICHAN_A=/path/to/libxichan.a (it must have
been compiled with -fPIC, as the top Makefile does).

The daemon is not part of the wheel: build it with `make` in the repository
and put it on PATH, or point XICHAN_DAEMON at it (clients start it on demand).
"""
import glob
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIBCLIENT = os.path.join(ROOT, 'libclient')

if not os.path.isdir(LIBCLIENT):
    raise SystemExit('setup.py: libclient/ not found next to pyext/: build from the xichan '
                     'repository (pip install ./pyext)')

sources = sorted(glob.glob(os.path.join(HERE, '_xichan', '*.c')))
extra_objects = []
archive = os.environ.get('XICHAN_LIBXICHAN_A')
if archive:
    extra_objects.append(archive)
else:
    sources += sorted(glob.glob(os.path.join(LIBCLIENT, '*.c')))

# setuptools wants source paths relative to this directory.
sources = [os.path.relpath(s, HERE) for s in sources]

ext = Extension(
    'xichan._xichan',
    sources=sources,
    include_dirs=[os.path.join(LIBCLIENT, 'include'), LIBCLIENT],
    define_macros=[('_GNU_SOURCE', None), ('NDEBUG', None)],
    extra_compile_args=['-std=c11', '-fvisibility=hidden', '-pthread',
                        '-Wno-unused-parameter', '-Wno-missing-field-initializers'],
    extra_link_args=['-pthread'],
    extra_objects=extra_objects,
    libraries=['msgpackc'],
)

setup(ext_modules=[ext])
