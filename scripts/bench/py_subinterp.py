#!/usr/bin/env python3
"""py_subinterp.py -- ping-pong between the main interpreter and a
subinterpreter running in a thread (CPython 3.13: test.support.interpreters).

    py_subinterp.py [--rounds N] [--blocking-rounds N] [--reps R]

Modes, each timed per round trip with perf_counter_ns in the main thread:
  xichan-queue           two xichan queues (syncobj=True), blocking get
  xichan-channel         two xichan channels, send_nowait + blocking recv
  cpython-queue-block    two test.support.interpreters.queues, blocking get
                         (CPython polls every 10 ms while it blocks)
  cpython-queue-spin     the same queues, both sides spinning on get_nowait
The item is a 64-byte bytes object.  Prints one JSON object on stdout; exit
status 1 if a mode failed.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), 'pyext'))

ECHO_BLOCK = """
while True:
    v = a.get()
    if v is None:
        break
    b.put(v)
"""
ECHO_CHAN = """
while True:
    v = a.recv()
    if v is None:
        break
    b.send_nowait(v)
"""
ECHO_SPIN = """
from test.support.interpreters.queues import QueueEmpty
while True:
    try:
        v = a.get_nowait()
    except QueueEmpty:
        continue
    if v is None:
        break
    b.put(v)
"""


def summary(ns):
    us = sorted(n / 1000.0 for n in ns)
    n = len(us)
    return {'p50_us': round(statistics.median(us), 3),
            'p99_us': round(us[min(n - 1, int(n * 0.99))], 3),
            'p999_us': round(us[min(n - 1, int(n * 0.999))], 3),
            'max_us': round(us[-1], 3), 'mean_us': round(statistics.fmean(us), 3), 'n': n}


def run_mode(mode, rounds, warmup):
    from test.support import interpreters
    item = bytes(range(64))
    interp = interpreters.create()
    if mode.startswith('xichan'):
        if mode == 'xichan-queue':
            from xichan import queues
            a, b = queues.create(syncobj=True), queues.create(syncobj=True)
            put, get, code = a.put, b.get, ECHO_BLOCK
            interp.prepare_main(a=a, b=b)
            stop = lambda: a.put(None)  # noqa: E731
        else:
            from xichan import channels
            ra, sa = channels.create()
            rb, sb = channels.create()
            put, get, code = sa.send_nowait, rb.recv, ECHO_CHAN
            interp.prepare_main(a=ra, b=sb)
            stop = lambda: sa.send_nowait(None)  # noqa: E731
    else:
        from test.support.interpreters import queues
        interp.exec('import test.support.interpreters.queues')   # 3.13 needs it first
        a, b = queues.create(syncobj=True), queues.create(syncobj=True)
        interp.prepare_main(a=a, b=b)
        put, stop = a.put, (lambda: a.put(None))
        if mode == 'cpython-queue-block':
            get, code = b.get, ECHO_BLOCK
        else:
            code = ECHO_SPIN
            get_nowait, empty = b.get_nowait, queues.QueueEmpty

            def get():
                while True:
                    try:
                        return get_nowait()
                    except empty:
                        pass
    failure = []

    def body():
        try:
            interp.exec(code)
        except Exception as e:           # reported by the main thread
            failure.append(e)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    clock = time.perf_counter_ns
    try:
        for _ in range(warmup):
            put(item)
            get()
        ns = [0] * rounds
        for i in range(rounds):
            t0 = clock()
            put(item)
            get()
            ns[i] = clock() - t0
    finally:
        stop()
        t.join(30)
        if failure:
            raise failure[0]
        if not t.is_alive():
            interp.close()
    return ns


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rounds', type=int, default=20000)
    ap.add_argument('--blocking-rounds', type=int, default=50)
    ap.add_argument('--reps', type=int, default=3)
    args = ap.parse_args()
    out = {'bench': 'py_subinterp', 'python': sys.version.split()[0], 'results': [],
           'errors': [], 'skipped': []}
    if sys.version_info < (3, 13):
        out['skipped'].append({'reason': f'needs CPython 3.13 (this is {sys.version.split()[0]})'})
        print(json.dumps(out))
        return
    modes = ['xichan-queue', 'xichan-channel', 'cpython-queue-block', 'cpython-queue-spin']
    res = {m: [] for m in modes}
    for rep in range(args.reps):
        for mode in modes:
            blocking = mode == 'cpython-queue-block'
            rounds = args.blocking_rounds if blocking else args.rounds
            warmup = 2 if blocking else min(500, max(2, rounds // 10))
            try:
                res[mode].append(summary(run_mode(mode, rounds, warmup)))
                print(f'  {mode:20} p50 {res[mode][-1]["p50_us"]:10.2f} us', file=sys.stderr)
            except Exception as e:
                out['errors'].append({'mode': mode, 'error': f'{type(e).__name__}: {e}',
                                      'traceback': traceback.format_exc()})
                print(f'  ERROR {mode}: {e}', file=sys.stderr)
    for mode in modes:
        if res[mode]:
            out['results'].append({'mode': mode, 'reps': res[mode]})
    print(json.dumps(out))
    sys.exit(1 if out['errors'] else 0)


if __name__ == '__main__':
    main()
