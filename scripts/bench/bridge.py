#!/usr/bin/env python3
"""scripts/bench/bridge.py -- xichan-bridge figures beside nats.c's own.

    scripts/bench/bridge.py [--rounds N] [--items N] [--sizes 64,4096]
                            [--replicas 3] [--memory] [--window N] [--json FILE]

Starts the world of tests/bridge/cluster.py (three namespaces with xichand
and xichan-bridge, three nats-server nodes of one cluster on 127.0.0.1),
then measures, for each item size:
  rtt         a bridged round trip: put on machine 1, a worker on machine 2
              gets it and puts it into 'results', machine 1 gets that
              (Python on both ends; p50/p99 in ms over --rounds), and the
              same round trip on machine 1 alone through queues no bridge
              spans (what the Python ends and local queues cost);
  throughput  items/s from a producer on machine 1 to a consumer on
              machine 2 through the bridges (--items items);
  nats.c      the same two figures from build/bench/nats_direct: a
              synchronous JetStream publish + pull round trip and an async
              publish with a concurrent pull consumer, on the same cluster
              (a stream with the same replicas and storage).
Prints a table and, with --json, writes the figures.  Bounded: every wait
has a deadline.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'bridge'))
import cluster  # noqa: E402

RTT_WORKER = r'''
import sys, xichan.queues as Q
jobs, results = Q.open(sys.argv[1]), Q.open(sys.argv[2])
while True:
    j = jobs.get(timeout=120)
    if j is None:
        break
    results.put(j)
'''

RTT_MAIN = r'''
import json, sys, time, xichan.queues as Q
rounds, size = int(sys.argv[1]), int(sys.argv[2])
jobs, results = Q.open(sys.argv[3]), Q.open(sys.argv[4])
payload = b'x' * size
for _ in range(20):                     # warm up
    jobs.put(payload); results.get(timeout=30)
ts = []
for _ in range(rounds):
    t = time.perf_counter()
    jobs.put(payload)
    results.get(timeout=30)
    ts.append(time.perf_counter() - t)
jobs.put(None)
ts.sort()
print(json.dumps({'p50_ms': ts[len(ts) // 2] * 1e3, 'p99_ms': ts[int(len(ts) * 0.99)] * 1e3,
                  'max_ms': ts[-1] * 1e3}))
time.sleep(30)
'''

TPUT_CONSUMER = r'''
import json, sys, time, xichan.queues as Q
n = int(sys.argv[1])
q = Q.open('bulk')
q.get(timeout=60)                        # the first item starts the clock
t = time.perf_counter()
got = 1
while got < n:
    got += len(q.get_many(256, timeout=60))
print(json.dumps({'items_per_s': (n - 1) / (time.perf_counter() - t)}), flush=True)
'''

TPUT_PRODUCER = r'''
import sys, time, xichan.queues as Q
n, size = int(sys.argv[1]), int(sys.argv[2])
q = Q.open('bulk')
payload = b'x' * size
for i in range(0, n, 256):
    q.put_many([payload] * min(256, n - i))
time.sleep(120)
'''


def run_json(w, k, key, code, *args, seconds=180):
    import select
    p = w.python(k, key, code, *args, stdout=subprocess.PIPE)
    line = cluster.read_line(p, seconds)
    w.kill(key)
    if not line.startswith('{'):
        raise SystemExit('%s said %r:\n%s\n%s' % (key, line, w.tail(key), '\n'.join(
            '%s: %s\n%s' % (b, json.dumps(w.status(i)), w.tail(b, 10))
            for i, b in enumerate(('bridge0', 'bridge1', 'bridge2')))))
    return json.loads(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=500)
    ap.add_argument('--items', type=int, default=20000)
    ap.add_argument('--sizes', default='64,4096')
    ap.add_argument('--replicas', type=int, default=3)
    ap.add_argument('--memory', action='store_true')
    ap.add_argument('--window', type=int, help="the bridges' --window (default theirs)")
    ap.add_argument('--json')
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(',')]
    cluster.SPANS[:] = ['jobs', 'results', 'bulk']
    direct = os.path.join(cluster.BUILD, 'bench', 'nats_direct')
    w = cluster.World()
    out = {'replicas': a.replicas, 'storage': 'memory' if a.memory else 'file',
           'window': a.window, 'sizes': {}}
    try:
        extra = ['--replicas', str(a.replicas)] + (['--memory'] if a.memory else []) + \
            (['--window', str(a.window)] if a.window else [])
        w.start('256M', extra)    # 256M: 20,000 items of 4 KiB in flight at once
        w.run_python(0, "import xichan.queues as Q; "
                     "Q.create(name='ljobs'); Q.create(name='lresults')")
        for size in sizes:
            w.python(1, 'rtt_worker', RTT_WORKER, 'jobs', 'results')
            rtt = run_json(w, 0, 'rtt_main', RTT_MAIN, a.rounds, size, 'jobs', 'results')
            w.kill('rtt_worker')
            # The same round trip on one machine through queues no bridge
            # spans: what the Python ends and the local queues cost.
            w.python(0, 'rtt_worker', RTT_WORKER, 'ljobs', 'lresults')
            local = run_json(w, 0, 'rtt_main', RTT_MAIN, a.rounds, size, 'ljobs', 'lresults')
            w.kill('rtt_worker')
            w.python(0, 'tput_prod', TPUT_PRODUCER, a.items, size)
            tput = run_json(w, 1, 'tput_cons', TPUT_CONSUMER, a.items)
            w.kill('tput_prod')
            args = [direct, '--size', str(size), '--rounds', str(a.rounds), '--items',
                    str(a.items), '--replicas', str(a.replicas)] + \
                (['--memory'] if a.memory else []) + ['--server', w.urls[0]]
            r = subprocess.run(args, capture_output=True, text=True, timeout=300)
            if r.returncode:
                raise SystemExit('nats_direct failed:\n' + r.stderr)
            nd = json.loads(r.stdout.strip().splitlines()[-1])
            out['sizes'][size] = {'bridge_rtt': rtt, 'local_rtt': local,
                                  'bridge_items_per_s': tput['items_per_s'], 'nats_direct': nd}
        print('xichan-bridge vs nats.c, %d-node cluster on 127.0.0.1, %d replica(s), %s storage'
              % (3, a.replicas, out['storage']))
        print('%-6s | %-22s | %-22s | %-9s | %-13s | %-12s | %-12s | %s' % (
            'size', 'bridged RTT p50/p99 ms', 'nats.c RTT p50/p99 ms', 'p50 ratio',
            'local p50 ms', 'bridged it/s', 'nats.c it/s', 'ratio'))
        for size, f in out['sizes'].items():
            nd = f['nats_direct']
            f['rtt_p50_ratio'] = f['bridge_rtt']['p50_ms'] / nd['rtt_p50_ms']
            f['items_per_s_ratio'] = f['bridge_items_per_s'] / nd['items_per_s']
            print('%-6d | %8.2f / %-11.2f | %8.2f / %-11.2f | %8.2fx | %13.3f | %12.0f | %12.0f | '
                  '%4.0f%%' % (
                      size, f['bridge_rtt']['p50_ms'], f['bridge_rtt']['p99_ms'], nd['rtt_p50_ms'],
                      nd['rtt_p99_ms'], f['rtt_p50_ratio'], f['local_rtt']['p50_ms'],
                      f['bridge_items_per_s'], nd['items_per_s'], 100.0 * f['items_per_s_ratio']))
        if a.json:
            with open(a.json, 'w') as fh:
                json.dump(out, fh, indent=1)
    finally:
        w.stop_all()


if __name__ == '__main__':
    main()
