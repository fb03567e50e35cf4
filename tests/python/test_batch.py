"""Queue.put_many/get_many (and the _nowait variants): order, exactly once
across processes, maxsize, timeouts, errors, unbound ops, mixed syncobj.
The decisions are in pyext/_xichan/ops_queue.c ("batches")."""
import pickle
import signal
import threading
import time

import _env
from _env import XTestCase, Producer, spawn_py

from xichan import queues, NotShareableError


class Unpicklable:
    def __reduce__(self):
        return (_boom, ())


def _boom():
    raise RuntimeError('cannot unpickle')


class TestPutGetMany(XTestCase):

    def test_order_and_types(self):
        q = queues.create(syncobj=True)
        items = [None, True, 1, -2**63, 1.5, 'ü', b'\x00' * 100, (1, ('x', b'y')), q]
        q.put_many(items)
        self.assertEqual(q.qsize(), len(items))
        got = q.get_many(100)
        self.assertEqual(got[:-1], items[:-1])
        self.assertIs(got[-1], q)
        self.assertTrue(q.empty())

    def test_iterables_and_empty(self):
        q = queues.create()
        q.put_many(iter(range(5)))
        q.put_many(x for x in 'ab')
        q.put_many([])
        q.put_many(())
        self.assertEqual(q.get_many(3), [0, 1, 2])
        self.assertEqual(q.get_many_nowait(10), [3, 4, 'a', 'b'])
        with self.assertRaises(TypeError):
            q.put_many(5)

    def test_many_more_than_a_chunk(self):
        q = queues.create(syncobj=True)
        q.put_many(range(1000))
        self.assertEqual(q.get_many(700), list(range(700)))
        self.assertEqual(q.get_many(700), list(range(700, 1000)))

    def test_mixed_syncobj(self):
        q = queues.create(syncobj=True)
        q.put_many([1, 2])
        q.put_many([{'a': 1}, [2]], syncobj=False)
        q.put(3)
        q.put({4}, syncobj=False)
        self.assertEqual(q.get_many(10), [1, 2, {'a': 1}, [2], 3, {4}])
        p = queues.create()  # pickled by default
        p.put_many([object, (1, 2)])
        p.put_many([b'x'], syncobj=True)
        self.assertEqual(p.get_many(5), [object, (1, 2), b'x'])

    def test_unshareable_puts_nothing(self):
        q = queues.create(syncobj=True)
        with self.assertRaises(NotShareableError):
            q.put_many([1, 2, [3]])
        with self.assertRaises(OverflowError):
            q.put_many([1, 2**64])
        # handles taken for earlier items are given back
        q.put_many([q, object()] if False else [q])
        self.assertIs(q.get(), q)
        self.assertTrue(q.empty())

    def test_max_items(self):
        q = queues.create()
        for bad in (0, -1):
            with self.assertRaises(ValueError):
                q.get_many(bad)
        for bad in ('1', 1.5, None):
            with self.assertRaises(TypeError):
                q.get_many(bad)
        q.put_many(range(3))
        self.assertEqual(q.get_many(True), [0])
        self.assertEqual(q.get_many(2**40), [1, 2])

    def test_get_many_waits_only_for_the_first(self):
        q = queues.create()
        with self.assertTakes(0.09, 2):
            with self.assertRaises(queues.QueueEmpty):
                q.get_many(5, timeout=0.1)
        with self.assertRaises(queues.QueueEmpty):
            q.get_many_nowait(5)
        with self.assertRaises(queues.QueueEmpty):
            q.get_many(5, block=False)

        # The second item is put only once get_many() has returned: one that
        # waited for more than the first would sit out its whole timeout
        # (10 s), past the 5 s hang bound.
        returned = threading.Event()

        def feed():
            time.sleep(0.1)
            q.put(1)
            returned.wait(10)
            q.put(2)
        t = threading.Thread(target=feed)
        t.start()
        try:
            with self.assertTakes(0.05, 5):
                got = q.get_many(5, timeout=10)
        finally:
            returned.set()
        self.assertEqual(got, [1])
        t.join(10)
        self.assertEqual(q.get_many(5), [2])

    def test_timeouts_checked(self):
        q = queues.create()
        with self.assertRaises(ValueError):
            q.put_many([1], timeout=-1)
        with self.assertRaises(TypeError):
            q.put_many([1], timeout='1')
        with self.assertRaises(ValueError):
            q.get_many(1, timeout=-1)
        with self.assertRaises(TypeError):
            q.get_many(1, timeout='1')
        self.assertTrue(q.empty())

    def test_maxsize_partial_timeout(self):
        q = queues.create(3)
        with self.assertTakes(0.09, 2):
            with self.assertRaises(queues.QueueFull) as cm:
                q.put_many(range(5), timeout=0.1)
        self.assertEqual(cm.exception.count, 3)
        self.assertTrue(q.full())
        with self.assertRaises(queues.QueueFull) as cm:
            q.put_many_nowait([9])
        self.assertEqual(cm.exception.count, 0)
        with self.assertRaises(queues.QueueFull) as cm:
            q.put_many([9], block=False)
        self.assertEqual(cm.exception.count, 0)
        self.assertEqual(q.get_many(10), [0, 1, 2])
        q.put_many_nowait([7, 8])
        with self.assertRaises(queues.QueueFull) as cm:
            q.put_many_nowait([9, 10])
        self.assertEqual(cm.exception.count, 1)
        self.assertEqual(q.get_many(10), [7, 8, 9])

    def test_maxsize_waits_for_room(self):
        q = queues.create(4, syncobj=True)
        got = []

        def drain():
            while len(got) < 100:
                got.extend(q.get_many(3, timeout=10))
        t = threading.Thread(target=drain)
        t.start()
        q.put_many(range(100), timeout=30)
        t.join(30)
        self.assertEqual(got, list(range(100)))

    def test_decode_error_keeps_the_rest(self):
        q = queues.create()
        q.put_many([1, Unpicklable(), 3])
        with self.assertRaises(RuntimeError) as cm:
            q.get_many(10)
        self.assertEqual(cm.exception.items, [1, 3])
        self.assertTrue(q.empty())

    def test_destroyed_queue(self):
        q = queues.create()
        qid = q.id
        queues.destroy(q)
        with self.assertRaises(queues.QueueNotFoundError):
            q.put_many([1])
        with self.assertRaises(queues.QueueNotFoundError):
            q.get_many(1)
        self.assertIsInstance(qid, int)


class TestInterrupt(XTestCase):

    def interrupted(self, fn):
        # A signal handler that raises ends the wait (module.c: xp_interrupt).
        # fn waits at most 10 s: raising only once that wait ran out (the
        # handler run late) would take longer than the 5 s hang bound.
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0)
        old = signal.signal(signal.SIGALRM,
                            lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with self.assertRaises(KeyboardInterrupt):
                fn()
        finally:
            signal.signal(signal.SIGALRM, old)
        self.assertLess(time.monotonic() - t0, 5)

    def test_get_many_interrupted(self):
        q = queues.create()
        self.interrupted(lambda: q.get_many(10, timeout=10))

    def test_put_many_interrupted(self):
        q = queues.create(2)
        self.interrupted(lambda: q.put_many(range(5), timeout=10))
        self.assertEqual(q.get_many(10), [0, 1])  # the first two went in


class TestUnbound(XTestCase):

    def test_unbound_ops(self):
        q = queues.create()
        p = Producer('''
            q = objs[0]
            q.put_many([1, 2], unbound=queues.UNBOUND_REMOVE)
            q.put_many([3, 4])
            q.put_many([5], syncobj=True, unbounditems=queues.UNBOUND_ERROR)
            q.put_many([6], syncobj=True, unbound=queues.UNBOUND_REMOVE)
            q.put_many([7], syncobj=True)
        ''', q)
        self.assertEqual(q.qsize(), 7)
        p.finish(unbind=True)
        self.assertEqual(q.qsize(), 4)
        self.assertEqual(q.get_many(10), [queues.UNBOUND, queues.UNBOUND])
        with self.assertRaises(queues.ItemInterpreterDestroyed):
            q.get_many(10)
        self.assertIs(q.get_many(10)[0], queues.UNBOUND)
        self.assertTrue(q.empty())

    def test_both_spellings(self):
        q = queues.create()
        with self.assertRaises(TypeError):
            q.put_many([1], unbound=queues.UNBOUND_ERROR, unbounditems=queues.UNBOUND_REMOVE)


class TestCrossProcess(XTestCase):

    def test_exactly_once_two_consumers(self):
        n = 20000
        src, out = queues.create(64, syncobj=True), queues.create(syncobj=True)
        done = queues.create()
        code = '''
            src, out, done = pickle.loads(bytes.fromhex(sys.argv[1]))
            seen = []
            while True:
                batch = src.get_many(50, timeout=60)
                seen.extend(x for x in batch if x is not None)
                ends = batch.count(None)
                if ends:
                    src.put_many([None] * (ends - 1))  # the other consumer's
                    break
            out.put_many(seen)
            out.put(None)
            done.get(timeout=60)  # our items stay bound until they are taken
        '''
        arg = pickle.dumps((src, out, done)).hex()
        kids = [spawn_py(code, arg) for _ in range(2)]
        for i in range(0, n, 100):
            src.put_many(range(i, i + 100), timeout=60)
        src.put_many([None, None], timeout=60)
        got, ends = [], 0
        while ends < 2:
            for x in out.get_many(1000, timeout=60):
                if x is None:
                    ends += 1
                else:
                    got.append(x)
        done.put_many(['exit'] * 2)
        for k in kids:
            stdout, stderr = k.communicate(timeout=60)
            self.assertEqual(k.returncode, 0, stderr)
        self.assertEqual(sorted(got), list(range(n)))

    def test_order_one_consumer(self):
        src, out = queues.create(10), queues.create()
        code = '''
            src, out = pickle.loads(bytes.fromhex(sys.argv[1]))
            got = []
            while len(got) < 5000:
                got.extend(src.get_many(7, timeout=60))
            out.put(got == list(range(5000)))
            src.get(timeout=60)
        '''
        k = spawn_py(code, pickle.dumps((src, out)).hex())
        for i in range(0, 5000, 250):
            src.put_many(range(i, i + 250), timeout=60)
        self.assertIs(out.get(timeout=60), True)
        src.put('exit')
        k.communicate(timeout=60)
        self.assertEqual(k.returncode, 0)


if __name__ == '__main__':
    import unittest
    unittest.main()
