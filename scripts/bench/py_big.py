#!/usr/bin/env python3
"""py_big.py -- big items through xichan queues: copies, page faults, time.

    py_big.py [--size BYTES] [--rounds N] [--items N] [--reps R] [--kinds K,...] [--json]

Kinds (what is put): syncobj-bytes, syncobj-memoryview (put with
syncobj=True; the memoryview is received as a view of the item itself, no
copy out), pickled-bytes, pickled-bytearray, pickled-memoryview,
pickled-numpy (a uint8 array; skipped when numpy is missing).  Every measurement runs between two processes (the
parent and one child started with multiprocessing's spawn context), unpinned.

Parts, each a median over --reps repetitions:
  memcpy      ctypes.memmove of SIZE bytes into a buffer already touched
              ("warm") and bytes(bytearray) of SIZE ("fresh": malloc, page
              faults and the copy), in MB/s.
  oneway      the child puts --items items of SIZE bytes, the parent gets
              them (the queue bounded to 4): items/s and MB/s, its ratio
              to memcpy warm, and the minor page faults per item of the
              putting child and of the getting parent.
  roundtrip   the parent puts, the child gets and puts it back on a second
              queue, the parent gets: ms per round trip (--rounds of them).
  split       in one process: put then get of one item, each timed alone, and
              the minor page faults (getrusage ru_minflt) each took, per item.

With --json one JSON object is printed on stdout instead of the table:
  {"size": int, "python": str, "numpy": str|null,
   "memcpy": {"warm_MBps": float, "fresh_MBps": float},
   "oneway": [{"kind", "items_per_s", "MBps", "of_memcpy", "put_minflt", "get_minflt"}],
   "roundtrip": [{"kind", "ms"}],
   "split": [{"kind", "put_ms", "get_ms", "put_minflt", "get_minflt"}],
   "skipped": [str]}
The daemon is the one named by XICHAN_NAME if that is set (scripts/bench/run
sets it), else one this script starts (build/bin/xichand --size 512M in a
temporary runtime directory) and stops.
"""
import argparse
import ctypes
import json
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYEXT = os.path.join(ROOT, 'pyext')
if PYEXT not in sys.path:
    sys.path.insert(0, PYEXT)

KINDS = ['syncobj-bytes', 'syncobj-memoryview', 'pickled-bytes', 'pickled-bytearray',
         'pickled-memoryview', 'pickled-numpy']
FOREVER = 60.0  # a get that waits longer means the child failed


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def have_numpy():
    try:
        import numpy
        return numpy.__version__
    except ImportError:
        return None


def value_of(kind, size):
    if kind.endswith('-bytes'):
        return bytes(size)
    if kind == 'pickled-bytearray':
        return bytearray(size)
    if kind.endswith('-memoryview'):
        return memoryview(bytearray(size))
    import numpy
    return numpy.zeros(size, dtype=numpy.uint8)


def put_fn(q, kind):
    syncobj = kind.startswith('syncobj')
    return lambda v: q.put(v, syncobj=syncobj)


def start_daemon():
    rt = tempfile.mkdtemp(prefix='xichan-pybig-')
    name = f'pybig{os.getpid()}'
    exe = os.path.join(os.environ.get('BUILD', os.path.join(ROOT, 'build')), 'bin', 'xichand')
    proc = subprocess.Popen([exe, '--size', '512M', '--name', name, '--runtime-dir', rt,
                             '--foreground'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update(XICHAN_NAME=name, XICHAN_RUNTIME_DIR=rt, XICHAN_DAEMON=exe,
                      XICHAN_AUTOSTART='0')
    sock_deadline = time.monotonic() + 15
    import xichan.queues
    while True:
        try:
            xichan.queues.list_all()
            break
        except Exception:
            if time.monotonic() > sock_deadline or proc.poll() is not None:
                raise RuntimeError('xichand did not start')
            time.sleep(0.05)
    return proc, rt, exe, name


def stop_daemon(proc, rt, exe, name):
    # --force: this process's own session is still attached; the namespace
    # is ours alone, and its segment must not stay in /dev/shm.
    p = subprocess.run([os.path.join(os.path.dirname(exe), 'xichanctl'), '--name', name,
                        '--runtime-dir', rt, 'stop', '--discard', '--force'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        log(f'py_big: could not discard namespace {name}: {p.stderr.strip()}')
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(rt, ignore_errors=True)


# ----------------------------------------------------------- children

def minflt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def child_producer(qid, kind, size, n):
    import xichan.queues
    q = xichan.queues.Queue(qid)
    put = put_fn(q, kind)
    v = value_of(kind, size)
    put(v)
    f0 = minflt()
    for _ in range(n - 1):
        put(v)
    q.put(minflt() - f0, syncobj=True)   # its page faults while it put them


def child_echo(qin, qout, kind, n):
    import xichan.queues
    a, b = xichan.queues.Queue(qin), xichan.queues.Queue(qout)
    put = put_fn(b, kind)
    for _ in range(n):
        put(a.get(FOREVER))


# ----------------------------------------------------------- parts

def memcpy_bw(size, reps):
    src = bytearray(b'\x01') * size
    dst = bytearray(size)
    dst[:] = src
    sa = (ctypes.c_char * size).from_buffer(src)
    da = (ctypes.c_char * size).from_buffer(dst)
    warm, fresh = [], []
    for _ in range(max(reps, 5) + 1):
        t0 = time.perf_counter_ns()
        ctypes.memmove(da, sa, size)
        warm.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        b = bytes(src)
        fresh.append(time.perf_counter_ns() - t0)
        del b
    del sa, da
    return (size / (statistics.median(warm[1:]) / 1e9) / 1e6,
            size / (statistics.median(fresh[1:]) / 1e9) / 1e6)


def oneway(ctx, kind, size, items):
    import xichan.queues
    q = xichan.queues.create(4)
    p = ctx.Process(target=child_producer, args=(q.id, kind, size, items + 1))
    p.start()
    q.get(FOREVER)  # the child is up and warm
    f0 = minflt()
    t0 = time.perf_counter_ns()
    for _ in range(items):
        q.get(FOREVER)
    dt = time.perf_counter_ns() - t0
    f1 = minflt()
    pf = q.get(FOREVER)
    p.join(60)
    return items / (dt / 1e9), pf / items, (f1 - f0) / items


def roundtrip(ctx, kind, size, rounds):
    import xichan.queues
    a, b = xichan.queues.create(2), xichan.queues.create(2)
    p = ctx.Process(target=child_echo, args=(a.id, b.id, kind, rounds + 2))
    p.start()
    put = put_fn(a, kind)
    v = value_of(kind, size)
    times = []
    for _ in range(rounds + 2):
        t0 = time.perf_counter_ns()
        put(v)
        b.get(FOREVER)
        times.append(time.perf_counter_ns() - t0)
    p.join(60)
    return statistics.median(times[2:]) / 1e6


def split(kind, size, rounds):
    import xichan.queues
    q = xichan.queues.create()
    put = put_fn(q, kind)
    v = value_of(kind, size)
    pt, gt, pf, gf = [], [], [], []
    for _ in range(rounds + 2):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter_ns()
        put(v)
        t1 = time.perf_counter_ns()
        f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        r = q.get(FOREVER)
        t2 = time.perf_counter_ns()
        f2 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        del r
        pt.append(t1 - t0)
        gt.append(t2 - t1)
        pf.append(f1 - f0)
        gf.append(f2 - f1)
    med = statistics.median
    return med(pt[2:]) / 1e6, med(gt[2:]) / 1e6, med(pf[2:]), med(gf[2:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--size', type=int, default=16 << 20)
    ap.add_argument('--rounds', type=int, default=20)
    ap.add_argument('--items', type=int, default=50)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--kinds', default=','.join(KINDS))
    ap.add_argument('--json', action='store_true')
    args = ap.parse_args()
    npv = have_numpy()
    kinds, skipped = [], []
    for k in args.kinds.split(','):
        if k not in KINDS:
            ap.error(f'unknown kind {k!r} (kinds: {", ".join(KINDS)})')
        if k == 'pickled-numpy' and not npv:
            skipped.append(f'{k}: numpy is not installed for {sys.executable}')
        else:
            kinds.append(k)
    daemon = None if os.environ.get('XICHAN_NAME') else start_daemon()
    ctx = mp.get_context('spawn')
    size, med = args.size, statistics.median
    out = {'size': size, 'python': sys.version.split()[0], 'numpy': npv,
           'oneway': [], 'roundtrip': [], 'split': [], 'skipped': skipped}
    try:
        warm, fresh = zip(*(memcpy_bw(size, 5) for _ in range(args.reps)))
        out['memcpy'] = {'warm_MBps': med(warm), 'fresh_MBps': med(fresh)}
        for k in kinds:
            log(f'  {k}')
            ow = [oneway(ctx, k, size, args.items) for _ in range(args.reps)]
            ips = med(x[0] for x in ow)
            out['oneway'].append({'kind': k, 'items_per_s': ips, 'MBps': ips * size / 1e6,
                                  'of_memcpy': ips * size / 1e6 / out['memcpy']['warm_MBps'],
                                  'put_minflt': med(x[1] for x in ow),
                                  'get_minflt': med(x[2] for x in ow)})
            ms = med([roundtrip(ctx, k, size, args.rounds) for _ in range(args.reps)])
            out['roundtrip'].append({'kind': k, 'ms': ms})
            s = [split(k, size, args.rounds) for _ in range(args.reps)]
            out['split'].append({'kind': k, 'put_ms': med(x[0] for x in s),
                                 'get_ms': med(x[1] for x in s),
                                 'put_minflt': med(x[2] for x in s),
                                 'get_minflt': med(x[3] for x in s)})
    finally:
        if daemon:
            stop_daemon(*daemon)
    if args.json:
        print(json.dumps(out, indent=1))
        return
    m = out['memcpy']
    print(f'size {size} B, Python {out["python"]}, numpy {npv}')
    print(f'memcpy warm {m["warm_MBps"]:.0f} MB/s, bytes() fresh {m["fresh_MBps"]:.0f} MB/s')
    print('one-way: two processes; flt = minor page faults per item (putter, getter); '
          'split: put and get in one process')
    print(f'{"kind":20} {"one-way/s":>10} {"MB/s":>8} {"of memcpy":>9} {"put flt":>7} '
          f'{"get flt":>7} {"rtt ms":>8} | {"put ms":>7} {"get ms":>7} {"put flt":>7} '
          f'{"get flt":>7}')
    for o, r, s in zip(out['oneway'], out['roundtrip'], out['split']):
        print(f'{o["kind"]:20} {o["items_per_s"]:10.1f} {o["MBps"]:8.0f} {o["of_memcpy"]:9.2f} '
              f'{o["put_minflt"]:7.0f} {o["get_minflt"]:7.0f} {r["ms"]:8.2f} | '
              f'{s["put_ms"]:7.2f} {s["get_ms"]:7.2f} {s["put_minflt"]:7.0f} '
              f'{s["get_minflt"]:7.0f}')
    for s in skipped:
        print(f'skipped: {s}')


if __name__ == '__main__':
    main()
