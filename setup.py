"""`pip install .` and `python -m build` from the repository root: the Python
package xichan from pyext/, built as `pip install ./pyext` builds it
(pyext/xichan_build.py), xichand included.

setuptools' scratch files go to build/setuptools/, inside the Makefile's
build/ and apart from its outputs (build/bin, build/lib, ...); they are
rebuilt every time (force), never reused from an earlier build.
"""
import os
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'pyext'))
from xichan_build import build_ext_class, extension  # noqa: E402

setup(ext_modules=[extension(root=HERE, setup_dir=HERE)],
      cmdclass={'build_ext': build_ext_class(HERE)},
      options={'build': {'build_base': os.path.join('build', 'setuptools'), 'force': True}})
