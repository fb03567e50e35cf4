"""Runs at the start of every interpreter of a CPython-suite run (the main
one and each subinterpreter: they run `site` too, and have their own
sys.modules and sys.meta_path), because tests/python/test_cpython_suite.py
puts this directory first on PYTHONPATH of that run only.  It installs the
import aliases of xichan_cpython_shim; nothing is imported until a test asks.
"""
import xichan_cpython_shim

xichan_cpython_shim.install()
