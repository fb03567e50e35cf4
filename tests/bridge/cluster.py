#!/usr/bin/env python3
"""tests/bridge/cluster.py -- xichan-bridge across three "machines" on one host.

Three namespaces, each with its own xichand and xichan-bridge, and three
nats-server nodes of one JetStream cluster, all on 127.0.0.1 ports picked
free, with scratch store dirs.  Every process is started by this script and
stopped by its pid (SIGTERM, then SIGKILL after a bound); every loop and
wait is bounded.  Cases:

  pool       jobs put on machine 1 are taken by workers on machines 2 and 3,
             every result comes back to machine 1 exactly once, each worker
             sees its jobs in put order, both machines worked;
  crashes    the same pool while machine 2's bridge is SIGKILLed and
             restarted and a NATS node is SIGKILLed and restarted: no job
             lost, duplicates counted (bounded by what was in flight);
  maxsize    a queue of maxsize 4 refuses puts past the bound the bridge
             documents (stream 4 + a window of 4 + local 4) and delivers all of
             them, in order, on another machine;
  refused    an item over the server's max payload is set aside in
             <queue>.refused on its machine with an error in the status file;
  headers    a published message carries the item's id in Xichan-Id and no
             Nats-Msg-Id (JetStream's de-duplication is not used);
  held       with every NATS node down, a bridge holding 5 leased items is
             killed: the daemon puts them back, and once NATS is back they
             are delivered on another machine, once and in order;
  ctl        xichanctl list marks spanned queues, show and stats give the
             bridge's state and its counts;
  stop       SIGTERM stops each bridge with exit 0 and state "stopped".

The closing line is "bridge: N passed, M failed".  Run by make check
(mk/bridge.mk) with BUILD, PYTHONPATH=pyext.
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get('BUILD', 'build'))
XICHAND = os.path.join(BUILD, 'bin', 'xichand')
BRIDGE = os.path.join(BUILD, 'bin', 'xichan-bridge')
# XICHAN_NATS_SERVER picks another nats-server than the one on PATH (Debian's).
NATS = (os.environ.get('XICHAN_NATS_SERVER') or shutil.which('nats-server') or
        '/usr/sbin/nats-server')
PY = sys.executable
SPANS = ['jobs', 'results', 'bounded']

WORKER = r'''
import sys, xichan.queues as Q
jobs, results, me = Q.open('jobs'), Q.open('results'), sys.argv[1]
while True:
    j = jobs.get(timeout=60)
    if j is None:
        break
    results.put((j, me))
'''

PRODUCER = r'''
import json, sys, time, xichan.queues as Q
n, nworkers = int(sys.argv[1]), int(sys.argv[2])
jobs, results = Q.open('jobs'), Q.open('results')
for i in range(n):
    jobs.put(i)
got, seen = [], set()
deadline = time.monotonic() + 100
while len(seen) < n and time.monotonic() < deadline:
    try:
        r = results.get(timeout=1)
    except Q.QueueEmpty:
        continue
    got.append(r)
    seen.add(r[0])
    print('progress', len(seen), flush=True)
# Duplicates still in flight (a redelivery after the ack wait) come late.
end = time.monotonic() + 3
while time.monotonic() < end:
    try:
        got.append(results.get(timeout=0.5))
    except Q.QueueEmpty:
        pass
for _ in range(nworkers):
    jobs.put(None)
print('result', json.dumps(got), flush=True)
time.sleep(60)  # alive while the stop markers cross; the test ends it
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class World:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='xichan-bridge-')
        self.rt = os.path.join(self.dir, 'rt')
        os.mkdir(self.rt, 0o700)
        self.tag = 'br%d' % os.getpid()
        self.machines = ['%sm%d' % (self.tag, i) for i in (1, 2, 3)]
        self.cports = [free_port() for _ in range(3)]
        self.rports = [free_port() for _ in range(3)]
        self.urls = ['nats://127.0.0.1:%d' % p for p in self.cports]
        self.procs = {}   # key -> Popen
        self.logs = {}

    def spawn(self, key, args, env=None, stdout=None):
        log = open(os.path.join(self.dir, key + '.log'), 'ab')
        self.logs[key] = log.name
        p = subprocess.Popen(args, stdout=stdout or log, stderr=log, env=env,
                             stdin=subprocess.DEVNULL, cwd=ROOT)
        self.procs[key] = p
        return p

    def env(self, m):
        e = dict(os.environ)
        e.update(XICHAN_NAME=m, XICHAN_RUNTIME_DIR=self.rt, XICHAN_AUTOSTART='0',
                 PYTHONPATH=os.path.join(ROOT, 'pyext'))
        return e

    # -- NATS nodes
    def start_node(self, i):
        routes = ','.join('nats://127.0.0.1:%d' % p for j, p in enumerate(self.rports) if j != i)
        sd = os.path.join(self.dir, 'js%d' % i)
        self.spawn('nats%d' % i, [NATS, '-a', '127.0.0.1', '-p', str(self.cports[i]),
                                  '-n', 'n%d' % i, '-js', '-sd', sd,
                                  '--cluster_name', self.tag,
                                  '--cluster', 'nats://127.0.0.1:%d' % self.rports[i],
                                  '--routes', routes])
        wait_for(lambda: port_open(self.cports[i]), 10, 'nats node %d listening' % i)

    # -- xichand and bridges
    def start_daemon(self, k, size='64M'):
        m = self.machines[k]
        self.spawn('xichand%d' % k, [XICHAND, '--name', m, '--runtime-dir', self.rt,
                                     '--size', size, '--foreground'])
        wait_for(lambda: os.path.exists(os.path.join(self.rt, m + '.sock')), 10,
                 'xichand %s socket' % m)

    def status(self, k):
        """The bridge's status file (bridge/status.c) as a dict."""
        try:
            with open(os.path.join(self.rt, self.machines[k] + '.bridge')) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        if not lines or lines[0] != 'xichan-bridge-status 1':
            return None
        st, keys = {'queues': []}, ('maxsize', 'out', 'in', 'dups_out', 'dups_in', 'refused',
                                   'unbound', 'full_waits', 'held', 'pending_acks')
        for line in lines[1:]:
            key, _, rest = line.partition(' ')
            if key == 'queue':
                f = rest.split(' ', len(keys) + 1)
                q = dict(zip(keys, map(int, f[:len(keys)])))
                q['stream'], q['name'] = f[len(keys)], f[len(keys) + 1]
                st['queues'].append(q)
            else:
                st[key] = rest
        return st

    def start(self, size='64M', bridge_extra=None, before_bridges=None):
        """The three machines: NATS nodes, then daemons of segments of size,
        then before_bridges(self) if given (objects the bridges must find),
        then bridges with bridge_extra."""
        for i in range(3):
            self.start_node(i)
        for k in range(3):
            self.start_daemon(k, size)
        if before_bridges:
            before_bridges(self)
        for k in range(3):
            self.start_bridge(k, bridge_extra)

    def start_bridge(self, k, extra=None):
        self.bridge_extra = extra if extra is not None else getattr(self, 'bridge_extra', [])
        m = self.machines[k]
        path = os.path.join(self.rt, m + '.bridge')
        if os.path.exists(path):
            os.unlink(path)
        args = [BRIDGE, '--name', m, '--runtime-dir', self.rt, '--machine', 'm%d' % (k + 1),
                '--replicas', '3', '--ack-wait', '2', '--publish-wait', '2'] + self.bridge_extra
        for u in self.urls:
            args += ['--server', u]
        for s in SPANS:
            args += ['--span', s]
        self.spawn('bridge%d' % k, args, env=self.env(m))
        wait_for(lambda: (self.status(k) or {}).get('state') == 'running', 60,
                 'bridge %s running' % m)

    def python(self, k, key, code, *args, stdout=None):
        return self.spawn(key, [PY, '-c', code] + [str(a) for a in args],
                          env=self.env(self.machines[k]), stdout=stdout)

    def run_python(self, k, code, timeout=60):
        r = subprocess.run([PY, '-c', code], env=self.env(self.machines[k]), cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode:
            raise AssertionError('python on %s failed:\n%s' % (self.machines[k], r.stderr))
        return r.stdout

    def kill(self, key, sig=signal.SIGKILL):
        p = self.procs.get(key)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def stop_all(self):
        # Workers and bridges first, then the daemons, then NATS.
        order = sorted(self.procs, key=lambda k: (k.startswith('nats'), k.startswith('xichand')))
        for key in order:
            self.kill(key, signal.SIGTERM)
        for m in self.machines:
            try:
                os.unlink('/dev/shm/xichan-%d-%s' % (os.getuid(), m))
            except OSError:
                pass
        if os.environ.get('XICHAN_BRIDGE_KEEP'):
            print('bridge: logs kept in %s' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, key, n=30):
        try:
            with open(self.logs[key], errors='replace') as f:
                return ''.join(f.readlines()[-n:])
        except (OSError, KeyError):
            return ''


def js_api(url, subject, payload=b'', seconds=2.0):
    """One request to the JetStream API over the NATS protocol (a plain
    socket: no client library needed): the reply decoded, or None when no
    reply came within seconds (no leader, node down)."""
    host, port = url.rsplit('/', 1)[-1].split(':')
    inbox = '_INBOX.xichan%d' % os.getpid()
    end = time.monotonic() + seconds
    try:
        with socket.create_connection((host, int(port)), timeout=seconds) as so:
            f = so.makefile('rb')
            f.readline()  # INFO
            so.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
                       b'SUB %s 1\r\nPUB %s %s %d\r\n%s\r\n' %
                       (inbox.encode(), subject.encode(), inbox.encode(), len(payload), payload))
            while time.monotonic() < end:
                so.settimeout(max(0.05, end - time.monotonic()))
                line = f.readline()
                if not line:
                    return None
                if line.startswith(b'PING'):
                    so.sendall(b'PONG\r\n')
                elif line.startswith(b'MSG '):
                    n = int(line.split()[-1])
                    return json.loads(f.read(n + 2)[:n])
                elif line.startswith(b'HMSG '):  # a status (503: no responders)
                    f.read(int(line.split()[-1]) + 2)
                    return None
    except (OSError, ValueError):
        return None
    return None


def port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(pred, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError('timed out after %s s waiting for %s' % (seconds, what))


def run_pool(w, n, workers_per_machine, on_progress=None):
    """Jobs on machine 1, workers on 2 and 3; returns the results list."""
    workers = []
    for k in (1, 2):
        for i in range(workers_per_machine):
            key = 'worker%d_%d' % (k, i)
            w.python(k, key, WORKER, 'm%d/%d' % (k + 1, i))
            workers.append(key)
    prod = w.python(0, 'producer', PRODUCER, n, len(workers), stdout=subprocess.PIPE)
    got, buf, end = None, b'', time.monotonic() + 150
    while got is None and time.monotonic() < end:
        r, _, _ = select.select([prod.stdout], [], [], 1.0)
        if not r:
            if prod.poll() is not None:
                break
            continue
        chunk = os.read(prod.stdout.fileno(), 1 << 20)
        if not chunk:
            break
        buf += chunk
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            word, _, rest = line.decode().partition(' ')
            if word == 'progress' and on_progress:
                on_progress(int(rest))
            elif word == 'result':
                got = json.loads(rest)
    if got is None:
        raise AssertionError('producer gave no result:\n' + w.tail('producer'))
    for key in workers:
        w.procs[key].wait(30)
    w.kill('producer')
    return got


def check_pool(got, n, allow_dups):
    jobs = [j for j, _ in got]
    missing = sorted(set(range(n)) - set(jobs))
    assert not missing, 'lost %d jobs: %s' % (len(missing), missing[:20])
    dups = len(jobs) - len(set(jobs))
    assert dups <= allow_dups, '%d duplicate results (allowed %d)' % (dups, allow_dups)
    per_worker = {}
    for j, who in got:
        per_worker.setdefault(who, []).append(j)
    if not allow_dups:
        for who, seq in per_worker.items():
            assert seq == sorted(seq), 'worker %s saw jobs out of order: %s' % (who, seq[:20])
    machines = {who.split('/')[0] for who in per_worker}
    assert machines == {'m2', 'm3'}, 'jobs were taken only on %s' % sorted(machines)
    return dups


def case_pool(w):
    got = run_pool(w, 200, 2)
    check_pool(got, 200, 0)
    return '200 jobs, 4 workers on 2 machines, each result once, in order per worker'


def case_crashes(w):
    done = {'bridge': False, 'nats': False}

    def on_progress(k):
        if k >= 60 and not done['bridge']:
            done['bridge'] = True
            w.kill('bridge1')           # machine 2's bridge, kill -9
            w.start_bridge(1)
        if k >= 150 and not done['nats']:
            done['nats'] = True
            w.kill('nats2')             # a NATS node, kill -9
            w.start_node(2)
    got = run_pool(w, 300, 2, on_progress)
    assert done['bridge'] and done['nats'], 'the kills did not happen: %s' % done
    # In flight at a kill: at most what one bridge had fetched (one per
    # waiting getter: 2) plus what it held (1 per queue), per kill.
    dups = check_pool(got, 300, 10)
    return '300 jobs with a bridge and a NATS node killed: 0 lost, %d duplicates' % dups


def read_line(p, seconds):
    """One line of p's stdout within seconds (bounded), or ''."""
    buf, end = b'', time.monotonic() + seconds
    while time.monotonic() < end and not buf.endswith(b'\n'):
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            c = os.read(p.stdout.fileno(), 1)
            if not c:
                break
            buf += c
    return buf.decode().strip()


def case_maxsize(w):
    # The producer stays alive while its items cross (what a process puts
    # outlives it too, but that is the lifetime rules' test, not this one).
    prod = w.python(0, 'bounded_put', r'''
import sys, time, xichan.queues as Q
q = Q.open('bounded')
n = 0
for i in range(100):
    try:
        q.put(i, timeout=1.0)
    except Q.QueueFull:
        break
    n += 1
print(n, flush=True)
time.sleep(60)
''', stdout=subprocess.PIPE)
    line = read_line(prod, 60)
    assert line.isdigit(), 'producer said %r:\n%s' % (line, w.tail('bounded_put'))
    n = int(line)
    assert 4 < n <= 12, '%d puts fit a cluster-wide maxsize of 4 (bound: 4 + 4 + 4)' % n
    got = w.run_python(1, r'''
import xichan.queues as Q
q = Q.open('bounded')
print([q.get(timeout=20) for _ in range(%d)])
''' % n)
    w.kill('bounded_put')
    assert got.strip() == str(list(range(n))), 'got %s' % got.strip()

    def bounded():
        st = w.status(0)
        return st and [x for x in st['queues'] if x['name'] == 'bounded'][0]

    # The status file is rewritten every second: wait for the one written
    # after the last publish (a NATS node the crashes case restarted can
    # delay the publishes by seconds: "no responders").
    wait_for(lambda: (bounded() or {}).get('out', 0) >= n, 10, 'the status after the publishes')
    q = bounded()
    # More than window + local puts fit only if the stream took some: it
    # then filled (no consumer yet) and the bridge waited for room.  With
    # fewer, NATS was not answering while the producer put (the restarted
    # node above) and the stream never filled.
    assert q['maxsize'] == 4 and (q['full_waits'] > 0 or n <= 8), (n, q)
    return '%d puts fit (stream 4 + window 4 + local 4), all delivered in order' % n


def case_refused(w):
    w.run_python(0, r'''
import xichan.queues as Q
Q.open('jobs').put(b'x' * (1 << 20 + 1))
''')
    out = w.run_python(0, r'''
import xichan.queues as Q, time
end = time.monotonic() + 20
while True:
    try:
        print(len(Q.open('jobs.refused').get(timeout=1)))
        break
    except (Q.QueueNotFoundError, Q.QueueEmpty):
        if time.monotonic() > end:
            raise
''')
    assert int(out.split()[-1]) == (1 << 20) * 2, out
    wait_for(lambda: 'jobs.refused' in w.status(0)['last_error'], 5, 'the error in the status')
    err = w.status(0)['last_error']
    assert 'max payload' in err, err
    return 'a 2 MiB item set aside in jobs.refused: %s' % err[:60]


def case_headers(w):
    """What a bridge publishes: the item's id in Xichan-Id, and no
    Nats-Msg-Id, whose de-duplication nats-server 2.9.10 loses messages with
    when nodes restart (xichan-bridge(8) NOTES)."""
    import base64
    w.run_python(0, "import xichan.queues as Q; Q.open('jobs').put(('hdr', 1))")
    msg = {}

    def stored():
        r = js_api(w.urls[0], '$JS.API.STREAM.MSG.GET.XQ_jobs',
                   json.dumps({'last_by_subj': 'xichan.q.jobs'}).encode())
        if r and 'message' in r:
            msg.update(r['message'])
        return bool(msg)
    wait_for(stored, 30, 'the item in stream XQ_jobs')
    hdrs = base64.b64decode(msg.get('hdrs', '')).decode(errors='replace')
    got = w.run_python(1, "import xichan.queues as Q; print(Q.open('jobs').get(timeout=30))")
    assert got.strip() == "('hdr', 1)", got
    assert 'Xichan-Id: m1:' in hdrs, hdrs
    assert 'Nats-Msg-Id' not in hdrs, hdrs
    return 'a published item carries Xichan-Id and no Nats-Msg-Id'


def case_ctl(w):
    ctl = os.path.join(BUILD, 'bin', 'xichanctl')
    base = [ctl, '--name', w.machines[0], '--runtime-dir', w.rt]
    out = subprocess.run(base + ['list'], capture_output=True, text=True, timeout=30).stdout
    rows = [x for x in out.splitlines() if ' jobs ' in x]
    assert rows and rows[0].endswith('[spanned]'), out
    assert 'bridge:    pid %d, connected to nats://127.0.0.1:' % w.procs['bridge0'].pid in out, out
    assert "spans 'jobs' (stream XQ_jobs): out " in out, out
    js = json.loads(subprocess.run(base + ['--json', 'show', 'jobs'], capture_output=True,
                                   text=True, timeout=30).stdout)
    assert js['objects'][0]['spanned']['stream'] == 'XQ_jobs', js
    js = json.loads(subprocess.run(base + ['--json', 'stats'], capture_output=True, text=True,
                                   timeout=30).stdout)
    assert js['bridge']['running'] and js['bridge']['connected'], js
    q = {x['name']: x for x in js['bridge']['queues']}
    assert q['jobs']['out'] >= 500 and q['results']['in'] >= 500, q
    return 'list marks spanned queues; show and stats give the bridge state and counts'


def local_count(w, k, name):
    ctl = os.path.join(BUILD, 'bin', 'xichanctl')
    r = subprocess.run([ctl, '--name', w.machines[k], '--runtime-dir', w.rt, '--json', 'show',
                        name], capture_output=True, text=True, timeout=30)
    return json.loads(r.stdout)['objects'][0]['count']


def case_held(w):
    """A bridge killed while it holds items JetStream has not acknowledged."""
    for i in range(3):
        w.kill('nats%d' % i)            # no node answers: publishes cannot finish
    prod = w.python(0, 'held_put', r'''
import time, xichan.queues as Q
q = Q.open('jobs')
for i in range(5):
    q.put(('held', i))
print('put', flush=True)
time.sleep(60)
''', stdout=subprocess.PIPE)
    assert read_line(prod, 30) == 'put', w.tail('held_put')
    def held():
        st = w.status(0) or {}
        return sum(q['held'] for q in st.get('queues', []) if q['name'] == 'jobs')
    # The bridge leases what it can publish at once and retries: some items
    # are held, the rest wait in the local queue behind them.
    wait_for(lambda: held() >= 1 and held() + local_count(w, 0, 'jobs') == 5, 20,
             'the bridge to hold items')
    h = held()
    w.kill('bridge0')                   # kill -9 between lease and JetStream's ack
    wait_for(lambda: local_count(w, 0, 'jobs') == 5, 20, 'the daemon to put the 5 items back')
    for i in range(3):
        w.start_node(i)
    w.start_bridge(0)
    # A stop marker (None) of an earlier case may still come: the crashes
    # case's kills can deliver one twice, after its worker had exited.
    got = w.run_python(1, r'''
import xichan.queues as Q
q = Q.open('jobs')
got = []
while len(got) < 5:
    v = q.get(timeout=60)
    if v is not None:
        got.append(v)
print(got)
try:
    while True:
        v = q.get(timeout=3)
        if v is not None:
            print('extra', v)
except Q.QueueEmpty:
    pass
''', timeout=120)
    w.kill('held_put')
    assert got.strip() == str([('held', i) for i in range(5)]), got
    return ('NATS down, %d of 5 items held, bridge killed: all 5 back in the queue, then '
            'delivered once, in order' % h)


def case_stop(w):
    for k in range(3):
        p = w.procs['bridge%d' % k]
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
        assert rc == 0, 'bridge %d exit %d' % (k, rc)
        assert w.status(k)['state'] == 'stopped'
    return 'SIGTERM: exit 0, state stopped'


def main():
    for exe in (XICHAND, BRIDGE, NATS):
        if not os.access(exe, os.X_OK):
            print('bridge: missing %s (make; scripts/install-deps)' % exe)
            print('bridge: 0 passed, 1 failed')
            return 1
    w = World()
    passed = failed = 0
    try:
        t0 = time.monotonic()
        # The bounded queue exists before its bridges: the stream copies its maxsize.
        w.start(before_bridges=lambda w: w.run_python(
            0, "import xichan.queues as Q; Q.create(4, name='bounded')"))
        print('bridge: cluster of 3 up in %.1f s' % (time.monotonic() - t0))
        for case in (case_pool, case_crashes, case_maxsize, case_refused, case_headers, case_ctl,
                     case_held, case_stop):
            t = time.monotonic()
            try:
                what = case(w)
                passed += 1
                print('  ok   %-8s %s (%.1f s)' % (case.__name__[5:], what, time.monotonic() - t))
            except Exception:
                failed += 1
                print('  FAIL %s' % case.__name__[5:])
                traceback.print_exc()
                for key in ('bridge0', 'bridge1', 'bridge2', 'producer'):
                    print('---- %s' % key)
                    print(w.tail(key))
            sys.stdout.flush()
    except Exception:
        failed += 1
        traceback.print_exc()
        for key in sorted(w.logs):
            print('---- %s' % key)
            print(w.tail(key, 10))
    finally:
        w.stop_all()
    print('bridge: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
