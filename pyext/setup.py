"""Builds xichan._xichan with setuptools: `pip install ./pyext` from the
repository root (the root's own setup.py serves `pip install .`).

pyext/xichan_build.py says how: by default the in-tree libxichan sources
(libclient/*.c) are compiled in, so nothing needs to be built or installed
first but msgpack-c (Debian: libmsgpack-dev); XICHAN_LIBXICHAN=pkg-config
builds against an installed libxichan instead.
"""
import os
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from xichan_build import extension  # noqa: E402

# force: setuptools would otherwise reuse an extension left in pyext/build by
# an earlier build, even one made against another libxichan.
setup(ext_modules=[extension(root=os.path.dirname(HERE), setup_dir=HERE)],
      options={'build': {'force': True}})
