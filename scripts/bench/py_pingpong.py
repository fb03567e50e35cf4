#!/usr/bin/env python3
"""py_pingpong.py -- cross-process Python ping-pong round trip: xichan vs
multiprocessing.Queue, in the same run.

Two processes, two queues: the parent puts a 64-byte bytes object on "ping",
the child gets it and puts it back on "pong", the parent gets it.  Each
round trip is timed with perf_counter_ns; the table shows median, p99 and
mean per transport, and the last line is one JSON object with the same
numbers (microseconds).

    PYTHONPATH=pyext python3 scripts/bench/py_pingpong.py [--rounds 20000] [--size 64]

Transports:
  xichan-queue      xichan.queues, syncobj=True (msgpack bytes), blocking get
  xichan-pickle     xichan.queues, syncobj=False (pickled), blocking get
  xichan-channel    xichan.channels, send_nowait + blocking recv
  mp-queue          multiprocessing.Queue (spawn context), blocking get
The xichan daemon is autostarted as usual (XICHAN_NAME etc. honoured); set
XICHAN_DAEMON=build/bin/xichand to use the in-tree one.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYEXT = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'pyext')
if PYEXT not in sys.path:
    sys.path.insert(0, PYEXT)


def echo_queue(ping, pong):
    while True:
        v = ping.get()
        if v is None:
            return
        pong.put(v)


def echo_channel(r, s):
    while True:
        v = r.recv()
        if v is None:
            return
        s.send_nowait(v)


def measure(put, get, rounds, payload, warmup=500):
    for _ in range(warmup):
        put(payload)
        get()
    rtts = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        t0 = clock()
        put(payload)
        get()
        rtts.append(clock() - t0)
    return rtts


def run_xichan_queue(ctx, rounds, payload, syncobj):
    from xichan import queues
    ping, pong = queues.create(syncobj=syncobj), queues.create(syncobj=syncobj)
    p = ctx.Process(target=echo_queue, args=(ping, pong))
    p.start()
    try:
        return measure(ping.put, pong.get, rounds, payload)
    finally:
        ping.put(None)
        p.join(30)


def run_xichan_channel(ctx, rounds, payload):
    from xichan import channels
    r1, s1 = channels.create()
    r2, s2 = channels.create()
    p = ctx.Process(target=echo_channel, args=(r1, s2))
    p.start()
    try:
        return measure(s1.send_nowait, r2.recv, rounds, payload)
    finally:
        s1.send_nowait(None)
        p.join(30)


def run_mp_queue(ctx, rounds, payload):
    ping, pong = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=echo_queue, args=(ping, pong))
    p.start()
    try:
        return measure(ping.put, pong.get, rounds, payload)
    finally:
        ping.put(None)
        p.join(30)


def summary(ns):
    us = sorted(n / 1000 for n in ns)
    return {
        'median_us': round(statistics.median(us), 2),
        'p99_us': round(us[min(len(us) - 1, int(len(us) * 0.99))], 2),
        'mean_us': round(statistics.fmean(us), 2),
        'rounds': len(us),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rounds', type=int, default=20000)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--only', help='comma-separated transports to run')
    args = ap.parse_args()
    ctx = mp.get_context('spawn')
    payload = bytes(range(256)) * (args.size // 256) + bytes(args.size % 256)
    runs = {
        'xichan-queue': lambda: run_xichan_queue(ctx, args.rounds, payload, True),
        'xichan-pickle': lambda: run_xichan_queue(ctx, args.rounds, payload, False),
        'xichan-channel': lambda: run_xichan_channel(ctx, args.rounds, payload),
        'mp-queue': lambda: run_mp_queue(ctx, args.rounds, payload),
    }
    only = args.only.split(',') if args.only else list(runs)
    results = {}
    for name in only:
        results[name] = summary(runs[name]())
    print(f'Python {sys.version.split()[0]}, {args.rounds} round trips of {args.size} bytes, '
          f'{os.cpu_count()} CPUs')
    print(f'{"transport":<16}{"median us":>12}{"p99 us":>12}{"mean us":>12}')
    for name, r in results.items():
        print(f'{name:<16}{r["median_us"]:>12.2f}{r["p99_us"]:>12.2f}{r["mean_us"]:>12.2f}')
    print(json.dumps({'bench': 'py_pingpong', 'python': sys.version.split()[0],
                      'size': args.size, 'rounds': args.rounds, 'results': results}))


if __name__ == '__main__':
    main()
