"""Import aliases that run CPython 3.13's own test_interpreters/test_queues.py
and test_channels.py against xichan, unmodified.

For the CPython-suite run only (tests/python/test_cpython_suite.py): the
high-level modules those tests import become xichan's, and the low-level
modules become thin layers over _xichan (xichan_interpqueues,
xichan_interpchannels):

    test.support.interpreters.queues        -> xichan.queues
    test.support.interpreters.channels      -> xichan.channels
    test.support.interpreters._crossinterp  -> xichan._crossinterp
    _interpqueues                           -> xichan_interpqueues
    _interpchannels                         -> xichan_interpchannels

test.support.interpreters itself (Interpreter, create(), prepare_main())
stays CPython's: the subinterpreters are real ones.

An alias is the very module object of its target (sys.modules holds it under
both names), so `from test.support.interpreters import queues` and
`from xichan import queues` give the same classes and UNBOUND, and
importlib.reload() of the alias re-executes the target's own file.
"""
import importlib
import importlib.util
import sys

ALIASES = {
    'test.support.interpreters.queues': 'xichan.queues',
    'test.support.interpreters.channels': 'xichan.channels',
    'test.support.interpreters._crossinterp': 'xichan._crossinterp',
    '_interpqueues': 'xichan_interpqueues',
    '_interpchannels': 'xichan_interpchannels',
}


class _AliasLoader:
    def __init__(self, target):
        self.target = target
        self.target_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.target_spec = module.__spec__
        return module

    def exec_module(self, module):
        # module_from_spec() set __spec__ to the alias's spec; give the
        # module its own back, so that a reload finds and re-executes the
        # target's file rather than this no-op.
        module.__spec__ = self.target_spec


class AliasFinder:
    """A meta-path finder for the names in ALIASES (first in sys.meta_path,
    ahead of the built-in _interpqueues/_interpchannels)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in ALIASES:
            return None
        return importlib.util.spec_from_loader(name, _AliasLoader(ALIASES[name]))


def install():
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())
