"""IDs, objects and exceptions: CHECKLIST.md items 1-21."""
import sys
import pickle
import queue as stdqueue
import unittest

import _env
from _env import XTestCase

import xichan
from xichan import channels, queues, _crossinterp


class TestChannelIDs(XTestCase):

    def test_create_returns_recv_send(self):  # 1
        r, s = channels.create()
        self.assertIsInstance(r, channels.RecvChannel)
        self.assertIsInstance(s, channels.SendChannel)

    def test_ends_share_id(self):  # 2
        r, s = channels.create()
        self.assertEqual(int(r.id), int(s.id))
        self.assertEqual(r.id.end, 'recv')
        self.assertEqual(s.id.end, 'send')
        self.assertNotEqual(r.id, s.id)
        self.assertEqual(r.id, float(int(r.id)))
        self.assertEqual(list(range(int(r.id) + 1))[r.id], int(r.id))  # __index__

    def test_ids_consecutive_never_reused(self):  # 3
        r1, s1 = channels.create()
        r2, s2 = channels.create()
        self.assertEqual(int(r2.id), int(r1.id) + 1)
        old = int(r2.id)
        del r1, s1, r2, s2  # destroys both channels
        r3, s3 = channels.create()
        self.assertGreater(int(r3.id), old)

    def test_repr(self):  # 4
        r, s = channels.create()
        n = int(r.id)
        self.assertEqual(repr(r), f'RecvChannel(id={n})')
        self.assertEqual(repr(s), f'SendChannel(id={n})')
        self.assertEqual(repr(r.id), f'ChannelID({n}, recv=True)')
        self.assertEqual(repr(s.id), f'ChannelID({n}, send=True)')
        self.assertEqual(str(r.id), str(n))

    def test_eq_hash(self):  # 5
        r, s = channels.create()
        self.assertEqual(r, channels.RecvChannel(int(r.id)))
        self.assertEqual(s, channels.SendChannel(int(s.id)))
        self.assertNotEqual(r, s)
        self.assertEqual(hash(r), hash(s))
        self.assertEqual(hash(r), hash(int(r.id)))
        with self.assertRaises(TypeError):
            r.id < s.id
        with self.assertRaises(TypeError):
            pickle.dumps(r.id)

    def test_pickle_ends(self):  # 6
        r, s = channels.create()
        for end in (r, s):
            for proto in range(pickle.HIGHEST_PROTOCOL + 1):
                self.assertEqual(pickle.loads(pickle.dumps(end, proto)), end)

    def test_constructor_errors(self):  # 7
        for cls in (channels.RecvChannel, channels.SendChannel):
            with self.assertRaises(TypeError):
                cls('1')
            with self.assertRaises(TypeError):
                cls(1.0)
            with self.assertRaises(ValueError):
                cls(-1)
            with self.assertRaises(OverflowError):
                cls(2**64)
        r, s = channels.create()
        self.assertEqual(channels.RecvChannel(s.id), r)  # a ChannelID of the other end
        channels.RecvChannel(True)  # bool has __index__

    def test_missing_id_constructs(self):  # 8
        r = channels.RecvChannel(10**6)
        s = channels.SendChannel(10**6)
        with self.assertRaises(channels.ChannelNotFoundError):
            r.recv_nowait()
        with self.assertRaises(channels.ChannelNotFoundError):
            s.send_nowait(1)
        with self.assertRaises(channels.ChannelNotFoundError):
            r.is_closed

    def test_readonly_attributes(self):  # 9
        r, s = channels.create()
        q = queues.create(3)
        for obj, attr in ((r, 'id'), (s, 'id'), (q, 'id'), (q, 'maxsize')):
            with self.assertRaises(AttributeError):
                setattr(obj, attr, 1)


class TestQueueIDs(XTestCase):

    def test_queue_ids(self):  # 10
        q1 = queues.create()
        q2 = queues.create()
        self.assertIsInstance(q1.id, int)
        self.assertGreaterEqual(q1.id, 1)
        self.assertEqual(q2.id, q1.id + 1)
        old = q2.id
        del q1, q2
        q3 = queues.create()
        self.assertGreater(q3.id, old)

    def test_singleton(self):  # 11
        q = queues.create()
        self.assertIs(queues.Queue(q.id), q)
        self.assertIs(queues.Queue(True if q.id == 1 else q.id), q)
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            self.assertIs(pickle.loads(pickle.dumps(q, proto)), q)

    def test_eq_hash_repr(self):  # 12
        q1 = queues.create()
        q2 = queues.create()
        # Equal to every handle of the same queue: by id, unpickled, and
        # received through a queue.
        self.assertEqual(q1, queues.Queue(q1.id))
        self.assertEqual(q1, pickle.loads(pickle.dumps(q1)))
        q2.put(q1, syncobj=True)
        self.assertEqual(q2.get(timeout=10), q1)
        self.assertNotEqual(q1, q2)
        self.assertNotEqual(q1, q1.id)
        self.assertEqual(hash(q1), hash(q1.id))
        self.assertEqual(repr(q1), f'Queue({q1.id})')

    def test_constructor_errors(self):  # 13
        with self.assertRaises(TypeError):
            queues.Queue('1')
        with self.assertRaises(queues.QueueNotFoundError) as cm:
            queues.Queue(10**6)
        self.assertEqual(str(cm.exception), f'queue {10**6} not found')


class TestExceptions(XTestCase):

    def test_channel_errors(self):  # 14
        self.assertTrue(issubclass(channels.ChannelError, RuntimeError))
        for name in ('ChannelNotFoundError', 'ChannelClosedError', 'ChannelEmptyError',
                     'ChannelNotEmptyError'):
            cls = getattr(channels, name)
            self.assertIn(channels.ChannelError, cls.__bases__)
        self.assertNotIn('ChannelClosedError', channels.__all__)
        self.assertNotIn('ChannelNotEmptyError', channels.__all__)

    def test_queue_errors(self):  # 15
        self.assertTrue(issubclass(queues.QueueError, RuntimeError))
        self.assertTrue(issubclass(queues.QueueNotFoundError, queues.QueueError))

    def test_empty_full(self):  # 16
        self.assertTrue(issubclass(queues.QueueEmpty, queues.QueueError))
        self.assertTrue(issubclass(queues.QueueEmpty, stdqueue.Empty))
        self.assertTrue(issubclass(queues.QueueFull, queues.QueueError))
        self.assertTrue(issubclass(queues.QueueFull, stdqueue.Full))
        self.assertIs(queues.QueueEmptyError, queues.QueueEmpty)
        self.assertIs(queues.QueueFullError, queues.QueueFull)
        self.assertIs(xichan.QueueEmpty, queues.QueueEmpty)
        self.assertIs(xichan.Queue, queues.Queue)
        self.assertIs(xichan.create_queue, queues.create)

    def test_item_destroyed(self):  # 17
        for mod, base in ((queues, queues.QueueError), (channels, channels.ChannelError)):
            self.assertTrue(issubclass(mod.ItemInterpreterDestroyed, base))
            self.assertTrue(issubclass(mod.ItemInterpreterDestroyed,
                                       _crossinterp.ItemInterpreterDestroyed))
        self.assertIsNot(queues.ItemInterpreterDestroyed, channels.ItemInterpreterDestroyed)

    def test_not_shareable(self):  # 18 (xichan: both TypeError and ValueError)
        self.assertTrue(issubclass(xichan.NotShareableError, TypeError))
        self.assertTrue(issubclass(xichan.NotShareableError, ValueError))
        r, s = channels.create()
        with self.assertRaises(xichan.NotShareableError) as cm:
            s.send_nowait([1])
        self.assertEqual(str(cm.exception), '[1] does not support cross-interpreter data')

    @unittest.skipIf(sys.version_info < (3, 13), '_interpreters is new in 3.13')
    def test_not_shareable_is_interpreters_own(self):  # 18: code written for 3.13 catches it
        from _interpreters import NotShareableError as Interp
        self.assertTrue(issubclass(xichan.NotShareableError, Interp))
        q = queues.create(syncobj=True)
        with self.assertRaises(Interp):
            q.put({'a': 1})
        self.assertEqual(q.qsize(), 0)

    def test_markers(self):  # 19, 20
        self.assertIs(channels.UNBOUND_ERROR, queues.UNBOUND_ERROR)
        self.assertIs(channels.UNBOUND_REMOVE, queues.UNBOUND_REMOVE)
        self.assertIsNot(channels.UNBOUND, queues.UNBOUND)
        self.assertEqual(type(queues.UNBOUND).__name__, 'UnboundQueueItem')
        self.assertEqual(type(channels.UNBOUND).__name__, 'UnboundQueueItem')
        self.assertTrue(repr(queues.UNBOUND).endswith('.UNBOUND'))
        self.assertEqual(repr(queues.UNBOUND), 'xichan.queues.UNBOUND')
        self.assertTrue(queues.UNBOUND)
        with self.assertRaises(Exception):
            type(queues.UNBOUND)()
        import copy
        with self.assertRaises(TypeError):
            pickle.dumps(queues.UNBOUND)
        with self.assertRaises(TypeError):
            copy.copy(queues.UNBOUND)

    def test_bad_unbound_markers(self):  # 21
        with self.assertRaises(NotImplementedError):
            queues.create(unbounditems=None)
        with self.assertRaises(NotImplementedError):
            channels.create(unbounditems=None)
        with self.assertRaises(NotImplementedError):
            channels.create(unbounditems=object())
        q = queues.create()
        with self.assertRaises(NotImplementedError):
            q.put(1, unbound=object())
        r, s = channels.create()
        with self.assertRaises(NotImplementedError):
            s.send_nowait(1, unbound='x')
        self.assertEqual(s._info.count, 0)
        self.assertEqual(q.qsize(), 0)
