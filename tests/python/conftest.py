"""pytest setup: everything lives in _env.py so unittest runs the same way.

Builds nothing.  Importing _env points XICHAN_RUNTIME_DIR at a fresh temp
dir, XICHAN_NAME at a namespace unique to this session, XICHAN_DAEMON at
$BUILD/bin/xichand, PYTHONPATH at pyext/ for subprocesses, and stops the
daemon at exit.  If the extension is not built for this Python, collection
is skipped cleanly -- except in CI (CI=true), where that is an error: CI
must not pass by running nothing.  With XICHAN_SKIP_LOG set, the number of
skipped tests is appended to that file (scripts/test-all sums them).
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import _env
except unittest.SkipTest as e:  # the extension is not built for this Python
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        raise RuntimeError(f'CI: {e}') from None
    collect_ignore_glob = ['test_*.py']
    _SKIP = str(e)
else:
    _SKIP = None


def pytest_report_header(config):
    if _SKIP:
        return f'xichan: SKIPPED -- {_SKIP}'
    return (f'xichan: namespace {os.environ["XICHAN_NAME"]}, '
            f'runtime dir {os.environ["XICHAN_RUNTIME_DIR"]}')


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # test_cpython_suite's counts and skip list (its brief asks for them in
    # the output, and pytest hides a passing test's prints).
    lines = getattr(sys.modules.get('test_cpython_suite'), 'SUMMARY', None)
    if lines:
        terminalreporter.write_sep('-', "CPython 3.13's test_queues.py/test_channels.py on xichan")
        for line in lines:
            terminalreporter.write_line(line)
    # The skip count, for scripts/test-all's closing line.
    log = os.environ.get('XICHAN_SKIP_LOG')
    if not log:
        return
    stats = terminalreporter.stats
    skipped = len(stats.get('skipped', []))
    total = sum(len(stats.get(k, [])) for k in ('passed', 'failed', 'error', 'skipped',
                                                 'xfailed', 'xpassed'))
    v = sys.version_info
    with open(log, 'a') as f:
        if _SKIP:
            f.write(f'python {v.major}.{v.minor}: 1 skipped of 1 (the whole suite: {_SKIP})\n')
        else:
            f.write(f'python {v.major}.{v.minor}: {skipped} skipped of {total}\n')


def pytest_sessionfinish(session, exitstatus):
    if _SKIP:
        print(f'\nxichan: {_SKIP}')
        if exitstatus == 5:  # "no tests collected" is a clean skip here
            session.exitstatus = 0
        return
    _env.stop_daemon()

