"""The one translator of XICHAN_E* codes into exceptions (the table in
pyext/_xichan/module.c): each kind's codes give its own classes and
messages, an object looked up by name is described by its name, and an
unknown code still carries its symbolic name and .code."""
import _env  # noqa: F401
from _env import XTestCase

import xichan
from xichan import _xichan, channels, queues


class TestTranslate(XTestCase):

    def test_open_by_name_goes_through_the_translator(self):
        # Once these two bypassed it with their own PyErr_Format.
        with self.assertRaises(queues.QueueNotFoundError) as cm:
            queues.open('no-such-queue')
        self.assertEqual(str(cm.exception), "queue named 'no-such-queue' not found")
        self.assertIsInstance(cm.exception, queues.QueueError)
        with self.assertRaises(channels.ChannelNotFoundError) as cm:
            channels.open('no-such-channel')
        self.assertEqual(str(cm.exception), "channel named 'no-such-channel' not found")

    def test_codes_by_kind(self):
        q = queues.create(maxsize=1)
        q.put_nowait(1)
        with self.assertRaises(queues.QueueFull) as cm:
            q.put_nowait(2)
        self.assertEqual(str(cm.exception), f'queue {q.id} is full')
        self.assertEqual(q.get_nowait(), 1)
        with self.assertRaises(queues.QueueEmpty) as cm:
            q.get_nowait()
        self.assertEqual(str(cm.exception), f'queue {q.id} is empty')
        r, s = channels.create()
        with self.assertRaises(channels.ChannelEmptyError) as cm:
            r.recv_nowait()
        self.assertEqual(str(cm.exception), f'channel {int(r.id)} is empty')
        with self.assertRaises(TimeoutError):
            s.send('x', timeout=0.01)
        queues.destroy(q)

    def test_a_named_object_that_exists(self):
        q = queues.create(name='translate-dup')
        try:
            with self.assertRaises(queues.QueueError) as cm:
                queues.create(name='translate-dup')
            self.assertEqual(str(cm.exception), 'a queue with that name already exists')
        finally:
            queues.destroy(q)

    def test_generic_codes_keep_name_and_code(self):
        # A buffer id that does not exist: XichanError with .code.
        with self.assertRaises(xichan.XichanError) as cm:
            _xichan.obj_inflight(3, 10**9, 1)
        self.assertIn('not found', str(cm.exception))
        self.assertEqual(cm.exception.code, _xichan.ENOTFOUND)
