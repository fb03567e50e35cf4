#!/usr/bin/env python3
"""scripts/bench/py_aio.py -- event loops: asyncio round trips across
processes, and the CPU that awaiting tasks use while nothing happens.

    py_aio.py [--rounds N] [--reps R] [--idle-tasks N] [--idle-seconds S] [--json]

Needs a daemon (XICHAN_NAME/XICHAN_RUNTIME_DIR, as scripts/bench/run sets).
Round trips (64-byte bytes objects, one echo process, unpinned; p50/p99 of
each repetition, then the median over repetitions):

  xichan blocking         q.put / q2.get in both processes (the reference)
  xichan asyncio          the measuring process awaits q2.get_async() in a
                          running loop (default loop); the echo blocks in get
  xichan asyncio both     both processes run loops and await get_async
  xichan uvloop           the measuring process on uvloop (if installed)
  mp.Queue executor       asyncio + multiprocessing.Queue, the common
                          workaround: await loop.run_in_executor(None, q.get)
  iceoryx2 WaitSet        iceoryx2 (if installed): an event service each way,
                          both processes in WaitSet.wait_and_process (epoll);
                          events carry no payload, so this is the floor of a
                          wake-up there, not a message round trip

Idle: N tasks await get_async on N/10 queues for S seconds; the CPU time of
the process (all threads, /proc/<pid>/task/*/schedstat) and its context
switches in that window.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

PAYLOAD = b'x' * 64


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def summary(name, reps):
    return {'mode': name,
            'p50_us': round(statistics.median(pct(r, 0.5) for r in reps) * 1e6, 2),
            'p99_us': round(statistics.median(pct(r, 0.99) for r in reps) * 1e6, 2),
            'p50_range_us': [round(min(pct(r, 0.5) for r in reps) * 1e6, 2),
                             round(max(pct(r, 0.5) for r in reps) * 1e6, 2)]}


# -------------------------------------------------------------- echoes

def echo_blocking(qa, qb, n):
    for _ in range(n):
        qb.put(qa.get())


def echo_async(qa, qb, n):
    async def main():
        for _ in range(n):
            await qb.put_async(await qa.get_async())
    asyncio.run(main())


def echo_mp(qa, qb, n):
    for _ in range(n):
        qb.put(qa.get())


def echo_iox(name_a, name_b, n):
    import iceoryx2 as iox2
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    ev_a = node.service_builder(iox2.ServiceName.new(name_a)).event().open_or_create()
    ev_b = node.service_builder(iox2.ServiceName.new(name_b)).event().open_or_create()
    listener = ev_a.listener_builder().create()
    notifier = ev_b.notifier_builder().create()
    ws = iox2.WaitSetBuilder.new().create(iox2.ServiceType.Ipc)
    guard = ws.attach_notification(listener)  # noqa: F841 (keeps the attachment)
    notifier.notify()   # "ready"
    done, t_end = 0, time.monotonic() + 120
    while done < n and time.monotonic() < t_end:
        ws.wait_and_process_with_timeout(iox2.Duration.from_secs(1))
        if listener.try_wait():     # one outstanding event at a time: a ping
            notifier.notify()
            done += 1


# ---------------------------------------------------------- round trips

def rt_xichan(mode, rounds, reps):
    from xichan import queues
    out = []
    for _ in range(reps):
        qa, qb = queues.create(syncobj=True), queues.create(syncobj=True)
        target = echo_async if mode == 'xichan asyncio both' else echo_blocking
        p = mp.get_context('spawn').Process(target=target, args=(qa, qb, rounds + 200))
        p.start()
        ts = []
        if mode == 'xichan blocking':
            for i in range(rounds + 200):
                t0 = time.perf_counter()
                qa.put(PAYLOAD)
                qb.get()
                if i >= 200:
                    ts.append(time.perf_counter() - t0)
        else:
            async def main():
                for i in range(rounds + 200):
                    t0 = time.perf_counter()
                    qa.put(PAYLOAD)
                    await qb.get_async()
                    if i >= 200:
                        ts.append(time.perf_counter() - t0)
            if mode == 'xichan uvloop':
                import uvloop
                loop = uvloop.new_event_loop()
            else:
                loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()
        p.join(60)
        out.append(ts)
    return summary(mode, out)


def rt_mp(rounds, reps):
    out = []
    ctx = mp.get_context('spawn')
    for _ in range(reps):
        qa, qb = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=echo_mp, args=(qa, qb, rounds + 200))
        p.start()
        ts = []

        async def main():
            loop = asyncio.get_running_loop()
            for i in range(rounds + 200):
                t0 = time.perf_counter()
                qa.put(PAYLOAD)
                await loop.run_in_executor(None, qb.get)
                if i >= 200:
                    ts.append(time.perf_counter() - t0)
        asyncio.run(main())
        p.join(60)
        out.append(ts)
    return summary('mp.Queue executor', out)


def rt_iox(rounds, reps):
    import iceoryx2 as iox2
    out = []
    for rep in range(reps):
        name_a, name_b = f'xb{os.getpid()}a{rep}', f'xb{os.getpid()}b{rep}'
        node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
        ev_a = node.service_builder(iox2.ServiceName.new(name_a)).event().open_or_create()
        ev_b = node.service_builder(iox2.ServiceName.new(name_b)).event().open_or_create()
        notifier = ev_a.notifier_builder().create()
        listener = ev_b.listener_builder().create()
        ws = iox2.WaitSetBuilder.new().create(iox2.ServiceType.Ipc)
        guard = ws.attach_notification(listener)  # noqa: F841
        p = mp.get_context('spawn').Process(target=echo_iox, args=(name_a, name_b, rounds + 200))
        p.start()
        t_end = time.monotonic() + 60
        while not listener.try_wait():   # the echo's "ready"
            ws.wait_and_process_with_timeout(iox2.Duration.from_secs(1))
            if time.monotonic() > t_end:
                raise RuntimeError('the iceoryx2 echo never came up')
        ts = []
        for i in range(rounds + 200):
            t0 = time.perf_counter()
            notifier.notify()
            while not listener.try_wait():
                ws.wait_and_process_with_timeout(iox2.Duration.from_secs(1))
                if time.monotonic() > t_end + 120:
                    raise RuntimeError('the iceoryx2 echo stopped answering')
            if i >= 200:
                ts.append(time.perf_counter() - t0)
        p.join(60)
        out.append(ts)
        del guard, ws, listener, notifier, ev_a, ev_b, node
    return summary('iceoryx2 WaitSet (event only)', out)


# ----------------------------------------------------------------- idle

def proc_cpu(pid):
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
    return ns, switches


def idle(ntasks, seconds):
    from xichan import queues
    qs = [queues.create() for _ in range(max(1, ntasks // 10))]
    res = {}

    async def main():
        tasks = [asyncio.ensure_future(qs[i % len(qs)].get_async()) for i in range(ntasks)]
        await asyncio.sleep(0.5)        # all registered and asleep
        ns0, sw0 = proc_cpu(os.getpid())
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - t0
        ns1, sw1 = proc_cpu(os.getpid())
        res.update(tasks=ntasks, queues=len(qs), seconds=round(wall, 3),
                   cpu_ms=round((ns1 - ns0) / 1e6, 3),
                   cpu_pct=round((ns1 - ns0) / 1e9 / wall * 100, 4),
                   switches_per_s=round((sw1 - sw0) / wall, 2))
        for q in qs:                    # end them all: one item per task
            for _ in range(ntasks // len(qs) + 1):
                q.put(None)
        await asyncio.gather(*tasks)
    asyncio.run(main())
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=5000)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--idle-tasks', type=int, default=1000)
    ap.add_argument('--idle-seconds', type=float, default=3.0)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    out = {'bench': 'py_aio', 'python': sys.version.split()[0], 'rounds': a.rounds,
           'results': [], 'skipped': [], 'errors': []}
    modes = ['xichan blocking', 'xichan asyncio', 'xichan asyncio both']
    try:
        import uvloop  # noqa: F401
        modes.append('xichan uvloop')
    except ImportError:
        out['skipped'].append('xichan uvloop: uvloop not installed')
    for m in modes:
        log(f'  {m} ...')
        out['results'].append(rt_xichan(m, a.rounds, a.reps))
    log('  mp.Queue executor ...')
    out['results'].append(rt_mp(a.rounds, a.reps))
    try:
        import iceoryx2  # noqa: F401
        log('  iceoryx2 WaitSet ...')
        try:
            out['results'].append(rt_iox(a.rounds, a.reps))
        except Exception as e:   # a comparison point, never the bench's failure
            out['errors'].append(f'iceoryx2: {type(e).__name__}: {e}')
    except ImportError:
        out['skipped'].append('iceoryx2: not installed')
    log(f'  idle: {a.idle_tasks} awaiting tasks ...')
    out['idle'] = idle(a.idle_tasks, a.idle_seconds)
    if a.json:
        print(json.dumps(out))
    else:
        print(f'asyncio round trips across processes, 64-byte items, {a.rounds} rounds, '
              f'Python {out["python"]}, unpinned')
        print(f'{"mode":<32}{"p50 us":>10}{"p99 us":>10}')
        for r in out['results']:
            print(f'{r["mode"]:<32}{r["p50_us"]:>10.1f}{r["p99_us"]:>10.1f}')
        d = out['idle']
        print(f'idle: {d["tasks"]} tasks awaiting get_async on {d["queues"]} queues: '
              f'{d["cpu_ms"]} ms CPU in {d["seconds"]} s ({d["cpu_pct"]}%), '
              f'{d["switches_per_s"]} context switches/s')
        for s in out['skipped'] + out['errors']:
            print('  note:', s)


if __name__ == '__main__':
    main()
