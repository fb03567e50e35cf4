"""Big pickled items (issue 17, goal 1): a bytes or bytearray of 64 KiB or
more, any memoryview and numpy arrays go as pickle protocol 5 with their
buffers out of band (XICHAN_FMT_PICKLE_OOB), each copied once into the item
and once out into memory the receiver owns; a big bytes put with
syncobj=True is put from its header and body.  Values, types, formats,
shapes and read-only flags survive; the threshold's both sides; other
processes and interpreters; C's view (xichanctl); a producer killed -9 in
the middle of a big put leaves no half item."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import _env
from _env import XTestCase, needs_subinterp, HAVE_SUBINTERP, spawn_py, wait_for

from xichan import queues, _xichan

try:
    import numpy
except ImportError:
    numpy = None
needs_numpy = unittest.skipUnless(numpy is not None, 'numpy is not installed for this Python')

if HAVE_SUBINTERP:
    from test.support import interpreters as _cpython_interpreters

XICHANCTL = os.path.join(_env.BUILD, 'bin', 'xichanctl')
OOB = 65536   # pyext's XP_OOB_MIN
MIB = 1 << 20


def pattern(n, seed=0):
    return bytes((i * 7 + seed) & 0xff for i in range(256)) * (n // 256) + bytes(n % 256)


def peek_formats(q):
    """The format name of every queued item, as xichanctl (C) sees it."""
    p = subprocess.run([XICHANCTL, '--json', 'peek', str(q.id), '--count', '100'],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f'xichanctl peek exited {p.returncode}: {p.stderr}')
    return [json.loads(line) for line in p.stdout.splitlines()]


class TestBigValues(XTestCase):

    def roundtrip(self, v, **kw):
        q = queues.create()
        q.put(v, **kw)
        fmt = peek_formats(q)[0]['format']
        got = q.get(timeout=10)
        return got, fmt

    def test_threshold_bytes_and_bytearray(self):
        for size in (OOB - 1, OOB, OOB + 1, 3 * MIB + 5):
            for tp in (bytes, bytearray):
                v = tp(pattern(size, size & 0xff))
                got, fmt = self.roundtrip(v)
                self.assertIs(type(got), tp)
                self.assertEqual(got, v)
                self.assertEqual(fmt, 'pickle-oob' if size >= OOB else 'pickle', (tp, size))

    def test_syncobj_bytes_on_both_sides_of_the_threshold(self):
        for size in (OOB - 1, OOB, 2 * MIB + 3):
            v = pattern(size, 3)
            got, fmt = self.roundtrip(v, syncobj=True)
            self.assertIs(type(got), bytes)
            self.assertEqual(got, v)
            self.assertEqual(fmt, 'msgpack')   # C reads it as one msgpack bin

    def test_received_bytearray_is_the_receivers_own(self):
        v = bytearray(pattern(MIB))
        got, _ = self.roundtrip(v)
        got[0] ^= 0xff
        got.extend(b'more')        # no export pins it: it is a plain bytearray
        self.assertEqual(len(got), MIB + 4)
        self.assertEqual(v, bytearray(pattern(MIB)))   # the sender's is untouched

    def check_view(self, mv):
        got, fmt = self.roundtrip(mv)
        self.assertIs(type(got), memoryview)
        self.assertEqual((got.format, got.itemsize, got.shape, got.readonly),
                         (mv.format, mv.itemsize, mv.shape, mv.readonly))
        self.assertEqual(got.tolist(), mv.tolist())
        self.assertTrue(got.c_contiguous)
        return got, fmt

    def test_memoryviews_keep_format_shape_and_readonly(self):
        for n in (64, OOB * 2):
            ro = memoryview(pattern(n))
            rw = memoryview(bytearray(pattern(n)))
            cases = [ro, rw, rw.cast('i'), rw.cast('i', (n // 64, 16)), ro.cast('d'),
                     ro.cast('B', (n // 8, 8)), rw[::3], ro[5:n // 2:7],
                     rw.cast('h')[::2], memoryview(bytearray(8)).cast('q', [])]
            for mv in cases:
                got, fmt = self.check_view(mv)
                big = mv.nbytes >= OOB
                self.assertEqual(fmt, 'pickle-oob' if big else 'pickle', (n, mv))
                if not got.readonly:
                    got[(0,) * got.ndim] = got[(0,) * got.ndim]  # writable, as sent

    def test_a_memoryview_never_pickled_before_is_refused_by_nothing_else(self):
        # A memoryview inside another object still fails as pickle says.
        with self.assertRaises(TypeError):
            queues.create().put([memoryview(b'x')])

    def test_get_many_and_put_many_mix_big_and_small(self):
        q = queues.create()
        vals = [b'small', bytearray(pattern(OOB)), pattern(MIB, 1), 7, memoryview(pattern(OOB))]
        for v in vals:
            q.put(v)
        got = q.get_many(10, timeout=10)
        self.assertEqual([type(x) for x in got], [type(v) for v in vals])
        self.assertEqual(got[:4], vals[:4])
        self.assertEqual(got[4].tobytes(), vals[4].tobytes())
        q.put_many([pattern(OOB, 2), bytearray(OOB)])   # batches keep one bytes per item
        self.assertEqual(q.get_many(2, timeout=10), [pattern(OOB, 2), bytearray(OOB)])

    def test_malformed_item_is_a_clear_error(self):
        q = queues.create()
        # As a C client could put it: an item of that format that is not one.
        _xichan.queue_put(q.id, b'PKB1 garbage', 0x100 | _xichan.FMT_PICKLE_OOB, 0, None)
        p = subprocess.run([XICHANCTL, 'peek', str(q.id)], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 5)   # xichanctl's "bad item", with the bytes shown
        self.assertIn('the pickled item does not parse', p.stderr)
        self.assertIn("b'PKB1 garbage'", p.stdout)
        with self.assertRaisesRegex(ValueError, 'malformed pickled item'):
            q.get(timeout=10)
        q.put(b'after')
        self.assertEqual(q.get(timeout=10), b'after')

    def test_xichanctl_prints_the_pickle_and_buffer_sizes(self):
        q = queues.create()
        q.put(bytearray(OOB + 3))
        p = subprocess.run([XICHANCTL, 'get', str(q.id)], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^pickle-oob\(b'.*', buffers=\[65539 bytes\]\)$")
        q.put(pattern(OOB))
        item = peek_formats(q)[0]['value']
        self.assertEqual(item['nbuf'], 1)
        self.assertEqual(item['buffers'], [{'bytes': OOB, 'readonly': True}])


@needs_numpy
class TestNumpy(XTestCase):

    def roundtrip(self, v):
        q = queues.create()
        q.put(v)
        fmt = peek_formats(q)[0]['format']
        return q.get(timeout=10), fmt

    def test_arrays_keep_dtype_shape_order_and_flags(self):
        a = numpy.arange(3 * MIB // 8, dtype='<f8').reshape(3, -1)
        ro = numpy.arange(OOB, dtype=numpy.uint8)
        ro.flags.writeable = False
        cases = [a, numpy.asfortranarray(a), ro, numpy.arange(10),
                 numpy.zeros((OOB, 2), dtype=numpy.int32)]
        for v in cases:
            got, fmt = self.roundtrip(v)
            self.assertEqual((got.dtype, got.shape), (v.dtype, v.shape))
            self.assertEqual(got.flags.f_contiguous, v.flags.f_contiguous)
            self.assertEqual(got.flags.writeable, v.flags.writeable)
            self.assertTrue((got == v).all())
            self.assertEqual(fmt, 'pickle-oob' if v.nbytes >= OOB else 'pickle')

    def test_array_is_made_over_the_item_where_it_lies(self):
        # No copy out: numpy's own pickle-5 path makes the array over a view
        # of the item, which stays in the segment while the array lives.
        q = queues.create()
        base = _xichan.stats()['heap_used']
        q.put(numpy.ones(MIB, dtype=numpy.uint8))
        got = q.get(timeout=10)
        root = got
        while isinstance(root, (numpy.ndarray, memoryview)):
            root = root.base if isinstance(root, numpy.ndarray) else root.obj
        self.assertEqual(type(root).__name__, '_BufferView')
        self.assertTrue(got.flags.writeable)
        got[0] = 9                                  # the receiver's own: nobody else sees it
        self.assertEqual((int(got[0]), int(got[1:].sum())), (9, MIB - 1))
        self.assertGreaterEqual(_xichan.stats()['heap_used'], base + MIB)
        del got, root
        self.assertLessEqual(_xichan.stats()['heap_used'], base)   # the block went back

    def test_a_bare_big_bytes_or_bytearray_is_still_its_own_type(self):
        q = queues.create()
        for v in (b'b' * (2 * OOB), bytearray(b'a' * (2 * OOB))):
            q.put(v)
            got = q.get(timeout=10)
            self.assertIs(type(got), type(v))
            self.assertEqual(got, v)

    def test_strided_arrays_and_arrays_inside_containers(self):
        a = numpy.arange(MIB, dtype=numpy.int64)
        v = {'strided': a[::2], 'whole': a, 'n': 3, 'objs': numpy.array([None, 'x'], dtype=object)}
        got, fmt = self.roundtrip(v)
        self.assertEqual(fmt, 'pickle-oob')          # 'whole' went out of band
        self.assertTrue((got['strided'] == a[::2]).all())   # in band, as pickle does it
        self.assertTrue((got['whole'] == a).all())
        self.assertEqual(got['objs'].tolist(), [None, 'x'])
        self.assertEqual(got['n'], 3)


class TestOtherProcess(XTestCase):

    def test_values_both_ways_with_another_process(self):
        q, back = queues.create(), queues.create()
        child = spawn_py('''
            q, back = queues.Queue(int(sys.argv[1])), queues.Queue(int(sys.argv[2]))
            n = 2 * 1024 * 1024 + 1
            q.put(bytes(range(256)) * (n // 256) + b'x' * (n % 256))
            q.put(bytearray(b'y' * n))
            q.put(memoryview(bytearray(8 * 1024 * 100)).cast('d', (100, 1024)))
            v = back.get(timeout=30)
            q.put((type(v).__name__, len(v), bytes(v[:4]), v.count(5)))
        ''', q.id, back.id)
        try:
            n = 2 * MIB + 1
            self.assertEqual(q.get(timeout=30), bytes(range(256)) * (n // 256) + b'x' * (n % 256))
            self.assertEqual(q.get(timeout=30), bytearray(b'y' * n))
            mv = q.get(timeout=30)
            self.assertEqual((mv.format, mv.shape, mv.readonly), ('d', (100, 1024), False))
            self.assertEqual(mv.tolist(), [[0.0] * 1024] * 100)
            back.put(bytearray([5]) * (3 * OOB))
            self.assertEqual(q.get(timeout=30), ('bytearray', 3 * OOB, b'\x05' * 4, 3 * OOB))
        finally:
            out, err = child.communicate(timeout=60)
        self.assertEqual(child.returncode, 0, err)

    def test_producer_killed_during_big_puts_leaves_no_half_item(self):
        size = 8 * MIB
        base = _xichan.stats()['heap_used']
        for delay in (0.0, 0.003, 0.011, 0.029):
            q = queues.create()
            child = spawn_py('''
                q = queues.Queue(int(sys.argv[1]))
                n = int(sys.argv[2])
                bufs = [bytearray([i]) * n for i in range(3)]
                print('go', flush=True)
                i = 0
                while True:
                    q.put(bufs[i % 3])     # pickled out of band: one copy of 8 MiB
                    i += 1
            ''', q.id, size)
            try:
                self.assertEqual(child.stdout.readline().strip(), 'go')
                time.sleep(delay)
                child.send_signal(signal.SIGKILL)
            finally:
                child.communicate(timeout=60)
            self.assertEqual(child.returncode, -signal.SIGKILL)
            n = 0
            while True:
                try:
                    v = q.get_nowait()
                except queues.QueueEmpty:
                    break
                # Whole: its size, and every byte the one its place says.
                self.assertEqual(len(v), size)
                self.assertEqual(v.count(n % 3), size, (delay, n))
                n += 1
            queues.destroy(q)
        # The block a put was filling when it died goes back to the heap
        # (the daemon's cleanup of the dead session).
        self.assertTrue(wait_for(lambda: _xichan.stats()['heap_used'] <= base + MIB, timeout=20),
                        (_xichan.stats()['heap_used'], base))


@needs_subinterp
class TestSubinterpreters(XTestCase):

    def test_big_values_between_interpreters(self):
        q = queues.create()
        interp = _cpython_interpreters.create()
        interp.prepare_main(q=q)
        interp.exec('n = 1 << 20\n'
                    'q.put(bytes(n)); q.put(bytearray(b"a" * n)); '
                    'q.put(memoryview(bytearray(n)).cast("i")[::2])\n')
        self.assertEqual(q.get(timeout=10), bytes(MIB))
        self.assertEqual(q.get(timeout=10), bytearray(b'a' * MIB))
        mv = q.get(timeout=10)
        self.assertEqual((mv.format, mv.shape, mv.readonly), ('i', (MIB // 8,), False))
        interp.close()
        interp = _cpython_interpreters.create()
        interp.prepare_main(q=q)
        q.put(bytearray(b'b' * MIB))
        interp.exec('v = q.get(timeout=10); q.put((type(v).__name__, len(v), bytes(v[:2])))')
        self.assertEqual(q.get(timeout=10), ('bytearray', MIB, b'bb'))
        interp.close()


if __name__ == '__main__':
    unittest.main()
