#!/usr/bin/env python3
"""scripts/demo/machines.py -- the demo across three "machines" on this host.

    scripts/run-demo --machines 3 [--jobs N]

Three namespaces stand for three machines, each with its own xichand and
xichan-bridge, joined by three nats-server nodes of one JetStream cluster
on 127.0.0.1 (the world of tests/bridge/cluster.py).  Machine 1 puts word-
count jobs into the named queue 'jobs'; two workers on machine 2 and two on
machine 3 take them with plain `queues.open('jobs').get()` and put their
counts into 'results', which machine 1 reads back.  Nothing in the worker
code knows about NATS.  Everything is stopped and removed at the end.
"""
import argparse
import collections
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'bridge'))
import cluster  # noqa: E402

WORKER = r'''
import os, sys, xichan.queues as Q
jobs, results = Q.open('jobs'), Q.open('results')
while (job := jobs.get(timeout=120)) is not None:
    n, text = job
    results.put((n, len(text.split()), sys.argv[1]))
'''

MAIN = r'''
import sys, time, xichan.queues as Q
jobs, results = Q.open('jobs'), Q.open('results')
n = int(sys.argv[1])
text = 'the quick brown fox jumps over the lazy dog ' * 20
t = time.perf_counter()
for i in range(n):
    jobs.put((i, text))
seen, words, by = set(), 0, {}
while len(seen) < n:
    i, count, who = results.get(timeout=120)
    seen.add(i)
    words += count
    by[who] = by.get(who, 0) + 1
dt = time.perf_counter() - t
for _ in range(4):
    jobs.put(None)
print('%d jobs, %d words, %.2f s (%.0f jobs/s)' % (n, words, dt, n / dt))
for who in sorted(by):
    print('  %-8s %d jobs' % (who, by[who]))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--machines', type=int, default=3)
    ap.add_argument('--jobs', type=int, default=1000)
    a = ap.parse_args()
    if a.machines != 3:
        sys.exit('machines.py: the demo has 3 machines (--machines 3)')
    cluster.SPANS[:] = ['jobs', 'results']
    w = cluster.World()
    try:
        w.start()
        print('3 machines up: namespaces %s, NATS on %s' % (', '.join(w.machines),
                                                             ', '.join(w.urls)))
        for k in (1, 2):
            for i in range(2):
                w.python(k, 'worker%d_%d' % (k, i), WORKER, 'm%d/w%d' % (k + 1, i))
        out = w.run_python(0, MAIN.replace('sys.argv[1]', str(a.jobs)), timeout=300)
        print(out, end='')
        ctl = os.path.join(cluster.BUILD, 'bin', 'xichanctl')
        print('$ xichanctl --name %s stats   (machine 1)' % w.machines[0])
        print(subprocess.run([ctl, '--name', w.machines[0], '--runtime-dir', w.rt, 'stats'],
                             capture_output=True, text=True, timeout=30).stdout, end='')
        for k in (1, 2):
            for i in range(2):
                w.procs['worker%d_%d' % (k, i)].wait(30)
    finally:
        w.stop_all()


if __name__ == '__main__':
    main()
