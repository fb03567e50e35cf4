"""Object names are UTF-8 text without control characters (checked by
libxichan for every creator), and a name already scribbled into the
segment never breaks list_all(): it comes back escaped."""
import mmap
import os

import _env
from _env import XTestCase

from xichan import channels, queues


class TestNames(XTestCase):

    def test_control_characters_refused(self):
        for bad in ('esc\x1b[31m', 'bell\a', 'nl\n', 'del\x7f', 'c1\x9b2J'):
            with self.assertRaises(ValueError) as cm:
                queues.create(name=bad)
            self.assertIn('UTF-8', str(cm.exception))
            with self.assertRaises(ValueError):
                channels.create(name=bad)

    def test_any_other_text_is_fine(self):
        name = f'café-队列 📦 {os.getpid()}'
        q = queues.create(name=name)
        self.assertEqual(queues.open(name).id, q.id)

    def test_scribbled_name_is_listed_escaped(self):
        marker = f'scribble-{os.getpid()}'.encode()
        q = queues.create(name=marker.decode())
        path = f"/dev/shm/xichan-{os.getuid()}-{os.environ['XICHAN_NAME']}"
        with open(path, 'r+b') as f, mmap.mmap(f.fileno(), 0) as m:
            at = m.find(marker + b'\0')
            self.assertGreaterEqual(at, 0)
            m[at:at + 3] = b'\xff\x1b\xc0'  # not UTF-8, and an ESC
        ids = [x.id for x in queues.list_all()]  # must not raise
        self.assertIn(q.id, ids)
        from xichan import _xichan
        names = [t[4] for t in _xichan.queue_list()]
        self.assertTrue(any(n.startswith('\\xff\x1b\\xc0') for n in names), names)
