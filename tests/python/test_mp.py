"""xichan.multiprocessing: multiprocessing's Queue, SimpleQueue and
JoinableQueue over xichan queues.  CPython's own tests run against it in
test_mp_cpython.py; these cover what they do not: the signatures, passing
queues to Pool and ProcessPoolExecutor tasks under every start method,
sharing a queue with xichan.queues, close(), and JoinableQueue's count
when processes die at chosen points (SIGKILL inside a patched step).
"""
import concurrent.futures as cf
import inspect
import multiprocessing
import multiprocessing.queues
import os
import pickle
import queue as pyqueue
import signal
import threading

import _env
from _env import XTestCase

from _xmpworkers import (square_into, take_and_die, die_inside_put, die_inside_task_done,
                         consume_and_answer, join_then_report)
import xichan.multiprocessing as xmp
from xichan import queues

START_METHODS = ('fork', 'spawn', 'forkserver')


class TestSignatures(XTestCase):

    def test_same_parameters_as_multiprocessing(self):
        mq = multiprocessing.queues
        pairs = [(xmp.Queue, mq.Queue), (xmp.JoinableQueue, mq.JoinableQueue),
                 (xmp.SimpleQueue, mq.SimpleQueue)]
        for ours, theirs in pairs:
            for name, member in inspect.getmembers(theirs, inspect.isfunction):
                if name.startswith('_'):
                    continue
                self.assertTrue(hasattr(ours, name), f'{ours.__name__}.{name} missing')
                want = list(inspect.signature(member).parameters)
                got = list(inspect.signature(getattr(ours, name)).parameters)
                if name == 'join':  # ours adds an optional timeout
                    got = [p for p in got if p != 'timeout']
                self.assertEqual(got, want, f'{ours.__name__}.{name}')
        self.assertEqual(list(inspect.signature(xmp.Queue).parameters), ['maxsize', 'ctx'])

    def test_exceptions_are_the_queue_modules(self):
        q = xmp.Queue(1)
        self.assertRaises(pyqueue.Empty, q.get_nowait)
        q.put_nowait(1)
        self.assertRaises(pyqueue.Full, q.put_nowait, 2)
        self.assertRaises(pyqueue.Full, q.put, 2, True, 0.05)
        self.assertRaises(pyqueue.Full, q.put, 2, True, -1)  # negative: no wait
        self.assertIs(xmp.Empty, pyqueue.Empty)
        self.assertIs(xmp.Full, pyqueue.Full)

    def test_every_public_name_has_a_docstring(self):
        for cls in (xmp.Queue, xmp.JoinableQueue, xmp.SimpleQueue):
            self.assertTrue(cls.__doc__)
            for name, member in inspect.getmembers(cls):
                if not name.startswith('_') and callable(member):
                    self.assertTrue(member.__doc__, f'{cls.__name__}.{name}')


class TestAcrossProcesses(XTestCase):
    timeout = 180

    def test_pool_tasks_under_every_start_method(self):
        for method in START_METHODS:
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                q = xmp.Queue()
                with ctx.Pool(2) as pool:
                    self.assertEqual(pool.starmap(square_into, [(q, n) for n in range(6)]),
                                     list(range(6)))
                    got = sorted(q.get(timeout=30) for _ in range(6))
                self.assertEqual(got, [n * n for n in range(6)])
                self.assertTrue(q.empty())

    def test_process_pool_executor_tasks_under_every_start_method(self):
        for method in START_METHODS:
            with self.subTest(method=method):
                q = xmp.SimpleQueue()
                with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as ex:
                    self.assertEqual(list(ex.map(square_into, [q] * 4, range(4))), list(range(4)))
                    got = sorted(q.get() for _ in range(4))
                self.assertEqual(got, [0, 1, 4, 9])

    def test_results_outlive_the_pool(self):
        # What a worker put is there after the pool is gone, as with
        # multiprocessing's queues.
        q = xmp.Queue()
        with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn')) as ex:
            self.assertEqual(list(ex.map(square_into, [q] * 5, range(5))), list(range(5)))
        self.assertEqual(sorted(q.get(timeout=30) for _ in range(5)), [0, 1, 4, 9, 16])

    def test_multiprocessing_queue_cannot_do_that(self):
        # What the drop-in adds: multiprocessing's own Queue refuses to be
        # pickled outside process start.
        with self.assertRaises(RuntimeError):
            pickle.dumps(multiprocessing.Queue())
        q = xmp.Queue()
        self.assertEqual(pickle.loads(pickle.dumps(q)).queue.id, q.queue.id)

    def test_joinable_queue_join_waits_for_every_task(self):
        for method in ('fork', 'spawn'):
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                jq, out = xmp.JoinableQueue(), xmp.Queue()
                workers = [ctx.Process(target=consume_and_answer, args=(jq, out))
                           for _ in range(2)]
                for w in workers:
                    w.start()
                for n in range(20):
                    jq.put(n)
                jq.join()
                # Every task was done, so every answer is in.
                self.assertEqual(out.qsize(), 20)
                self.assertEqual(sorted(out.get_nowait() for _ in range(20)),
                                 [n * 10 for n in range(20)])
                for w in workers:
                    jq.put(None)
                jq.join()
                for w in workers:
                    w.join(30)
                    self.assertEqual(w.exitcode, 0)


class TestSharing(XTestCase):

    def test_from_queue_and_queue_share_one_queue(self):
        xq = queues.create(name='mp.shared')
        try:
            q = xmp.Queue.from_queue(xq)
            self.assertIs(q.queue, xq)
            xq.put('from queues')
            self.assertEqual(q.get(timeout=5), 'from queues')
            q.put('from multiprocessing')
            self.assertEqual(queues.open('mp.shared').get(timeout=5), 'from multiprocessing')
            # A pickled handle is the same queue.
            self.assertEqual(pickle.loads(pickle.dumps(q)).queue.id, xq.id)
        finally:
            queues.destroy(xq)

    def test_from_queue_refuses_other_things(self):
        self.assertRaises(TypeError, xmp.Queue.from_queue, 5)
        self.assertRaises(TypeError, xmp.JoinableQueue.from_queue, queues.create())

    def test_maxsize(self):
        q = xmp.Queue(2)
        self.assertEqual(q.queue.maxsize, 2)
        q.put(1)
        q.put(2)
        self.assertTrue(q.full())
        self.assertFalse(xmp.Queue(-3).full())


class TestClose(XTestCase):

    def test_queue_close(self):
        q = xmp.Queue()
        q.put('stays')
        with self.assertRaisesRegex(AssertionError, 'not closed'):
            q.join_thread()
        other = pickle.loads(pickle.dumps(q))
        q.close()
        q.join_thread()
        q.cancel_join_thread()
        with self.assertRaisesRegex(ValueError, 'is closed'):
            q.put(1)
        with self.assertRaisesRegex(ValueError, 'is closed'):
            q.get()
        self.assertEqual(q.qsize(), 1)
        # The item is not lost: another handle still gets it.
        self.assertEqual(other.get(timeout=5), 'stays')

    def test_simple_queue_close(self):
        q = xmp.SimpleQueue()
        q.put(1)
        q.close()
        q.close()
        for call in (q.get, q.empty, lambda: q.put(2)):
            with self.assertRaisesRegex(OSError, 'is closed'):
                call()


class TestJoinableCount(XTestCase):
    """What the count of unfinished tasks does when processes die
    (the decision is in xichan.multiprocessing's docstring)."""
    timeout = 120

    def start(self, target, *args, method='fork'):
        p = multiprocessing.get_context(method).Process(target=target, args=args)
        p.start()
        self.addCleanup(p.join, 30)
        return p

    def test_task_done_too_many_times(self):
        jq = xmp.JoinableQueue()
        jq.put(1)
        jq.get()
        jq.task_done()
        with self.assertRaisesRegex(ValueError, 'too many times'):
            jq.task_done()
        jq.join()

    def test_worker_killed_holding_an_item_leaves_its_task_unfinished(self):
        jq, started, release = xmp.JoinableQueue(), xmp.Queue(), xmp.Queue()
        jq.put('work')
        p = self.start(take_and_die, jq, started, release)
        self.assertEqual(started.get(timeout=30), 'took')
        release.put(None)
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertTrue(jq.empty())
        # The work was not done: join() does not pretend it was.
        with self.assertRaises(TimeoutError):
            jq.join(timeout=1)
        # A supervisor that knows the worker died ends its task for it.
        jq.task_done()
        jq.join()

    def test_killed_inside_put_leaves_one_task_unfinished(self):
        jq = xmp.JoinableQueue()
        p = self.start(die_inside_put, jq)
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        self.assertTrue(jq.empty())          # no item ...
        with self.assertRaises(TimeoutError):  # ... but its task counts
            jq.join(timeout=1)
        jq.task_done()
        jq.join()
        with self.assertRaises(ValueError):
            jq.task_done()

    def test_killed_inside_task_done_before_the_wake(self):
        jq = xmp.JoinableQueue()
        jq.put('work')
        joined = threading.Event()
        errors = []

        def joiner():
            try:
                jq.join(timeout=3)
                joined.set()
            except TimeoutError as e:
                errors.append(e)

        t = threading.Thread(target=joiner)
        t.start()
        self.assertTrue(_env.wait_for(lambda: jq._joiners.qsize() >= 1, timeout=30))
        p = self.start(die_inside_task_done, jq, method='spawn')  # threads here
        p.join(30)
        self.assertEqual(p.exitcode, -signal.SIGKILL)
        t.join(30)
        # The joiner already waiting was not woken (its timeout ended it) ...
        self.assertFalse(joined.is_set())
        self.assertEqual(len(errors), 1)
        # ... but the count is zero, and a join() now returns at once.
        jq.join()
        with self.assertRaises(ValueError):
            jq.task_done()

    def test_join_wakes_every_joiner_in_every_process(self):
        jq = xmp.JoinableQueue()
        for n in range(3):
            jq.put(n)
        done, release = xmp.Queue(), xmp.Queue()
        ctx = multiprocessing.get_context('fork')
        joiners = [ctx.Process(target=join_then_report, args=(jq, done, release))
                   for _ in range(3)]
        for j in joiners:
            j.start()
        self.assertTrue(_env.wait_for(lambda: jq._joiners.qsize() >= 3, timeout=30))
        self.assertTrue(done.empty())
        for _ in range(3):
            jq.get()
            jq.task_done()
        self.assertEqual(sorted(done.get(timeout=30) for _ in range(3)), ['joined'] * 3)
        for _ in joiners:
            release.put(None)
        for j in joiners:
            j.join(30)
            self.assertEqual(j.exitcode, 0)
