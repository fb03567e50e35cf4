#!/usr/bin/env python3
"""py_cgloop.py -- N put+get pairs on one queue in one thread, for callgrind.

    valgrind --tool=callgrind python3 py_cgloop.py IMPL SYNCOBJ N

IMPL is xichan (xichan.queues) or cpython (3.13's
test.support.interpreters.queues); SYNCOBJ 1 puts with syncobj=True (bytes
shared as they are), 0 pickles.  The item is a 64-byte bytes object.
scripts/bench/run runs this for N and 2N and divides the difference in
instructions by N, which cancels start-up and imports.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), 'pyext'))


def main():
    impl, syncobj, n = sys.argv[1], sys.argv[2] == '1', int(sys.argv[3])
    if impl == 'xichan':
        from xichan import queues
    elif impl == 'cpython':
        from test.support.interpreters import queues
    else:
        raise SystemExit(f'unknown implementation {impl!r}')
    q = queues.create(syncobj=syncobj)
    item = bytes(range(64))
    put, get = q.put, q.get
    put(item)                     # first-call costs (session open, caches) out of the loop
    get()
    for _ in range(n):
        put(item)
        get()


if __name__ == '__main__':
    main()
