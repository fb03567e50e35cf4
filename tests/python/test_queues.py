"""Queues: CHECKLIST.md items 67-102 (capacity, put/get, syncobj,
lifetime, list_all, unbound items), other participants being threads and
processes (subinterpreter variants: test_subinterp.py)."""
import pickle
import queue as stdqueue
import threading
import time

import _env
from _env import XTestCase, Producer, run_py, wait_for

import xichan
from xichan import channels, queues, _xichan


def later(delay, fn):
    def run():
        time.sleep(delay)
        fn()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


class IntSub(int):
    pass


class TestCapacity(XTestCase):

    def test_maxsize(self):  # 67
        self.assertEqual(queues.create().maxsize, 0)
        self.assertEqual(queues.create(3).maxsize, 3)
        self.assertEqual(queues.create(-10).maxsize, -10)
        self.assertEqual(queues.create(True).maxsize, 1)

    def test_maxsize_types(self):  # 68
        for bad in ('1', 1.5, None):
            with self.assertRaises(TypeError):
                queues.create(bad)
        with self.assertRaises(OverflowError):
            queues.create(2**63)

    def test_unbounded(self):  # 69
        for maxsize in (0, -1):
            q = queues.create(maxsize)
            for i in range(10000):
                q.put_nowait(i, syncobj=True)
            self.assertEqual(q.qsize(), 10000)
            self.assertFalse(q.full())

    def test_qsize(self):  # 70
        q = queues.create()
        seen = [q.qsize()]
        for op in 'ppp' 'g' 'p' 'gg' 'g' 'p' 'g':
            if op == 'p':
                q.put(None)
            else:
                q.get()
            seen.append(q.qsize())
            self.assertEqual(q.empty(), q.qsize() == 0)
        self.assertEqual(seen, [0, 1, 2, 3, 2, 3, 2, 1, 0, 1, 0])

    def test_full(self):  # 71, 72
        q = queues.create(3)
        seen = [q.full()]
        for _ in range(3):
            q.put(None)
            seen.append(q.full())
        for _ in range(3):
            q.get()
            seen.append(q.full())
        self.assertEqual(seen, [False, False, False, True, False, False, False])
        for maxsize in (0, -3):
            q = queues.create(maxsize)
            self.assertFalse(q.full())
            q.put(1)
            self.assertFalse(q.full())

    def test_put_nowait_full(self):  # 73
        q = queues.create(1)
        q.put_nowait(1)
        with self.assertRaises(queues.QueueFull) as cm:
            q.put_nowait(2)
        self.assertEqual(str(cm.exception), f'queue {q.id} is full')
        with self.assertRaises(stdqueue.Full):
            q.put(2, block=False)  # 3.14 spelling
        q.get()
        q.put_nowait(2)

    def test_put_timeout(self):  # 74
        q = queues.create(1)
        q.put(1)
        # Never early; late only by a hang bound (a busy box delays wakeups).
        with self.assertTakes(0.99, 3):
            with self.assertRaises(queues.QueueFull):
                q.put(2, timeout=1)
        with self.assertTakes(0.29, 2):
            with self.assertRaises(queues.QueueFull):
                q.put(2, timeout=0.3)
        with self.assertTakes(0, 1):
            with self.assertRaises(queues.QueueFull):
                q.put(2, timeout=0)
        with self.assertRaises(ValueError):
            q.put(2, timeout=-1)
        with self.assertRaises(TypeError):
            q.put(2, timeout='1')
        self.assertEqual(q.qsize(), 1)

    def test_blocked_put(self):  # 75
        q = queues.create(1)
        q.put(1)
        later(0.2, q.get)
        with self.assertTakes(0.15, 5):
            q.put(2, timeout=10)
        self.assertEqual(q.get_nowait(), 2)

    def test_get_nowait_empty(self):  # 76
        q = queues.create()
        with self.assertRaises(stdqueue.Empty):
            q.get_nowait()
        with self.assertRaises(queues.QueueEmpty) as cm:
            q.get(block=False)
        self.assertEqual(str(cm.exception), f'queue {q.id} is empty')

    def test_get_timeout(self):  # 77
        q = queues.create()
        # Never early; late only by a hang bound (a busy box delays wakeups).
        with self.assertTakes(0, 1):
            with self.assertRaises(queues.QueueEmpty):
                q.get(timeout=0)
        with self.assertTakes(0.99, 3):
            with self.assertRaises(queues.QueueEmpty):
                q.get(timeout=1)
        with self.assertTakes(0.49, 2):
            with self.assertRaises(queues.QueueEmpty):
                q.get(timeout=0.5)
        with self.assertRaises(ValueError):
            q.get(timeout=-0.5)

    def test_blocked_get_thread(self):  # 78
        q = queues.create()
        later(0.2, lambda: q.put('late'))
        with self.assertTakes(0.15, 5):
            self.assertEqual(q.get(timeout=10), 'late')

    def test_blocked_get_process(self):  # 78 (another process)
        q = queues.create()
        p = _env.spawn_py('''
            q = pickle.loads(bytes.fromhex(sys.argv[1]))
            time.sleep(0.2)
            q.put('from child', unbound=queues.UNBOUND_ERROR)
            time.sleep(5)
        ''', pickle.dumps(q).hex())
        try:
            self.assertEqual(q.get(timeout=20), 'from child')
        finally:
            p.kill()
            p.communicate()


class TestSyncobj(XTestCase):

    def test_syncobj_true(self):  # 79
        q = queues.create()
        for v in (None, 1, 'x', b'y', (1, (2,))):
            q.put(v, syncobj=True)
            self.assertEqual(q.get(), v)
        with self.assertRaises(xichan.NotShareableError):
            q.put([1], syncobj=True)
        self.assertEqual(q.qsize(), 0)

    def test_syncobj_false(self):  # 80
        q = queues.create()
        for v in ([1, 2], {'a': [1]}, 1j, 2**100, IntSub(5), {1, 2}):
            q.put(v, syncobj=False)
            got = q.get()
            self.assertEqual(got, v)
            self.assertIs(type(got), type(v))
            self.assertIsNot(got, v)

    def test_default(self):  # 81
        q = queues.create(syncobj=True)
        with self.assertRaises(xichan.NotShareableError):
            q.put([1])
        q.put([1], syncobj=False)
        self.assertEqual(q.get(), [1])
        q2 = queues.create()
        q2.put([2])
        self.assertEqual(q2.get(), [2])

    def test_mixed(self):  # 82
        q = queues.create()
        q.put('spam!')
        q.put('spam!', syncobj=True)
        q.put([1])
        q.put(memoryview(b'm'), syncobj=True)
        self.assertEqual(q.get(), 'spam!')
        self.assertEqual(q.get(), 'spam!')
        self.assertEqual(q.get(), [1])
        self.assertEqual(bytes(q.get()), b'm')

    def test_memoryview_shared(self):  # 83
        q = queues.create()
        data = bytearray(8)
        q.put(memoryview(data), syncobj=True)
        v = q.get()
        v[0] = 42
        self.assertEqual(data[0], 42)

    def test_queue_in_queue(self):  # 84
        q = queues.create()
        q2 = queues.create()
        q.put(q2, syncobj=True)
        q.put((q2, q), syncobj=True)
        self.assertIs(q.get(), q2)
        a, b = q.get()
        self.assertIs(a, q2)
        self.assertIs(b, q)


class TestLifetime(XTestCase):

    def ids(self):
        return [q.id for q in queues.list_all()]

    def test_drop_last_destroys(self):  # 85, 86
        q = queues.create()
        q.put('pending')
        qid = q.id
        self.assertIn(qid, self.ids())
        del q
        self.assertNotIn(qid, self.ids())
        with self.assertRaises(queues.QueueNotFoundError):
            queues.Queue(qid)

    def test_in_flight_keeps_alive(self):  # 87
        carrier = queues.create()
        q = queues.create()
        qid = q.id
        carrier.put(q, syncobj=True)
        del q
        self.assertIn(qid, self.ids())
        got = carrier.get()
        self.assertEqual(got.id, qid)
        del got
        self.assertNotIn(qid, self.ids())

    def test_after_destroy(self):  # 88
        q = queues.create()
        qid = q.id
        got = []

        def blocked():
            try:
                q.get(timeout=10)
            except Exception as e:
                got.append(e)
        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.2)
        queues.destroy(q)
        t.join(10)
        self.assertIsInstance(got[0], queues.QueueNotFoundError)
        for fn in (q.qsize, lambda: q.put(1), q.get_nowait, q.full,
                   lambda: queues.Queue(qid) if queues.Queue(qid) is not q else
                   _xichan.queue_bind(qid)):
            with self.assertRaises(queues.QueueNotFoundError):
                fn()

    def test_lowlevel(self):  # 89 (xichan: queue_create binds once)
        qid = _xichan.queue_create(0, _xichan.FMT_PICKLE, 3)
        _xichan.queue_bind(qid)
        _xichan.queue_release(qid)
        _xichan.queue_release(qid)  # the creation binding: destroyed now
        with self.assertRaises(queues.QueueNotFoundError):
            _xichan.queue_destroy(qid)
        qid = _xichan.queue_create(0, _xichan.FMT_PICKLE, 3, name=f'll{time.time()}')
        _xichan.queue_release(qid)  # named: still alive
        with self.assertRaisesRegex(queues.QueueError, f'queue {qid} never bound'):
            _xichan.queue_release(qid)
        _xichan.queue_destroy(qid)
        with self.assertRaises(queues.QueueNotFoundError):
            _xichan.queue_destroy(qid)


class TestListAll(XTestCase):

    def test_fresh_namespace(self):  # 90
        import os, tempfile
        d = tempfile.mkdtemp(prefix='xichan-fresh-')
        env = dict(os.environ, XICHAN_NAME=f'fresh{os.getpid()}x{int(time.time() * 1000) % 10**8}', XICHAN_RUNTIME_DIR=d)
        import subprocess, sys
        try:
            out = subprocess.run(
                [sys.executable, '-c', 'from xichan import queues, channels;'
                 'print(queues.list_all(), channels.list_all())'],
                env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(out.stdout.strip(), '[] []', out.stderr)
        finally:
            _env.stop_daemon(d, env['XICHAN_NAME'])

    def test_any_participant_creation_order(self):  # 91
        q1 = queues.create()
        p = Producer('''
            objs[0].put(queues.create(), syncobj=True)
        ''', q1)
        q3 = queues.create()
        q2 = q1.get(timeout=10)
        ids = [q.id for q in queues.list_all()]
        self.assertLess(ids.index(q1.id), ids.index(q2.id))
        self.assertLess(ids.index(q2.id), ids.index(q3.id))
        p.finish()

    def test_channels_list_all(self):  # 92, 93
        pairs = [channels.create() for _ in range(3)]
        r4, s4 = channels.create(unbounditems=channels.UNBOUND_REMOVE)
        pairs.append((r4, s4))
        got = channels.list_all()
        self.assertTrue(set(pairs) <= set(got))
        for r, s in got:
            if r == r4:
                self.assertEqual(s._unbound, (1,))
                s.send_nowait('no explicit unbound')
                self.assertEqual(r4.recv(), 'no explicit unbound')


class TestUnbound(XTestCase):
    """The unbound ops apply when a producer's session ends by an unbind
    (a destroyed subinterpreter; here a child process that unbinds, so the
    rules are tested on every Python).  A producer whose process just ends
    leaves its items as they are: test_lifetime.py."""

    def test_default_replace(self):  # 94, 101
        q = queues.create()
        q.put('main')
        p = Producer('''
            objs[0].put('a'); objs[0].put('b', syncobj=True)
        ''', q)
        self.assertEqual(q.qsize(), 3)
        p.finish(unbind=True)
        self.assertEqual(q.qsize(), 3)
        self.assertEqual(q.get(), 'main')
        self.assertIs(q.get(), queues.UNBOUND)
        self.assertIs(q.get(), queues.UNBOUND)
        self.assertTrue(q.empty())

    def test_error(self):  # 95
        q = queues.create()
        p = Producer('''
            objs[0].put(1, unbound=queues.UNBOUND_ERROR)
            objs[0].put(2, unbounditems=queues.UNBOUND_ERROR)
        ''', q)
        p.finish(unbind=True)
        self.assertEqual(q.qsize(), 2)
        with self.assertRaises(queues.ItemInterpreterDestroyed) as cm:
            q.get_nowait()
        self.assertEqual(str(cm.exception), "item's original interpreter destroyed")
        self.assertEqual(q.qsize(), 1)
        with self.assertRaises(queues.ItemInterpreterDestroyed):
            q.get()
        self.assertEqual(q.qsize(), 0)

    def test_remove(self):  # 96, 100
        q = queues.create()
        p = Producer('''
            for i in range(3):
                objs[0].put(i, unbound=queues.UNBOUND_REMOVE)
        ''', q)
        self.assertEqual(q.qsize(), 3)
        p.finish(unbind=True)
        self.assertEqual(q.qsize(), 0)
        q.put('after tail removal')
        self.assertEqual(q.get_nowait(), 'after tail removal')

    def test_mixed(self):  # 97
        q = queues.create()
        p = Producer('''
            q = objs[0]
            q.put(1, syncobj=True, unbound=queues.UNBOUND_ERROR)
            q.put(2, syncobj=True, unbound=queues.UNBOUND)
            q.put(3, syncobj=True)
            q.put(4, syncobj=True, unbound=queues.UNBOUND_REMOVE)
            q.put(5, syncobj=True, unbound=queues.UNBOUND_REMOVE)
        ''', q)
        self.assertEqual(q.qsize(), 5)
        p.finish(unbind=True)
        self.assertEqual(q.qsize(), 3)
        with self.assertRaises(queues.ItemInterpreterDestroyed):
            q.get_nowait()
        self.assertEqual(q.qsize(), 2)
        self.assertIs(q.get_nowait(), queues.UNBOUND)
        self.assertEqual(q.qsize(), 1)
        self.assertIs(q.get_nowait(), queues.UNBOUND)
        self.assertEqual(q.qsize(), 0)

    def test_multiple(self):  # 98, 101
        q = queues.create()
        q.put('m1')
        p1 = Producer('objs[0].put("p1-a", unbound=queues.UNBOUND_REMOVE)', q)
        p2 = Producer('objs[0].put("p2-a")', q)
        q.put('m2')
        p1.finish(unbind=True)
        self.assertEqual(q.qsize(), 3)
        self.assertEqual(q.get(), 'm1')
        self.assertEqual(q.get(), 'p2-a')
        self.assertEqual(q.get(), 'm2')
        p2.finish(unbind=True)

    def test_create_default(self):  # 99
        q = queues.create(unbounditems=queues.UNBOUND_REMOVE)
        self.assertEqual(_xichan.queue_defaults(q.id)[2], 1)
        p = Producer('objs[0].put(1); objs[0].put(2)', queues.Queue(q.id))
        self.assertEqual(q.qsize(), 2)
        p.finish(unbind=True)
        self.assertEqual(q.qsize(), 0)

    def test_channel_items(self):  # 102
        r, s = channels.create()
        r.recv_nowait(None)  # keep the channel open after the producer ends
        p = Producer('''
            s = objs[0]
            s.send_nowait(1, unbound=channels.UNBOUND_ERROR)
            s.send_nowait(2)
            s.send_nowait(3, unbound=channels.UNBOUND_REMOVE)
        ''', s)
        s.send_nowait('main')
        self.assertEqual(s._info.count, 4)
        p.finish(unbind=True)
        self.assertEqual(s._info.count, 3)
        with self.assertRaises(channels.ItemInterpreterDestroyed):
            r.recv_nowait()
        self.assertIs(r.recv_nowait(), channels.UNBOUND)
        self.assertEqual(r.recv_nowait(), 'main')
