#!/usr/bin/env python3
"""py_numpy.py -- numpy arrays across processes: the numpy part of
scripts/bench/run.

    py_numpy.py [--sizes 1048576,16777216,268435456] [--rounds N|SIZE:N,...]
                [--reps R] [--only MODE,...]

A round trip sends a float64 array of SIZE bytes from the parent to an echo
process, which sends the array it got back; the parent times, with
perf_counter_ns, everything from its send until it holds a numpy array again
(and checks its shape and first and last elements).  The two processes are
pinned across the first two CPUs we may use (unpinned with one CPU).  Each
repetition gives p50/p99/p99.9/max (us); the JSON on stdout lists every
repetition's summary (scripts/bench/run aggregates).  Exit status 1 if a
mode failed (listed under "errors"); a mode that cannot run here (numpy or
shared_memory missing) is listed under "skipped".

Modes:
  xichan-pickle     xichan.queues, syncobj=False: put(array), get() -> array
                    (numpy's own pickling; whatever the library does with
                    pickle protocol 5 buffers applies)
  xichan-buffer     xichan.queues, syncobj=True: put(memoryview(array)) copies
                    the buffer into the item, get() -> memoryview, wrapped
                    with numpy.frombuffer (no copy); the echo sends back a
                    copy of what it got (see echo())
  xichan-shared     the array lives in a xichan.SharedBuffer (filled once);
                    put(memoryview(buffer)) and numpy.frombuffer on the
                    receiving side: nothing is copied
  mp-queue          multiprocessing.Queue: put(array), get() -> array (pickled
                    through a pipe)
  mp-shared-memory  multiprocessing.shared_memory + a multiprocessing.Queue
                    for the name: the sender creates a SharedMemory of the
                    array's size, copies the array in and puts (name, shape,
                    dtype); the receiver attaches and views it as an array;
                    the echo sends the name back; the parent attaches, views,
                    then closes and unlinks the segment -- the usual recipe,
                    one copy per round trip plus a fresh segment's page faults

Needs a daemon for the xichan modes (XICHAN_NAME, ... as scripts/bench/run
sets them).
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PYEXT = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'pyext')
if PYEXT not in sys.path:
    sys.path.insert(0, PYEXT)

MODES = ['xichan-pickle', 'xichan-buffer', 'xichan-shared', 'mp-queue', 'mp-shared-memory']
ALL_CPUS = frozenset(os.sched_getaffinity(0))
# The helpers py_bench.py has (this directory is sys.path[0]).
from py_bench import Skip, log, pin, rounds_for, summary  # noqa: E402
MiB = 1 << 20
HANG_S = 120            # a xichan put/get that waits longer fails (segment full, ...)


def plan():
    cpus = sorted(ALL_CPUS)
    if len(cpus) < 2:
        return 'none', set(cpus), set(cpus)
    return 'across', {cpus[0]}, {cpus[1]}


def shm_attach(name):
    """Attach to a SharedMemory without handing it to the resource tracker
    (the creator unlinks it); track= is 3.13's."""
    from multiprocessing import shared_memory
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        from multiprocessing import resource_tracker
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, 'shared_memory')
        return shm


def heap_used():
    """Segment heap bytes in use (what earlier parts left is not room for
    these arrays)."""
    from xichan import _xichan
    return _xichan.stats()['heap_used']


# ----------------------------------------------------------------- echo

def echo(mode, args, cpus):
    import numpy as np
    pin(cpus)
    src, dst = args
    while True:
        v = src.get()
        if v is None:
            return
        if mode == 'xichan-pickle':
            dst.put(v, timeout=HANG_S)              # an array
        elif mode == 'mp-queue':
            dst.put(v)
        elif mode == 'xichan-buffer':
            # A copy of what arrived goes back.  Putting the received
            # memoryview itself keeps the item it views in the segment until
            # the item put leaves and this process makes its next call (the
            # export of a local memoryview, xichan_queue_put_check(3)): with
            # 256 MiB arrays, three of them in a 1 GiB segment.
            a = np.array(np.frombuffer(v, dtype=np.float64))
            del v
            dst.put(memoryview(a), timeout=HANG_S)
            del a
        elif mode == 'xichan-shared':
            a = np.frombuffer(v, dtype=np.float64)  # a view of the shared buffer
            dst.put(memoryview(a), timeout=HANG_S)
            del a, v
        elif mode == 'mp-shared-memory':
            name, shape, dtype = v
            shm = shm_attach(name)
            a = np.ndarray(shape, dtype=dtype, buffer=shm.buf)
            ok = a.shape == shape                   # the receiver has its view
            del a
            shm.close()
            dst.put(name if ok else None)


# ---------------------------------------------------------------- timing

class Ends:
    """One mode's parent side: send(array), receive() -> array, release()
    after each round, cleanup() at the end, the echo's args, and for
    xichan-shared the array in the SharedBuffer that is sent."""

    def __init__(self, send, receive, args, cleanup, release=None, shared=None):
        self.send, self.receive, self.args, self.cleanup = send, receive, args, cleanup
        self.release = release or (lambda: None)
        self.shared = shared


def make(mode, ctx, size):
    import numpy as np
    n = size // 8
    if mode in ('xichan-pickle', 'xichan-buffer', 'xichan-shared'):
        from xichan import queues
        so = mode != 'xichan-pickle'
        a, b = queues.create(syncobj=so), queues.create(syncobj=so)
        cleanup = lambda: (queues.destroy(a), queues.destroy(b))  # noqa: E731
        def get():
            return b.get(timeout=HANG_S)
        if mode == 'xichan-pickle':
            return Ends(lambda arr: a.put(arr, timeout=HANG_S), get, (a, b), cleanup)
        if mode == 'xichan-buffer':
            return Ends(lambda arr: a.put(memoryview(arr), timeout=HANG_S),
                        lambda: np.frombuffer(get(), dtype=np.float64), (a, b), cleanup)
        import xichan
        sb = xichan.SharedBuffer(size)

        def send(arr):
            # arr is the shared array (filled once by the caller): what is
            # sent is the buffer, not the data.
            a.put(memoryview(sb), timeout=HANG_S)
        return Ends(send, lambda: np.frombuffer(get(), dtype=np.float64), (a, b), cleanup,
                    shared=np.frombuffer(sb, dtype=np.float64))
    if mode == 'mp-queue':
        a, b = ctx.Queue(), ctx.Queue()

        def close():
            for q in (a, b):
                q.close()
                q.join_thread()
        return Ends(a.put, b.get, (a, b), close)
    if mode == 'mp-shared-memory':
        try:
            from multiprocessing import shared_memory
        except ImportError:
            raise Skip('multiprocessing.shared_memory is not available')
        a, b = ctx.Queue(), ctx.Queue()
        live, keep = [], []

        def send(arr):
            shm = shared_memory.SharedMemory(create=True, size=arr.nbytes)
            np.ndarray(arr.shape, dtype=arr.dtype, buffer=shm.buf)[...] = arr
            live.append(shm)
            a.put((shm.name, arr.shape, arr.dtype.str))

        def receive():
            name = b.get()
            if name is None:
                raise RuntimeError('the echo could not view the array')
            mine = live.pop()
            view = shm_attach(name)
            got = np.ndarray((n,), dtype=np.float64, buffer=view.buf)
            keep.append((view, mine))               # until release()
            return got

        def release():
            while keep:
                view, mine = keep.pop()
                view.close()
                mine.close()
                mine.unlink()

        def close():
            release()
            for shm in live:
                shm.close()
                shm.unlink()
            for q in (a, b):
                q.close()
                q.join_thread()
        return Ends(send, receive, (a, b), close, release=release)
    raise ValueError(mode)


def run_mode(mode, ctx, size, rounds, reps, pins):
    import numpy as np
    n = size // 8
    arr = np.arange(n, dtype=np.float64)
    e = make(mode, ctx, size)
    if e.shared is not None:
        e.shared[:] = arr
        arr = e.shared
    send, receive, args, release = e.send, e.receive, e.args, e.release
    first, last = float(arr[0]), float(arr[-1])
    pin(pins[0])
    p = ctx.Process(target=echo, args=(mode, args, pins[1]))
    p.start()
    clock = time.perf_counter_ns
    out = []
    try:
        warm = 1 if size >= 16 * MiB else 3
        for rep in range(reps):
            ns = []
            for i in range(rounds + (warm if rep == 0 else 0)):
                t0 = clock()
                send(arr)
                got = receive()
                dt = clock() - t0
                if got.shape != (n,) or float(got[0]) != first or float(got[-1]) != last:
                    raise RuntimeError(f'the array came back different: shape {got.shape}')
                del got
                release()
                if rep > 0 or i >= warm:
                    ns.append(dt)
            out.append(summary(ns))
    finally:
        try:
            args[0].put(None)
        except Exception:
            pass
        p.join(60)
        if p.is_alive():
            p.kill()
            p.join()
        del arr
        e.shared = None
        e.cleanup()
        pin(ALL_CPUS)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', default=f'{MiB},{16 * MiB},{256 * MiB}')
    ap.add_argument('--rounds', default=f'{MiB}:100,{16 * MiB}:20,{256 * MiB}:3')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--only')
    a = ap.parse_args()
    out = {'bench': 'py_numpy', 'python': sys.version.split()[0], 'results': [], 'skipped': [],
           'errors': []}
    try:
        import numpy
        out['numpy'] = numpy.__version__
    except ImportError:
        out['skipped'].append({'mode': 'all', 'reason': 'numpy is not installed for this Python '
                               '(pip install numpy)'})
        print(json.dumps(out))
        return
    ctx = mp.get_context('spawn')
    pname, pc, cc = plan()
    out['pin'] = pname
    modes = a.only.split(',') if a.only else MODES
    bad = [m for m in modes if m not in MODES]
    if bad:
        ap.error(f'unknown mode(s) {",".join(bad)}; modes: {",".join(MODES)}')
    for size in (int(s) for s in a.sizes.split(',')):
        rounds = rounds_for(a.rounds, size)
        for mode in modes:
            try:
                heap = heap_used() if mode.startswith('xichan') else None
                reps = run_mode(mode, ctx, size, rounds, a.reps, (pc, cc))
                out['results'].append({'mode': mode, 'size': size, 'rounds': rounds,
                                       'reps': reps, 'heap_used_before': heap})
                log(f'  {mode:17} {size:>10} p50 '
                    f'{statistics.median(r["p50_us"] for r in reps):12.1f} us')
            except Skip as e:
                out['skipped'].append({'mode': mode, 'reason': str(e)})
                log(f'  skip {mode}: {e}')
            except Exception as e:
                out['errors'].append({'mode': mode, 'size': size,
                                      'error': f'{type(e).__name__}: {e}',
                                      'traceback': traceback.format_exc()})
                log(f'  ERROR {mode} {size}: {e}')
    print(json.dumps(out))
    sys.exit(1 if out['errors'] else 0)


if __name__ == '__main__':
    main()
