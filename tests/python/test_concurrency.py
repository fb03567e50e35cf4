"""Concurrency: CHECKLIST.md items 103-105 with threads (processes:
test_crossproc.py), and the GIL being released while blocked."""
import threading
import time

import _env
from _env import XTestCase

from xichan import channels, queues


class TestConcurrency(XTestCase):

    def test_four_consumers_exactly_once(self):  # 103
        q = queues.create(syncobj=True)
        got = [[] for _ in range(4)]

        def consume(mine):
            while True:
                v = q.get(timeout=30)
                if v is None:
                    return
                mine.append(v)
        ts = [threading.Thread(target=consume, args=(g,)) for g in got]
        for t in ts:
            t.start()
        for i in range(2000):
            q.put(i)
        for _ in ts:
            q.put(None)
        for t in ts:
            t.join(30)
        allgot = sorted(v for g in got for v in g)
        self.assertEqual(allgot, list(range(2000)))

    def test_channel_consumers_exactly_once(self):  # 103 (channels)
        r, s = channels.create()
        got = []
        lock = threading.Lock()

        def consume():
            while True:
                v = r.recv(timeout=30)
                if v is None:
                    return
                with lock:
                    got.append(v)
        ts = [threading.Thread(target=consume) for _ in range(4)]
        for t in ts:
            t.start()
        for i in range(1000):
            s.send_nowait(i)
        for _ in ts:
            s.send(None, timeout=30)
        for t in ts:
            t.join(30)
        self.assertEqual(sorted(got), list(range(1000)))

    def test_producers_keep_their_order(self):  # 104
        q = queues.create(100, syncobj=True)

        def produce(k):
            for i in range(500):
                q.put((k, i), timeout=30)
        ts = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        seen = {k: [] for k in range(4)}
        for _ in range(2000):
            k, i = q.get(timeout=30)
            seen[k].append(i)
        for t in ts:
            t.join(30)
        for k in range(4):
            self.assertEqual(seen[k], list(range(500)))

    def test_snapshots_under_load(self):  # 105
        q = queues.create(50, syncobj=True)
        stop = threading.Event()
        errors = []

        def churn():
            try:
                while not stop.is_set():
                    try:
                        q.put_nowait(1)
                    except queues.QueueFull:
                        pass
                    try:
                        q.get_nowait()
                    except queues.QueueEmpty:
                        pass
            except Exception as e:  # pragma: no cover
                errors.append(e)
        ts = [threading.Thread(target=churn) for _ in range(3)]
        for t in ts:
            t.start()
        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:
            n = q.qsize()
            self.assertTrue(0 <= n <= 50)
            self.assertIs(type(q.empty()), bool)
            self.assertIs(type(q.full()), bool)
        stop.set()
        for t in ts:
            t.join(10)
        self.assertEqual(errors, [])
        # At rest, the three answers agree with each other and with a drain.
        n = q.qsize()
        self.assertEqual(q.empty(), n == 0)
        self.assertEqual(q.full(), n == 50)
        self.assertEqual(q.get_many(100, block=False) if n else [], [1] * n)
        self.assertTrue(q.empty())

    def test_gil_released_while_blocked(self):
        q = queues.create()
        counter = [0]
        done = threading.Event()

        def blocked():
            try:
                q.get(timeout=0.5)
            except queues.QueueEmpty:
                pass
            done.set()
        t = threading.Thread(target=blocked)
        t.start()
        while not done.is_set():
            counter[0] += 1
        t.join()
        self.assertGreater(counter[0], 1000)
