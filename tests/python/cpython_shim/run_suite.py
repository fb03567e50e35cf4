"""run_suite.py MODULE SKIPS_JSON -- runs one of CPython's own test modules
(e.g. test.test_interpreters.test_queues, loaded from this Python's
installation) with the tests named in SKIPS_JSON ({test id: reason})
skipped, and prints one JSON line of results on stdout (unittest's verbose
report goes to stderr).  Started by tests/python/test_cpython_suite.py with
this directory first on PYTHONPATH, so sitecustomize.py has installed the
xichan aliases in this interpreter and will in every subinterpreter.
"""
import json
import sys
import unittest


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


# Run in this interpreter and in a fresh subinterpreter: the names the
# tests import are xichan's modules there too.
_CHECK = """
import importlib, xichan.queues, xichan.channels, xichan._crossinterp
for alias, target in (('test.support.interpreters.queues', xichan.queues),
                      ('test.support.interpreters.channels', xichan.channels),
                      ('test.support.interpreters._crossinterp', xichan._crossinterp),
                      ('_interpqueues', None), ('_interpchannels', None)):
    mod = importlib.import_module(alias)
    want = target or importlib.import_module('xichan_interp' + alias[len('_interp'):])
    assert mod is want, (alias, mod)
"""


def check_aliases():
    exec(_CHECK, {})
    from test.support import interpreters
    interp = interpreters.create()
    try:
        interp.exec(_CHECK)
    finally:
        interp.close()


def main():
    modname, skips = sys.argv[1], json.loads(sys.argv[2])
    check_aliases()
    suite = unittest.defaultTestLoader.loadTestsFromName(modname)
    tests = list(_flatten(suite))
    # A failed import shows up as a unittest.loader._FailedTest: an error.
    unknown = set(skips) - {t.id() for t in tests}
    for t in tests:
        reason = skips.get(t.id())
        if reason is not None:
            method = getattr(t, t._testMethodName)
            setattr(t, t._testMethodName, unittest.skip(f'xichan: {reason}')(method))
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(
        unittest.TestSuite(tests))
    print(json.dumps({
        'module': modname,
        'file': sys.modules[modname].__file__ if modname in sys.modules else None,
        'run': result.testsRun,
        'skipped': {t.id(): why for t, why in result.skipped},
        'failures': [t.id() for t, _ in result.failures],
        'errors': [t.id() for t, _ in result.errors],
        'unexpected_successes': [t.id() for t in result.unexpectedSuccesses],
        'unknown_skips': sorted(unknown),
    }))


if __name__ == '__main__':
    main()
