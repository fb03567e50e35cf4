"""Event loops: asyncio awaitables (get_async, put_async, recv_async,
send_async) under the default loop and uvloop when installed, their
cancellation safety, xichan.select and WaitSet over many queues, a waiting
process killed -9 repeatedly, and the pyext/README.md asyncio example run
from the README's own text.

Sized for a 2-core CI box: 10,000 tasks on 100 queues fed by another
process, 10,000 cancellations and timeouts, select over 1,000 queues."""
import asyncio
import os
import pickle
import random
import re
import selectors
import signal
import subprocess
import sys
import time
import unittest
import warnings

import _env
from _env import XTestCase, spawn_py

import xichan
from xichan import channels, queues

try:
    import uvloop
except ImportError:
    uvloop = None

README = os.path.join(_env.ROOT, 'pyext', 'README.md')


def run(coro_fn, loop_kind):
    if loop_kind == 'uvloop':
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


class AioCases:
    """The asyncio cases, run once per loop kind (subclasses set LOOP)."""
    LOOP = 'asyncio'
    timeout = 120

    def test_tasks_on_queues_fed_from_another_process(self):
        nq, ntasks = 100, 10000
        qs = [queues.create(syncobj=True) for _ in range(nq)]
        p = spawn_py('''
            qs = pickle.loads(bytes.fromhex(sys.argv[1]))
            for i in range(int(sys.argv[2])):
                qs[i % len(qs)].put(i)
            sys.stdin.read()   # stay alive until the items are taken
        ''', pickle.dumps(qs).hex(), ntasks, stdin=subprocess.PIPE)

        async def main():
            async def one(q):
                return await q.get_async(timeout=60)
            tasks = [asyncio.ensure_future(one(qs[i % nq])) for i in range(ntasks)]
            return await asyncio.gather(*tasks)

        got = run(main, self.LOOP)
        p.communicate('', timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(sorted(got), list(range(ntasks)))
        self.assertEqual([q.qsize() for q in qs], [0] * nq)

    def test_cancellations_and_timeouts_lose_and_duplicate_nothing(self):
        q = queues.create(syncobj=True)
        nitems, nwaits = 3000, 10000
        p = spawn_py('''
            q = pickle.loads(bytes.fromhex(sys.argv[1]))
            for i in range(int(sys.argv[2])):
                q.put(i)
                if i % 64 == 0:
                    time.sleep(0.001)
            sys.stdin.read()
        ''', pickle.dumps(q).hex(), nitems, stdin=subprocess.PIPE)
        got = []
        stats = {'cancelled': 0, 'timed out': 0}

        async def main():
            rnd = random.Random(13)

            async def waiter(k):
                if k % 2:
                    try:
                        got.append(await q.get_async(timeout=rnd.random() * 0.002))
                    except queues.QueueEmpty:
                        stats['timed out'] += 1
                    return
                t = asyncio.ensure_future(q.get_async())
                await asyncio.sleep(rnd.random() * 0.002)
                if t.done():
                    got.append(t.result())
                    return
                t.cancel()
                try:
                    got.append(await t)   # it may have finished before the cancel landed
                except asyncio.CancelledError:
                    stats['cancelled'] += 1

            for start in range(0, nwaits, 500):
                await asyncio.gather(*(waiter(k) for k in range(start, start + 500)))

        run(main, self.LOOP)
        # Drain what is left (the producer has put everything once it reads
        # stdin), then one more look: a duplicate would show there.
        deadline = time.monotonic() + 60
        while len(got) < nitems and time.monotonic() < deadline:
            try:
                got.append(q.get(timeout=1))
            except queues.QueueEmpty:
                pass
        p.communicate('', timeout=60)
        self.assertEqual(p.returncode, 0)
        try:
            got.append(q.get_nowait())
        except queues.QueueEmpty:
            pass
        self.assertEqual(sorted(got), list(range(nitems)))   # each exactly once
        self.assertGreater(stats['cancelled'] + stats['timed out'], 1000)

    def test_put_async_waits_for_room_and_cancelled_puts_nothing(self):
        q = queues.create(maxsize=2, syncobj=True)

        async def main():
            await q.put_async(0)
            await q.put_async(1)
            with self.assertRaises(queues.QueueFull):
                await q.put_async(99, timeout=0.02)
            t = asyncio.ensure_future(q.put_async(98))
            await asyncio.sleep(0.01)
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            t = asyncio.ensure_future(q.put_async(2))
            await asyncio.sleep(0.01)
            self.assertFalse(t.done())
            self.assertEqual(await q.get_async(), 0)
            await asyncio.wait_for(t, 10)
            return [q.get_nowait(), q.get_nowait()]

        self.assertEqual(run(main, self.LOOP), [1, 2])
        self.assertTrue(q.empty())

    def test_channel_send_and_recv_async(self):
        r, s = channels.create()
        sent, got = set(), []

        async def main():
            rnd = random.Random(7)

            async def sender(i):
                try:
                    await s.send_async(i, timeout=rnd.random() * 0.004)
                    sent.add(i)
                except TimeoutError:
                    pass

            async def receiver():
                while True:
                    try:
                        v = await r.recv_async(timeout=0.5)
                    except TimeoutError:
                        return
                    got.append(v)
                    if rnd.random() < 0.3:
                        await asyncio.sleep(0.001)

            rt = asyncio.ensure_future(receiver())
            await asyncio.gather(*(sender(i) for i in range(2000)))
            await rt

        run(main, self.LOOP)
        # A timed-out send was withdrawn; a returned one was received once.
        self.assertEqual(sorted(got), sorted(sent))
        self.assertGreater(len(sent), 0)

        async def cancelled_send():
            t = asyncio.ensure_future(s.send_async('never'))
            await asyncio.sleep(0.01)
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            with self.assertRaises(TimeoutError):
                await r.recv_async(timeout=0.01)

        run(cancelled_send, self.LOOP)
        self.assertEqual(r.recv_nowait(default='none'), 'none')

    def test_send_buffer_async_to_a_receiver_here(self):
        r, s = channels.create()
        ba = bytearray(b'abc')

        async def main():
            t = asyncio.ensure_future(s.send_buffer_async(ba))
            v = await r.recv_async(timeout=10)
            await asyncio.wait_for(t, 10)
            return bytes(v)

        self.assertEqual(run(main, self.LOOP), b'abc')

        async def withdrawn():
            with self.assertRaises(TimeoutError):
                await s.send_buffer_async(bytearray(b'zz'), timeout=0.01)

        run(withdrawn, self.LOOP)
        self.assertEqual(r.recv_nowait(default=None), None)

    def test_destroyed_queue_ends_the_await(self):
        q = queues.create()

        async def main():
            t = asyncio.ensure_future(q.get_async())
            await asyncio.sleep(0.01)
            queues.destroy(q.id)
            with self.assertRaises(queues.QueueNotFoundError):
                await asyncio.wait_for(t, 10)

        run(main, self.LOOP)


class TestAsyncio(AioCases, XTestCase):
    LOOP = 'asyncio'


@unittest.skipIf(uvloop is None, 'uvloop is not installed (optional: scripts/install-deps)')
class TestUvloop(AioCases, XTestCase):
    LOOP = 'uvloop'


class TestSelect(XTestCase):
    timeout = 120

    def test_select_over_a_thousand_queues(self):
        qs = [queues.create() for _ in range(1000)]
        self.assertEqual(xichan.select(qs, timeout=0), ([], []))
        picks = sorted(random.Random(3).sample(range(1000), 20))
        p = spawn_py('''
            qs = pickle.loads(bytes.fromhex(sys.argv[1]))
            for i in map(int, sys.argv[2].split(',')):
                time.sleep(0.002)
                qs[i].put(i)
            sys.stdin.read()
        ''', pickle.dumps(qs).hex(), ','.join(map(str, picks)), stdin=subprocess.PIPE)
        seen = []
        while len(seen) < len(picks):
            r, w = xichan.select(qs, timeout=30)
            self.assertTrue(r, 'select timed out')
            self.assertEqual(w, [])
            for q in r:
                try:
                    seen.append(q.get_nowait())
                except queues.QueueEmpty:
                    pass
        p.communicate('', timeout=30)
        self.assertEqual(sorted(seen), picks)

    def test_select_writable_channels_and_errors(self):
        full = queues.create(maxsize=1)
        full.put(0)
        free = queues.create(maxsize=1)
        r, s = channels.create()
        self.assertEqual(xichan.select([r], [full, free, s], timeout=0), ([], [free, s]))
        s.send_nowait('x')
        self.assertEqual(xichan.select([r], [full], timeout=0), ([r], []))
        with self.assertRaises(TypeError):
            xichan.select([s])
        with self.assertRaises(TypeError):
            xichan.select([], [r])
        with self.assertRaises(ValueError):
            xichan.select([r], timeout=-1)
        self.assertEqual(xichan.select([], [full], timeout=0.05), ([], []))

    def test_waitset_fileno_with_selectors(self):
        q = queues.create()
        with xichan.WaitSet() as ws:
            ws.add(q, xichan.READABLE)
            sel = selectors.DefaultSelector()
            sel.register(ws.fileno(), selectors.EVENT_READ)
            self.assertEqual(sel.select(0), [])
            p = spawn_py('''
                q = pickle.loads(bytes.fromhex(sys.argv[1]))
                q.put('from afar')
                sys.stdin.read()
            ''', pickle.dumps(q).hex(), stdin=subprocess.PIPE)
            self.assertEqual(len(sel.select(30)), 1)
            self.assertEqual(ws.wait(0), [(q, xichan.READABLE)])
            self.assertEqual(q.get_nowait(), 'from afar')
            self.assertEqual(ws.wait(0), [])
            self.assertEqual(sel.select(0), [])
            sel.close()
            p.communicate('', timeout=30)


class TestKilledWaiters(XTestCase):
    timeout = 120

    def test_waiting_process_killed_repeatedly(self):
        q = queues.create()
        for _ in range(8):
            p = spawn_py('''
                import asyncio
                q = pickle.loads(bytes.fromhex(sys.argv[1]))
                async def main():
                    t = asyncio.ensure_future(q.get_async())
                    await asyncio.sleep(0)
                    print('waiting', flush=True)
                    await t
                asyncio.run(main())
            ''', pickle.dumps(q).hex())
            self.assertEqual(p.stdout.readline().strip(), 'waiting')
            os.kill(p.pid, signal.SIGKILL)
            p.communicate(timeout=30)
        # The queue works as before: a put is taken by the next awaiting task.
        q.put('after')

        async def main():
            return await q.get_async(timeout=30)

        self.assertEqual(run(main, 'asyncio'), 'after')


class TestFork(XTestCase):
    def test_forked_child_awaits_with_its_own_wait_set(self):
        q = queues.create()

        async def once():
            with self.assertRaises(queues.QueueEmpty):
                await q.get_async(timeout=0.01)
            return xichan.select([q], timeout=0)

        # The parent has a loop's wait set and select's cached one when it forks.
        loop = asyncio.new_event_loop()
        self.assertEqual(loop.run_until_complete(once()), ([], []))
        with warnings.catch_warnings():
            # The loop's wait set has a helper thread: fork() warns (3.12+).
            warnings.simplefilter('ignore', DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                async def child():
                    return await q.get_async(timeout=30)
                code = 0 if asyncio.run(child()) == 'to the child' else 2
            finally:
                os._exit(code)
        q.put('to the child')
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        loop.close()


class TestReadme(XTestCase):
    def test_readme_asyncio_example_runs(self):
        text = open(README).read()
        m = re.search(r'<!-- asyncio example -->\s*```python\n(.*?)```', text, re.S)
        self.assertIsNotNone(m, 'pyext/README.md lost its asyncio example')
        # As a file: its multiprocessing child (spawn) imports the script.
        import subprocess, tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, 'readme_asyncio.py')
            with open(path, 'w') as f:
                f.write(m.group(1))
            p = subprocess.run([sys.executable, path], capture_output=True, text=True,
                               timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('got 100 items', p.stdout)


if __name__ == '__main__':
    unittest.main()
