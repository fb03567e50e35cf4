#!/usr/bin/env python3
"""py_bench.py -- the cross-process Python parts of scripts/bench/run.

Each subcommand runs one part and prints one JSON object on stdout (progress
and notes go to stderr); the exit status is 1 if any measurement failed (the
JSON then lists them under "errors"), 0 otherwise.  Skipped transports (not
installed, not available) are listed under "skipped" and are not failures.

    py_bench.py pingpong   [--sizes 64] [--pins across,one,none] [--rounds N|SIZE:N,...] [--reps R]
    py_bench.py throughput [--pins across,none] [--items N|SIZE:N,...] [--size B | --sizes B,...]
                           [--memcpy] [--reps R]
    py_bench.py sharedbuf  [--sizes ...] [--rounds N] [--reps R]
    py_bench.py idle       [--seconds S]
    py_bench.py memory     [--count N]

Transports (processes started with multiprocessing's spawn context, except
os-pipe, which forks):
  xichan-queue     xichan.queues, syncobj=True (msgpack bytes), blocking get
  xichan-pickle    xichan.queues, syncobj=False (pickled), blocking get
  xichan-channel   xichan.channels, send_nowait + blocking recv
  xichan-mp-queue  xichan.multiprocessing.Queue (the drop-in for
                   multiprocessing.Queue: pickled items), blocking get
  mp-queue         multiprocessing.Queue, blocking get
  mp-simplequeue   multiprocessing.SimpleQueue
  mp-pipe          multiprocessing.Pipe, send/recv (pickled objects)
  faster-fifo      faster_fifo.Queue (pip package faster-fifo), put/get
  os-pipe          two os.pipe()s, os.write/os.read of the raw bytes (a floor)
  iceoryx2-wait    the iceoryx2 Python binding (pip package iceoryx2):
                   publish-subscribe of a u8 slice, the bytes copied into a
                   loaned sample (one memmove), the receiver taking the
                   sample without a copy (the echo copies it into its own
                   loan); each send followed by a notify on an event
                   service, the receiver blocking in the event Listener's
                   wait when no sample is there
  iceoryx2-poll    the same with no events: the receiver busy-polls
                   Subscriber.receive() (not run with both ends on one CPU,
                   where each poll holds the CPU for a time slice)
throughput also runs faster-fifo-many and xichan-put-many (put_many/get_many,
batches of 64; xichan with syncobj=True).

Pinning (os.sched_setaffinity in each process): "across" puts the two
processes on the first two CPUs we may use, "one" both on the first, "none"
leaves them unpinned.  A round trip is timed with perf_counter_ns around
put+get in the parent; each repetition gives p50/p99/p99.9/max (us) and the
per-repetition summaries are reported as they are (the driver aggregates).
The xichan daemon comes from the environment (XICHAN_NAME, ...).
"""
import argparse
import ctypes
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

FOREVER = 3600.0          # a "blocking" timeout for APIs that need a number
PINGPONG = ['xichan-queue', 'xichan-pickle', 'xichan-channel', 'xichan-mp-queue', 'mp-queue',
            'mp-simplequeue', 'mp-pipe', 'faster-fifo', 'os-pipe', 'iceoryx2-wait', 'iceoryx2-poll']
IOX = ('iceoryx2-wait', 'iceoryx2-poll')
IOX_HANG_S = 60                         # an iceoryx2 receive that waits longer fails
BIG = 64 << 10                          # items from this size on are "big"
THROUGHPUT = PINGPONG + ['faster-fifo-many', 'xichan-put-many']
BATCH = 64
ALL_CPUS = frozenset(os.sched_getaffinity(0))    # before any pinning


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Skip(Exception):
    """This transport cannot run here (the reason is the message)."""


def have_faster_fifo():
    try:
        import faster_fifo  # noqa: F401
        return True
    except ImportError:
        return False


def iceoryx2_version():
    try:
        from importlib.metadata import version
        return version('iceoryx2')
    except Exception:
        return None


def have_iceoryx2():
    try:
        import iceoryx2  # noqa: F401
        return True
    except ImportError:
        return False


def pin(cpus):
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def pin_plan(name):
    """(parent cpus, child cpus) for a pinning name; None = all allowed."""
    cpus = sorted(ALL_CPUS)
    if name == 'none':
        return set(cpus), set(cpus)
    if name == 'one':
        return {cpus[0]}, {cpus[0]}
    if name == 'across':
        if len(cpus) < 2:
            raise Skip('fewer than 2 CPUs available: no cross-CPU pinning')
        return {cpus[0]}, {cpus[1]}
    raise ValueError(name)


def summary(ns):
    us = sorted(n / 1000.0 for n in ns)
    n = len(us)
    return {'p50_us': round(statistics.median(us), 3),
            'p99_us': round(us[min(n - 1, int(n * 0.99))], 3),
            'p999_us': round(us[min(n - 1, int(n * 0.999))], 3),
            'max_us': round(us[-1], 3),
            'mean_us': round(statistics.fmean(us), 3),
            'n': n}


def payload_of(size):
    return (bytes(range(256)) * (size // 256 + 1))[:size]


# ------------------------------------------------------------ endpoints
#
# make_pair(kind, size) -> (parent_put, parent_get, child_args, cleanup)
# child_ends(kind, args) -> (child_get, child_put)   (in the child)

class IoxView:
    """A received iceoryx2 sample, not copied: its payload address and length.

    Holds the sample, which stays loaned until this is dropped."""
    __slots__ = ('sample', 'ptr', 'n')

    def __init__(self, sample, ptr, n):
        self.sample, self.ptr, self.n = sample, ptr, n

    def __len__(self):
        return self.n


class IoxPort:
    """One direction of an iceoryx2 transport: publish-subscribe service
    NAME (payload a u8 slice) and, when WAIT, event service NAME.ev on which
    every send is notified and a receiver with nothing to take blocks.

    Pickles as its parameters; each process opens its own node, service and
    ports on first use.  put(bytes | IoxView | None) copies the payload into
    a loaned sample (None: an empty sample, the echo's stop); get() returns
    an IoxView (no copy), or None for an empty sample.  DEPTH samples fit in
    the subscriber's buffer; a full buffer makes the publisher retry until
    the subscriber has taken one (BackpressureStrategy.RetryUntilDelivered),
    so nothing is dropped."""

    def __init__(self, name, size, wait, depth):
        self.name, self.size, self.wait, self.depth = name, size, wait, depth
        self._p = None

    def __getstate__(self):
        return (self.name, self.size, self.wait, self.depth)

    def __setstate__(self, st):
        self.name, self.size, self.wait, self.depth = st
        self._p = None

    def _open(self):
        import iceoryx2 as iox2
        iox2.set_log_level_from_env_or(iox2.LogLevel.Error)
        node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
        svc = (node.service_builder(iox2.ServiceName.new(self.name))
               .publish_subscribe(iox2.Slice[ctypes.c_uint8])
               .max_publishers(1).max_subscribers(1).history_size(0)
               .subscriber_max_buffer_size(self.depth).enable_safe_overflow(False)
               .open_or_create())
        ev = (node.service_builder(iox2.ServiceName.new(self.name + '.ev')).event()
              .open_or_create() if self.wait else None)
        self._p = {'iox2': iox2, 'node': node, 'svc': svc, 'ev': ev, 'last': None,
                   'forever': iox2.Duration.from_secs(1)}

    def open_sender(self):
        if self._p is None:
            self._open()
        p = self._p
        if 'pub' not in p:
            p['pub'] = (p['svc'].publisher_builder().initial_max_slice_len(max(1, self.size))
                        .backpressure_strategy(p['iox2'].BackpressureStrategy.RetryUntilDelivered)
                        .create())
            p['notifier'] = p['ev'].notifier_builder().create() if self.wait else None

    def open_receiver(self):
        if self._p is None:
            self._open()
        p = self._p
        if 'sub' not in p:
            p['sub'] = p['svc'].subscriber_builder().create()
            p['listener'] = p['ev'].listener_builder().create() if self.wait else None

    def connect(self):
        """Receiver: take up the connection to a publisher that exists now.

        Until the subscriber's side has done so (receive() does it), a
        publisher that fills the subscriber's buffer loses samples instead
        of retrying (seen with iceoryx2 0.10), so a receiver calls this
        after the sender says it is there and before it sends."""
        self.open_receiver()
        s = self._p['sub'].receive()
        if s is not None:
            self._p['pending'] = s

    def put(self, v):
        if self._p is None or 'pub' not in self._p:
            self.open_sender()
        p = self._p
        n = 0 if v is None else len(v)
        s = p['pub'].loan_slice_uninit(n)
        if n:
            ctypes.memmove(s.payload_ptr, v.ptr if isinstance(v, IoxView) else v, n)
        s.assume_init().send()
        if p['notifier'] is not None:
            p['notifier'].notify()

    def get(self):
        if self._p is None or 'sub' not in self._p:
            self.open_receiver()
        p = self._p
        p['last'] = None                # the previous sample goes back
        sub, listener = p['sub'], p['listener']
        s = p.pop('pending', None)
        spins, deadline = 0, None
        while s is None:
            s = sub.receive()
            if s is not None:
                break
            if listener is not None:
                listener.timed_wait(p['forever'])
            spins += 1
            if listener is not None or spins % 4096 == 0:
                now = time.monotonic()
                deadline = deadline or now + IOX_HANG_S
                if now > deadline:
                    raise RuntimeError(f'iceoryx2: no sample on {self.name} in {IOX_HANG_S} s')
        n = s.header.number_of_elements
        if n == 0:
            return None
        p['last'] = v = IoxView(s, s.payload_ptr, n)
        return v

    def close(self):
        self._p = None


def iox_depth(size):
    """Subscriber buffer: 256 small samples, 4 of 16 MiB (the publisher's
    segment holds about twice that)."""
    return max(2, min(256, (64 << 20) // max(1, size)))


def iox_pair(kind, size, tag):
    if not have_iceoryx2():
        raise Skip('iceoryx2 is not installed for this Python (pip install iceoryx2)')
    wait = kind == 'iceoryx2-wait'
    base = f'xichan-bench/{os.getpid()}/{tag}'
    a = IoxPort(base + '/a', size, wait, iox_depth(size))
    b = IoxPort(base + '/b', size, wait, iox_depth(size))
    return a, b


def ff_bytes(size):
    return max(1_000_000, 2 * size + 4096)


def make_pair(ctx, kind, size):
    if kind in ('xichan-queue', 'xichan-pickle'):
        from xichan import queues
        so = kind == 'xichan-queue'
        a, b = queues.create(syncobj=so), queues.create(syncobj=so)
        return a.put, b.get, (a, b), lambda: (queues.destroy(a), queues.destroy(b))
    if kind == 'xichan-mp-queue':
        from xichan.multiprocessing import Queue
        a, b = Queue(), Queue()
        return a.put, b.get, (a, b), lambda: None
    if kind == 'xichan-channel':
        from xichan import channels
        r1, s1 = channels.create()
        r2, s2 = channels.create()
        return s1.send_nowait, r2.recv, (r1, s2), lambda: None
    if kind == 'mp-queue':
        a, b = ctx.Queue(), ctx.Queue()

        def close():
            for q in (a, b):
                q.close()
                q.join_thread()
        return a.put, b.get, (a, b), close
    if kind == 'mp-simplequeue':
        a, b = ctx.SimpleQueue(), ctx.SimpleQueue()
        return a.put, b.get, (a, b), lambda: (a.close(), b.close())
    if kind == 'mp-pipe':
        p, c = ctx.Pipe()
        return p.send, p.recv, (c,), p.close
    if kind == 'faster-fifo':
        if not have_faster_fifo():
            raise Skip('faster-fifo is not installed for this Python (pip install faster-fifo)')
        import faster_fifo
        a = faster_fifo.Queue(max_size_bytes=ff_bytes(size))
        b = faster_fifo.Queue(max_size_bytes=ff_bytes(size))
        return (lambda v: a.put(v, timeout=FOREVER)), (lambda: b.get(timeout=FOREVER)), \
            (a, b), lambda: None
    if kind in IOX:
        a, b = iox_pair(kind, size, f'pp{time.monotonic_ns()}')
        # A sample sent before the receiving process has subscribed is not
        # delivered: the parent subscribes to b before the child starts, the
        # child subscribes to a and then says "ready" on b (echo_child), and
        # the parent's first put waits for that.
        a.open_sender()
        b.open_receiver()
        started = []

        def put(v):
            if not started:
                if b.get() is None:
                    raise RuntimeError('the iceoryx2 echo stopped before it was ready')
                started.append(1)
            a.put(v)
        return put, b.get, (a, b), lambda: (a.close(), b.close())
    raise ValueError(kind)


def child_ends(kind, args):
    if kind in ('xichan-queue', 'xichan-pickle', 'xichan-mp-queue', 'mp-queue',
                'mp-simplequeue') + IOX:
        a, b = args
        return a.get, b.put
    if kind == 'xichan-channel':
        r, s = args
        return r.recv, s.send_nowait
    if kind == 'mp-pipe':
        c, = args
        return c.recv, c.send
    if kind == 'faster-fifo':
        a, b = args
        return (lambda: a.get(timeout=FOREVER)), (lambda v: b.put(v, timeout=FOREVER))
    raise ValueError(kind)


def echo_child(kind, args, cpus):
    pin(cpus)
    get, put = child_ends(kind, args)
    if kind in IOX:
        args[0].connect()               # the parent's publisher exists
        put(b'r')                       # ready: see make_pair
    while True:
        v = get()
        if v is None:
            return
        put(v)


def read_exact(fd, n):
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return chunks[0] if len(chunks) == 1 else b''.join(chunks)


def write_all(fd, b):
    mv = memoryview(b)
    while mv:
        mv = mv[os.write(fd, mv):]


def time_rounds(put, get, payload, rounds, warmup):
    for _ in range(warmup):
        put(payload)
        get()
    clock = time.perf_counter_ns
    ns = [0] * rounds
    for i in range(rounds):
        t0 = clock()
        put(payload)
        get()
        ns[i] = clock() - t0
    return ns


def pingpong_once(ctx, kind, size, rounds, pins):
    pcpus, ccpus = pins
    if kind == 'iceoryx2-poll' and len(pcpus | ccpus) == 1:
        raise Skip('busy-polling with both ends on one CPU: each poll holds the CPU for a '
                   'time slice (not run)')
    payload = payload_of(size)
    warmup = max(2, min(500, rounds // 10))
    pin(pcpus)
    if kind == 'os-pipe':
        ab, ba = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                pin(ccpus)
                os.close(ab[1])
                os.close(ba[0])
                while True:
                    try:
                        b = read_exact(ab[0], size)
                    except EOFError:
                        break
                    write_all(ba[1], b)
            finally:
                os._exit(0)
        os.close(ab[0])
        os.close(ba[1])
        try:
            return time_rounds(lambda b: write_all(ab[1], b), lambda: read_exact(ba[0], size),
                               payload, rounds, warmup)
        finally:
            os.close(ab[1])
            os.close(ba[0])
            os.waitpid(pid, 0)
    put, get, args, cleanup = make_pair(ctx, kind, size)
    p = ctx.Process(target=echo_child, args=(kind, args, ccpus))
    p.start()
    try:
        return time_rounds(put, get, payload, rounds, warmup)
    finally:
        try:
            put(None)
        except Exception:
            pass
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join()
        cleanup()


def note_skip(out, kind, e):
    """List a skipped transport once per reason."""
    rec = {'transport': kind, 'reason': str(e)}
    if rec not in out['skipped']:
        out['skipped'].append(rec)
        log(f'  skip {kind}: {e}')


def rounds_for(spec, size):
    """--rounds is N, or SIZE:N,SIZE:N,... (a size not listed: the last N)."""
    if ':' not in spec:
        return int(spec)
    table = dict(tuple(int(x) for x in part.split(':')) for part in spec.split(','))
    return table.get(size, list(table.values())[-1])


def cmd_pingpong(args):
    ctx = mp.get_context('spawn')
    out = {'bench': 'py_pingpong', 'python': sys.version.split()[0], 'rounds': args.rounds,
           'reps': args.reps, 'iceoryx2': iceoryx2_version(), 'results': [], 'skipped': [],
           'errors': []}
    kinds = args.only.split(',') if args.only else PINGPONG
    sizes = [int(s) for s in args.sizes.split(',')]
    pins = args.pins.split(',')
    skipped = set()
    for pname in pins:
        try:
            plan = pin_plan(pname)
        except Skip as e:
            out['skipped'].append({'pin': pname, 'reason': str(e)})
            log(f'  skip pin={pname}: {e}')
            continue
        for size in sizes:
            rounds = rounds_for(args.rounds, size)
            res = {k: [] for k in kinds}
            for rep in range(args.reps):
                for kind in kinds:
                    if (kind, size, pname) in skipped:
                        continue
                    try:
                        ns = pingpong_once(ctx, kind, size, rounds, plan)
                        res[kind].append(summary(ns))
                    except Skip as e:
                        skipped.add((kind, size, pname))
                        note_skip(out, kind, e)
                    except Exception as e:
                        skipped.add((kind, size, pname))
                        out['errors'].append({'transport': kind, 'pin': pname, 'size': size,
                                              'error': f'{type(e).__name__}: {e}',
                                              'traceback': traceback.format_exc()})
                        log(f'  ERROR {kind} pin={pname} size={size}: {e}')
            for kind in kinds:
                if res[kind]:
                    out['results'].append({'transport': kind, 'pin': pname, 'size': size,
                                           'rounds': rounds, 'reps': res[kind]})
                    log(f'  {pname:6} {size:>9} {kind:15} p50 '
                        f'{statistics.median(r["p50_us"] for r in res[kind]):9.2f} us')
        pin(ALL_CPUS)
    return out


# ----------------------------------------------------------- throughput

def producer(kind, args, cpus, n, size, ready, go, done):
    pin(cpus)
    payload = payload_of(size)
    if kind in ('faster-fifo-many', 'xichan-put-many'):
        q, = args
        ready.set()
        go.wait()
        batch = [payload] * BATCH
        i = 0
        while i < n:
            k = min(BATCH, n - i)
            q.put_many(batch if k == BATCH else batch[:k], timeout=FOREVER)
            i += k
    else:
        if kind in ('xichan-queue', 'xichan-pickle', 'xichan-mp-queue', 'mp-queue',
                    'mp-simplequeue'):
            put = args[0].put
        elif kind == 'xichan-channel':
            put = args[0].send_nowait
        elif kind == 'mp-pipe':
            put = args[0].send
        elif kind == 'faster-fifo':
            q = args[0]

            def put(v):
                q.put(v, timeout=FOREVER)
        elif kind in IOX:
            args[0].open_sender()
            put = args[0].put
        ready.set()
        go.wait()
        for _ in range(n):
            put(payload)
    # xichan: items of an ended session turn UNBOUND; stay until they are taken.
    done.wait(FOREVER)


def throughput_once(ctx, kind, n, size, pins):
    pcpus, ccpus = pins
    pin(pcpus)
    clock = time.perf_counter_ns
    if kind == 'os-pipe':
        r, w = os.pipe()
        gr, gw = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                pin(ccpus)
                os.close(r)
                os.close(gw)
                payload = payload_of(size)
                os.read(gr, 1)
                for _ in range(n):
                    write_all(w, payload)
            finally:
                os._exit(0)
        os.close(w)
        os.close(gr)
        t0 = clock()
        os.write(gw, b'g')
        for _ in range(n):
            read_exact(r, size)
        secs = (clock() - t0) / 1e9
        os.close(r)
        os.close(gw)
        os.waitpid(pid, 0)
        return secs
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    cleanup = lambda: None  # noqa: E731
    if kind in ('xichan-queue', 'xichan-pickle', 'xichan-put-many'):
        from xichan import queues
        # Big items: a queue as deep as iceoryx2's subscriber buffer, so the
        # producer reuses memory instead of filling the segment.
        q = queues.create(iox_depth(size) if size >= BIG else 0,
                          syncobj=(kind != 'xichan-pickle'))
        cargs, get = (q,), q.get
        cleanup = lambda: queues.destroy(q)  # noqa: E731
    elif kind == 'xichan-mp-queue':
        from xichan.multiprocessing import Queue
        q = Queue()
        cargs, get = (q,), q.get
    elif kind == 'xichan-channel':
        from xichan import channels
        rch, sch = channels.create()
        cargs, get = (sch,), rch.recv
    elif kind == 'mp-queue':
        q = ctx.Queue()
        cargs, get = (q,), q.get
    elif kind == 'mp-simplequeue':
        q = ctx.SimpleQueue()
        cargs, get = (q,), q.get
    elif kind == 'mp-pipe':
        rc, wc = ctx.Pipe(duplex=False)
        cargs, get = (wc,), rc.recv
    elif kind in IOX:
        port, _ = iox_pair(kind, size, f'tp{time.monotonic_ns()}')
        port.open_receiver()            # before the producer publishes
        cargs, get = (port,), port.get
        cleanup = port.close
    elif kind in ('faster-fifo', 'faster-fifo-many'):
        if not have_faster_fifo():
            raise Skip('faster-fifo is not installed for this Python (pip install faster-fifo)')
        import faster_fifo
        q = faster_fifo.Queue(max_size_bytes=10_000_000)
        cargs = (q,)

        def get():
            return q.get(timeout=FOREVER)
    else:
        raise ValueError(kind)
    p = ctx.Process(target=producer, args=(kind, cargs, ccpus, n, size, ready, go, done))
    p.start()
    try:
        if not ready.wait(60):
            raise RuntimeError('producer did not start')
        if kind in IOX:
            port.connect()              # the producer's publisher exists now
        t0 = clock()
        go.set()
        if kind == 'faster-fifo-many':
            got = 0
            while got < n:
                got += len(q.get_many(timeout=FOREVER, max_messages_to_get=BATCH))
        elif kind == 'xichan-put-many':
            got = 0
            while got < n:
                got += len(q.get_many(BATCH, timeout=FOREVER))
        else:
            for _ in range(n):
                get()
        secs = (clock() - t0) / 1e9
    finally:
        done.set()
        p.join(60)
        if p.is_alive():
            p.kill()
            p.join()
        cleanup()
    return secs


def cmd_throughput(args):
    ctx = mp.get_context('spawn')
    sizes = [int(x) for x in (args.sizes or str(args.size)).split(',')]
    out = {'bench': 'py_throughput', 'python': sys.version.split()[0], 'items': args.items,
           'size': sizes[0], 'sizes': sizes, 'reps': args.reps, 'iceoryx2': iceoryx2_version(),
           'results': [], 'skipped': [],
           'errors': [], 'memcpy': []}
    kinds = args.only.split(',') if args.only else THROUGHPUT
    skipped = set()
    for pname in args.pins.split(','):
        try:
            plan = pin_plan(pname)
        except Skip as e:
            out['skipped'].append({'pin': pname, 'reason': str(e)})
            continue
        for size in sizes:
            n = rounds_for(args.items, size)
            res = {k: [] for k in kinds}
            for rep in range(args.reps):
                for kind in kinds:
                    if (kind, size, pname) in skipped:
                        continue
                    try:
                        secs = throughput_once(ctx, kind, n, size, plan)
                        res[kind].append(n / secs)
                    except Skip as e:
                        skipped.add((kind, size, pname))
                        note_skip(out, kind, e)
                    except Exception as e:
                        skipped.add((kind, size, pname))
                        out['errors'].append({'transport': kind, 'pin': pname, 'size': size,
                                              'error': f'{type(e).__name__}: {e}',
                                              'traceback': traceback.format_exc()})
                        log(f'  ERROR {kind} pin={pname} size={size}: {e}')
            for kind in kinds:
                if res[kind]:
                    med = statistics.median(res[kind])
                    out['results'].append({'transport': kind, 'pin': pname, 'size': size,
                                           'items': n,
                                           'items_per_s': [round(x) for x in res[kind]],
                                           'median_items_per_s': round(med),
                                           'mb_per_s': round(med * size / 1e6, 1)})
                    log(f'  {pname:6} {size:>9} {kind:17} {med:12.0f} items/s '
                        f'{med * size / 1e6:10.1f} MB/s')
        pin(ALL_CPUS)
    if args.memcpy:
        # The copy bandwidth the one-way figures are judged against, measured
        # here, in the same run: memmove into a warm buffer, and bytes() of
        # the source (a fresh allocation: its page faults included).
        for size in (s for s in sizes if s >= BIG):
            reps = max(3, min(50, (256 << 20) // size // 4))
            mm, by = memcpy_bw(size, reps)
            out['memcpy'].append({'size': size, 'memmove_mb_per_s': round(mm, 1),
                                  'bytes_mb_per_s': round(by, 1)})
            log(f'  memcpy {size:>10} memmove {mm:10.1f} MB/s  bytes() {by:10.1f} MB/s')
    return out


# ------------------------------------------------------------ sharedbuf

def buf_child(mode, args, cpus):
    """Receive views; check each; acknowledge with its length."""
    pin(cpus)
    src, ack = args
    get = src.recv if mode.endswith('chan') else src.get
    while True:
        v = get()
        if v is None:
            return
        n = v.nbytes if isinstance(v, memoryview) else len(v)
        del v
        ack.put(n)


def addr_of(buf):
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


def memcpy_bw(size, reps):
    """(memmove into a warm buffer, bytes(bytearray)) in MB/s, medians."""
    src = bytearray(b'\x01') * size
    dst = bytearray(size)
    dst[:] = src                           # warm: every page touched
    sa = (ctypes.c_char * size).from_buffer(src)
    da = (ctypes.c_char * size).from_buffer(dst)
    clock = time.perf_counter_ns
    mm, by = [], []
    for _ in range(reps + 1):
        t0 = clock()
        ctypes.memmove(da, sa, size)
        mm.append(clock() - t0)
        t0 = clock()
        b = bytes(src)
        by.append(clock() - t0)
        del b
    del sa, da
    mm, by = mm[1:], by[1:]
    return size / (statistics.median(mm) / 1e9) / 1e6, size / (statistics.median(by) / 1e9) / 1e6


def cmd_sharedbuf(args):
    import xichan
    from xichan import queues, channels
    ctx = mp.get_context('spawn')
    out = {'bench': 'py_sharedbuf', 'python': sys.version.split()[0], 'results': [],
           'memcpy': [], 'skipped': [], 'errors': []}
    sizes = [int(s) for s in args.sizes.split(',')]
    out['pin'] = 'across' if len(ALL_CPUS) >= 2 else 'none'
    plan = pin_plan(out['pin'])
    clock = time.perf_counter_ns
    modes = ['tiny-queue', 'shared-queue', 'shared-chan', 'copy-chan', 'copy-queue']
    for mode in modes:
        if mode.endswith('chan'):
            rch, sch = channels.create()
            src_child, send = rch, sch.send_buffer_nowait
            stop = lambda: sch.send_nowait(None)  # noqa: E731
        else:
            q = queues.create(syncobj=True)
            src_child, send, stop = q, q.put, (lambda q=q: q.put(None))
        ack = queues.create(syncobj=True)
        pin(plan[0])
        p = ctx.Process(target=buf_child, args=(mode, (src_child, ack), plan[1]))
        p.start()
        try:
            for size in (sizes if mode != 'tiny-queue' else [0]):
                if mode.startswith('copy') and size > (1 << 20):
                    rounds = max(3, args.rounds // 20 if size <= (16 << 20) else args.rounds // 100)
                else:
                    rounds = args.rounds
                try:
                    if mode == 'tiny-queue':
                        obj = b''
                    elif mode.startswith('shared'):
                        sb = xichan.SharedBuffer(size)
                        obj = memoryview(sb)
                    else:
                        ba = bytearray(b'\x01') * size
                        obj = memoryview(ba) if mode == 'copy-queue' else ba
                    want = 0 if mode == 'tiny-queue' else size
                    # Enough warm-up rounds for the waits' adaptive spin to
                    # settle (libclient/wait.c); a long copy never spins.
                    big_copy = mode.startswith('copy') and size > (1 << 20)
                    warm = 1 if big_copy else min(100, max(2, rounds))
                    reps = []
                    for rep in range(args.reps):
                        ns = []
                        for i in range(rounds + warm):
                            t0 = clock()
                            send(obj)
                            n = ack.get()
                            dt = clock() - t0
                            if n != want:
                                raise RuntimeError(f'receiver saw {n} bytes, sent {want}')
                            if i >= warm:
                                ns.append(dt)
                        reps.append(summary(ns))
                    p50 = statistics.median(r['p50_us'] for r in reps)
                    rec = {'mode': mode, 'size': size, 'rounds': rounds, 'reps': reps}
                    if mode.startswith('copy'):
                        rec['mb_per_s'] = round(size / (p50 / 1e6) / 1e6, 1)
                    out['results'].append(rec)
                    log(f'  {mode:13} {size:>10} p50 {p50:10.2f} us')
                except Exception as e:
                    out['errors'].append({'mode': mode, 'size': size,
                                          'error': f'{type(e).__name__}: {e}',
                                          'traceback': traceback.format_exc()})
                    log(f'  ERROR {mode} {size}: {e}')
                finally:
                    obj = sb = ba = None  # noqa: F841
        finally:
            try:
                stop()
            except Exception:
                pass
            p.join(60)
            if p.is_alive():
                p.kill()
                p.join()
    pin(ALL_CPUS)
    for size in sizes:
        reps = max(3, min(50, (256 << 20) // size // 4 if size else 3))
        mm, by = memcpy_bw(size, reps)
        out['memcpy'].append({'size': size, 'memmove_mb_per_s': round(mm, 1),
                              'bytes_mb_per_s': round(by, 1)})
        log(f'  memcpy {size:>10} memmove {mm:10.1f} MB/s  bytes() {by:10.1f} MB/s')
    return out


# ----------------------------------------------------------------- idle

def idle_child(kind, args):
    from xichan import queues  # noqa: F401
    ready, obj = args
    ready.put(os.getpid())
    if kind == 'queue':
        v = obj.get()
    else:
        v = obj.recv()
    # What woke it: cmd_idle checks it was the item it sent at the end.
    ready.put((os.getpid(), v))


def proc_state(pid):
    """The state letter of /proc/<pid>/stat, or None if the process is gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_sample(pid):
    """(cpu ns from schedstat, cpu ticks from stat, context switches) of all threads."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])          # utime, stime
    ns = switches = 0
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
                ns += int(f.read().split()[0])
            with open(f'/proc/{pid}/task/{tid}/status') as f:
                for line in f:
                    if line.startswith(('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches')):
                        switches += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return ns, ticks, switches


def cmd_idle(args):
    from xichan import queues, channels, _xichan
    ctx = mp.get_context('spawn')
    hz = os.sysconf('SC_CLK_TCK')
    ready = queues.create(syncobj=True)
    q = queues.create(syncobj=True)
    rch, sch = channels.create()
    procs = {'xichan queue get': ctx.Process(target=idle_child, args=('queue', (ready, q))),
             'xichan channel recv': ctx.Process(target=idle_child, args=('chan', (ready, rch)))}
    for p in procs.values():
        p.start()
    out = {'bench': 'py_idle', 'seconds': args.seconds, 'results': [], 'errors': []}
    # The figure means something only if each child was alive and inside its
    # get/recv for the whole interval (a crashed getter would score 0% too):
    # alive (not gone, not a zombie) at both samples, nothing on "ready"
    # before the end (a child reports there as soon as its call returns),
    # and its call then returned the item sent to end it.  Each result says
    # whether that held ("blocked") and, if not, why.
    why = {}
    try:
        for _ in procs:
            ready.get(60)
        time.sleep(0.3)                                 # let them settle into the wait
        pids = {name: p.pid for name, p in procs.items()}
        pids['xichand (daemon)'] = _xichan.stats()['daemon_pid']
        states = {name: [proc_state(pid)] for name, pid in pids.items()}
        before = {name: proc_sample(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        time.sleep(args.seconds)
        wall = time.monotonic() - t0
        after = {name: proc_sample(pid) for name, pid in pids.items()}
        early = ready.qsize()
        for name, pid in pids.items():
            states[name].append(proc_state(pid))
            if any(st in (None, 'Z', 'X') for st in states[name]):
                why[name] = f'not alive (state {states[name][0]} before, {states[name][1]} after)'
            elif early and name in procs:
                why[name] = f'{early} getter(s) returned before the end'
        for name in pids:
            ns = after[name][0] - before[name][0]
            ticks = after[name][1] - before[name][1]
            sw = after[name][2] - before[name][2]
            out['results'].append({'process': name, 'wall_s': round(wall, 3),
                                   'cpu_ms': round(ns / 1e6, 3),
                                   'cpu_ms_stat': round(ticks * 1000 / hz, 1),
                                   'cpu_pct': round(ns / 1e9 / wall * 100, 4),
                                   'wakeups': sw, 'wakeups_per_s': round(sw / wall, 2)})
            log(f'  {name:22} {ns / 1e6:8.3f} ms CPU in {wall:.2f} s, {sw} context switches')
    finally:
        q.put(None)
        sch.send_nowait(None)
        woke = {}
        try:
            for _ in procs:
                pid, v = ready.get(30)
                woke[pid] = v
        except Exception as e:  # noqa: BLE001 -- reported as a failed precondition
            out['errors'].append(f'idle children did not all wake: {e!r}')
        for name, p in procs.items():
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
            if p.pid not in woke or woke[p.pid] is not None:
                why.setdefault(name, 'its get/recv did not return the item sent to end it')
            elif p.exitcode != 0:
                why.setdefault(name, f'exit code {p.exitcode}')
    for r in out['results']:
        r['blocked'] = r['process'] not in why
        if not r['blocked']:
            r['not_blocked_why'] = why[r['process']]
    return out


# --------------------------------------------------------------- memory

def cmd_memory(args):
    from xichan import queues, _xichan
    out = {'bench': 'py_memory', 'count': args.count, 'results': [], 'errors': []}
    n = args.count
    s0 = _xichan.stats()['heap_used']
    qs = [queues.create() for _ in range(n)]
    s1 = _xichan.stats()['heap_used']
    out['heap_per_empty_queue'] = (s1 - s0) / n
    for q in qs:
        queues.destroy(q)
    del qs
    for label, obj, syncobj in [('bytes(64), syncobj=True', payload_of(64), True),
                                ('bytes(64), pickled', payload_of(64), False),
                                ('int, syncobj=True', 12345, True),
                                ('int, pickled', 12345, False),
                                ('str(10), syncobj=True', 'abcdefghij', True)]:
        q = queues.create(syncobj=syncobj)
        s0 = _xichan.stats()['heap_used']
        for _ in range(n):
            q.put(obj)
        s1 = _xichan.stats()['heap_used']
        queues.destroy(q)
        out['results'].append({'item': label, 'heap_per_item': (s1 - s0) / n})
        log(f'  {label:26} {(s1 - s0) / n:8.1f} heap bytes per item')
    return out


# ----------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('pingpong')
    p.add_argument('--sizes', default='64')
    p.add_argument('--pins', default='across,one,none')
    p.add_argument('--rounds', default='5000', help='N, or SIZE:N,SIZE:N,...')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--only')
    p = sub.add_parser('throughput')
    p.add_argument('--pins', default='across,none')
    p.add_argument('--items', default='50000', help='N, or SIZE:N,SIZE:N,...')
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--sizes', help='comma list of item sizes (instead of --size)')
    p.add_argument('--memcpy', action='store_true',
                   help='also measure memmove and bytes() bandwidth at each size')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--only')
    p = sub.add_parser('sharedbuf')
    p.add_argument('--sizes', default=','.join(str(1 << k) for k in (10, 16, 20, 24, 28)))
    p.add_argument('--rounds', type=int, default=200)
    p.add_argument('--reps', type=int, default=3)
    p = sub.add_parser('idle')
    p.add_argument('--seconds', type=float, default=5.0)
    p = sub.add_parser('memory')
    p.add_argument('--count', type=int, default=1000)
    args = ap.parse_args()
    out = {'pingpong': cmd_pingpong, 'throughput': cmd_throughput, 'sharedbuf': cmd_sharedbuf,
           'idle': cmd_idle, 'memory': cmd_memory}[args.cmd](args)
    print(json.dumps(out))
    sys.exit(1 if out.get('errors') else 0)


if __name__ == '__main__':
    main()
