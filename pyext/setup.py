"""Builds xichan._xichan (and xichand, into the package) with setuptools:
`pip install ./pyext` and `python -m build pyext` from the repository (the
root's own setup.py serves `pip install .` and `python -m build`), and the
build of an sdist of pyext/.

pyext/xichan_build.py says how: by default the in-tree libxichan sources
(libclient/*.c) are compiled in, so nothing needs to be built or installed
first but msgpack-c and libuv (Debian: libmsgpack-dev, libuv1-dev);
XICHAN_LIBXICHAN=pkg-config builds against an installed libxichan instead.
"""
import os
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from xichan_build import build_ext_class, extension  # noqa: E402

# libclient/ and broker/ are beside this file (symlinks in the repository,
# directories in an sdist of pyext/).
ROOT = HERE

# force: setuptools would otherwise reuse an extension left in pyext/build by
# an earlier build, even one made against another libxichan.
setup(ext_modules=[extension(root=ROOT, setup_dir=HERE)],
      cmdclass={'build_ext': build_ext_class(ROOT)},
      options={'build': {'force': True}})
