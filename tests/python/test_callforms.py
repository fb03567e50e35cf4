"""xichan.queues.Queue.put/get take both call forms: the seeds'
put(obj, timeout) / get(timeout) and multiprocessing's and 3.14's
put(obj, block, timeout) / get(block, timeout).  A bool in the first
optional position is block, a number or None is timeout; block=False does
not wait.  Waits that must expire are bounded from below only (they did
wait); nothing here asserts how fast a call is.
"""
import queue as pyqueue
import time

from _env import XTestCase

from xichan import queues


class TestCallForms(XTestCase):

    def setUp(self):
        super().setUp()
        self.q = queues.create(maxsize=2)

    def fill(self):
        self.q.put_nowait('a')
        self.q.put_nowait('b')

    def test_put_forms_that_succeed(self):
        q = queues.create()
        q.put(1)
        q.put(2, True)
        q.put(3, True, None)
        q.put(4, False)
        q.put(5, False, None)
        q.put(6, None)            # the seeds: timeout None
        q.put(7, 2.5)             # the seeds: timeout 2.5 s
        q.put(8, timeout=1)
        q.put(9, block=True, timeout=1)
        q.put(10, block=False)
        q.put(11, True, 1, unbounditems=queues.UNBOUND)
        self.assertEqual(q.get_many(20, False), list(range(1, 12)))

    def test_get_forms_that_succeed(self):
        q = queues.create()
        q.put_many(range(9))
        self.assertEqual([q.get(), q.get(True), q.get(True, None), q.get(False),
                          q.get(False, None), q.get(None), q.get(2.5),
                          q.get(timeout=1), q.get(block=True, timeout=1)],
                         list(range(9)))

    def test_block_false_does_not_wait_whatever_the_timeout(self):
        # multiprocessing ignores timeout when block is false; so do we.
        self.fill()
        for call in (lambda: self.q.put('c', False),
                     lambda: self.q.put('c', False, 30),
                     lambda: self.q.put('c', block=False, timeout=30)):
            self.assertRaises(queues.QueueFull, call)
        empty = queues.create()
        for call in (lambda: empty.get(False), lambda: empty.get(False, 30),
                     lambda: empty.get(block=False, timeout=30)):
            self.assertRaises(queues.QueueEmpty, call)
        self.assertEqual(self.q.qsize(), 2)

    def test_true_is_block_not_one_second(self):
        # get(True) blocks until an item comes (it used to be read as
        # timeout=1, raising QueueEmpty after a second).
        import threading
        q = queues.create()
        t = threading.Timer(1.5, q.put, ('late',))
        t.start()
        try:
            self.assertEqual(q.get(True), 'late')
        finally:
            t.join()

    def test_a_number_first_is_the_timeout(self):
        empty = queues.create()
        for call in (lambda: empty.get(0.2), lambda: empty.get(True, 0.2),
                     lambda: empty.get(timeout=0.2)):
            t0 = time.monotonic()
            self.assertRaises(pyqueue.Empty, call)
            self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.fill()
        for call in (lambda: self.q.put('c', 0.2), lambda: self.q.put('c', True, 0.2)):
            t0 = time.monotonic()
            self.assertRaises(pyqueue.Full, call)
            self.assertGreaterEqual(time.monotonic() - t0, 0.2)

    def test_zero_first_tries_once(self):
        self.fill()
        self.assertRaises(queues.QueueFull, self.q.put, 'c', 0)
        self.assertRaises(queues.QueueEmpty, queues.create().get, 0)

    def test_bad_forms_are_refused_and_lose_nothing(self):
        self.q.put('x')
        with self.assertRaisesRegex(TypeError, 'block must be a bool'):
            self.q.put('y', 1.0, 2.0)      # timeout twice
        with self.assertRaisesRegex(TypeError, 'block must be a bool'):
            self.q.get(1.0, 2.0)
        with self.assertRaisesRegex(TypeError, 'timeout must be a number'):
            self.q.put('y', 'soon')
        with self.assertRaisesRegex(TypeError, 'timeout must be a number'):
            self.q.get('soon')
        with self.assertRaises(ValueError):
            self.q.put('y', -1)
        with self.assertRaises(ValueError):
            self.q.get(True, -1)
        self.assertEqual(self.q.get_many(5, False), ['x'])

    def test_batches_take_both_forms(self):
        q = queues.create(maxsize=3)
        q.put_many([1, 2], True, 1)
        q.put_many([3], 1)
        with self.assertRaises(queues.QueueFull) as cm:
            q.put_many([4, 5], False)
        self.assertEqual(cm.exception.count, 0)
        self.assertEqual(q.get_many(2, True, 1), [1, 2])
        self.assertEqual(q.get_many(2, 1), [3])
        self.assertRaises(queues.QueueEmpty, q.get_many, 2, False)

    def test_signatures_show_the_multiprocessing_form(self):
        import inspect
        put = inspect.signature(queues.Queue.put)
        get = inspect.signature(queues.Queue.get)
        self.assertEqual(list(put.parameters)[:4], ['self', 'obj', 'block', 'timeout'])
        self.assertEqual(list(get.parameters), ['self', 'block', 'timeout'])
