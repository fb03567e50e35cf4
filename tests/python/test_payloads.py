"""Payload types: CHECKLIST.md items 22-27, plus msgpack items from C
clients and cross-process round trips."""
import math
import struct

import _env
import pickle

from _env import XTestCase, spawn_py

import xichan
from xichan import channels, queues, _xichan

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

SHAREABLE = [
    None, True, False, 0, 1, -1, 255, 256, INT64_MIN, INT64_MAX, 2**32, -2**32,
    0.0, -0.0, 1.5, float('inf'), float('-inf'), 1e308,
    '', 'spam', 'ünïcødé ☃', 'a' * 100000, '\udc80 lone surrogate',
    b'', b'eggs', bytes(range(256)) * 10,
    (), (1,), (1, ('a', (b'b', None)), 2.5), ((((),),),),
]


class StrSub(str):
    pass


class IntSub(int):
    pass


class BytesSub(bytes):
    pass


NOT_SHAREABLE = [[1], {'a': 1}, {1, 2}, 1j, bytearray(b'x'), object(),
                 StrSub('x'), IntSub(1), BytesSub(b'x'), (1, [2])]


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


class TestShareable(XTestCase):

    def test_roundtrip_channel(self):  # 22
        r, s = channels.create()
        for v in SHAREABLE + [float('nan')]:
            s.send_nowait(v)
            got = r.recv()
            self.assertTrue(same(v, got), (v, got))

    def test_roundtrip_queue_syncobj(self):  # 22 (queues, syncobj=True)
        q = queues.create(syncobj=True)
        for v in SHAREABLE:
            q.put(v)
        for v in SHAREABLE:
            got = q.get_nowait()
            self.assertTrue(same(v, got), (v, got))

    def test_int_overflow(self):  # 23
        r, s = channels.create()
        q = queues.create()
        for v in (2**63, INT64_MIN - 1, 2**100):
            with self.assertRaisesRegex(OverflowError, 'try sending as bytes'):
                s.send_nowait(v)
            with self.assertRaisesRegex(OverflowError, 'try sending as bytes'):
                q.put(v, syncobj=True)
            with self.assertRaises(OverflowError):
                s.send_nowait((1, v))
        self.assertEqual(s._info.count, 0)
        self.assertEqual(q.qsize(), 0)

    def test_not_shareable(self):  # 24, 25
        r, s = channels.create()
        q = queues.create(syncobj=True)
        for v in NOT_SHAREABLE:
            with self.assertRaises(xichan.NotShareableError):
                s.send_nowait(v)
            with self.assertRaises(xichan.NotShareableError):
                q.put_nowait(v)
            with self.assertRaises(xichan.NotShareableError):
                s.send(v, timeout=1)
        self.assertEqual(s._info.count, 0)
        self.assertEqual(q.qsize(), 0)
        with self.assertRaises(xichan.NotShareableError) as cm:
            s.send_nowait((1, (2, [3])))
        self.assertEqual(str(cm.exception), '[3] does not support cross-interpreter data')
        self.assertTrue(xichan.is_shareable((1, [1])))  # top-level type only
        self.assertFalse(xichan.is_shareable([1]))
        self.assertTrue(xichan.is_shareable(q))

    def test_received_are_new_objects(self):  # 26
        r, s = channels.create()
        for v in ('a longer string value', b'some bytes value', (1, 2, 3), 10**12, 1.25):
            s.send_nowait(v)
            got = r.recv()
            self.assertEqual(got, v)
            self.assertIsNot(got, v)

    def test_handles_are_sendable(self):  # 27
        r, s = channels.create()
        r2, s2 = channels.create()
        q = queues.create()
        s.send_nowait((r2, s2, q, r2.id))
        got = r.recv()
        self.assertEqual(got[0], r2)
        self.assertEqual(got[1], s2)
        self.assertIs(got[2], q)
        self.assertEqual(got[3], r2.id)
        self.assertEqual(got[3].end, 'recv')
        s2.send_nowait('via received end')
        self.assertEqual(got[0].recv(), 'via received end')
        # The in-flight references were given back: dropping every object
        # destroys the channel.
        cid = int(r2.id)
        del r2, s2, got
        with self.assertRaises(channels.ChannelNotFoundError):
            channels.RecvChannel(cid).recv_nowait()


class TestCInterop(XTestCase):
    """Items as a C client packs them with msgpack-c (xichan_queue_put_msgpack)."""

    def put_raw(self, q, data, fmt=_xichan.FMT_MSGPACK):
        _xichan.queue_put(q.id, data, fmt | 0x100, 0, 0)

    def test_msgpack_natural_values(self):
        q = queues.create()
        # {"a": [1, -2, "x", b"\x00", nil, true, 1.5f32]}
        item = (b'\x81\xa1a\x97\x01\xfe\xa1x\xc4\x01\x00\xc0\xc3'
                + b'\xca' + struct.pack('>f', 1.5))
        self.put_raw(q, item)
        self.assertEqual(q.get_nowait(), {'a': (1, -2, 'x', b'\x00', None, True, 1.5)})
        self.put_raw(q, b'\xcf' + struct.pack('>Q', 2**64 - 1))  # uint64
        self.assertEqual(q.get_nowait(), 2**64 - 1)
        self.put_raw(q, b'\xd4\x07\x41')  # fixext1, unknown type 7
        self.assertEqual(q.get_nowait(), (7, b'A'))
        self.put_raw(q, b'raw bytes', _xichan.FMT_RAW)
        self.assertEqual(q.get_nowait(), b'raw bytes')
        self.put_raw(q, b'\x92\x01')  # truncated array
        with self.assertRaises(ValueError):
            q.get_nowait()
        self.assertEqual(q.qsize(), 0)

    def test_msgpack_every_width(self):
        # codec.c reads msgpack itself: each type byte, its widths and limits.
        q = queues.create()
        P = struct.pack
        cases = [
            (b'\x7f', 127), (b'\xe0', -32), (b'\xff', -1),
            (b'\xcc\xff', 255), (b'\xcd' + P('>H', 65535), 65535),
            (b'\xce' + P('>I', 2**32 - 1), 2**32 - 1),
            (b'\xd0\x80', -128), (b'\xd0\x7f', 127), (b'\xd1' + P('>h', -32768), -32768),
            (b'\xd2' + P('>i', -2**31), -2**31), (b'\xd3' + P('>q', -2**63), -2**63),
            (b'\xd3' + P('>q', 5), 5),
            (b'\xcb' + P('>d', -0.25), -0.25), (b'\xc2', False),
            (b'\xd9\x03abc', 'abc'), (b'\xda' + P('>H', 2) + b'hi', 'hi'),
            (b'\xdb' + P('>I', 1) + b'z', 'z'), (b'\xa3\xed\xa0\x80', None),
            (b'\xc5' + P('>H', 300) + b'x' * 300, b'x' * 300),
            (b'\xc6' + P('>I', 2) + b'ab', b'ab'),
            (b'\xdc' + P('>H', 2) + b'\x01\x02', (1, 2)),
            (b'\xdd' + P('>I', 1) + b'\xc0', (None,)),
            (b'\xde' + P('>H', 1) + b'\x01\x02', {1: 2}),
            (b'\xdf' + P('>I', 0), {}), (b'\x90', ()),
            (b'\xc7\x02\x05ab', (5, b'ab')), (b'\xc8' + P('>H', 1) + b'\xfbq', (-5, b'q')),
            (b'\xc9' + P('>I', 0) + b'\x09', (9, b'')),
            (b'\xd8\x03' + b'y' * 16, (3, b'y' * 16)),
        ]
        for data, want in cases:
            self.put_raw(q, data)
            if want is None:  # a lone surrogate survives, as on the way in
                self.assertEqual(q.get_nowait(), '\ud800')
            else:
                self.assertEqual(q.get_nowait(), want, data)
        # msgpack-c reads 32 levels of nesting, as every C reader does.
        nested = b'\x91' * 32 + b'\x01'
        self.put_raw(q, nested)
        v = q.get_nowait()
        for _ in range(32):
            v, = v
        self.assertEqual(v, 1)
        bad = [b'\x91' * 33 + b'\x01', b'\xdd\x01\x00\x00\x00\x01',  # too deep; claims 16M
               b'', b'\xc1', b'\x01\x02', b'\xcd\x01', b'\xdd\xff\xff\xff\xff',
               b'\xdf\x7f\xff\xff\xff\x01', b'\xc6\xff\xff\xff\xffab', b'\xc7\x01',
               b'\xa3ab', b'\xd7\x01abc']
        for data in bad:
            self.put_raw(q, data)
            with self.assertRaises(ValueError, msg=data):
                q.get_nowait()
        self.put_raw(q, b'\x81\x80\x01')  # a dict key: unhashable
        with self.assertRaises(TypeError):
            q.get_nowait()
        self.assertEqual(q.qsize(), 0)


class TestSmallPickles(XTestCase):
    """Pickled items of small scalars are written and read by the extension
    (smallpickle.c): the bytes must be pickle.dumps's, and what is read
    back pickle.loads's, for every form and at every edge."""

    VALUES = [
        None, True, False, 0, 1, 255, 256, 65535, 65536, -1, -255, -256, -65536,
        -2**31, 2**31 - 1, 2**31, -2**31 - 1, 2**62, 2**100,
        0.0, -0.0, 1.5, -1e-310, 1e308, float('inf'), float('-inf'), float('nan'),
        b'', b'x', b'\x00' * 255, b'a' * 256, b'b' * 4096, b'c' * 4097, bytes(range(64)),
        '', 'a', '\x00', '\u00e9' * 127, '\u00e9' * 128, '\u2603' * 85, '\u2603' * 86,
        'x' * 4096, 'x' * 4097, '\U0001f600', '\udc80 lone surrogate',
        (1,), [1], {'a': 1}, IntSub(1), StrSub('s'), BytesSub(b'b'), 1j,
    ]

    def test_dumps_writes_what_pickle_writes(self):
        for v in self.VALUES:
            self.assertEqual(_xichan.pickle_dumps(v), pickle.dumps(v), repr(v)[:60])

    def test_roundtrip(self):
        q = queues.create(syncobj=False)
        for v in self.VALUES:
            q.put(v)
        for v in self.VALUES:
            got = q.get_nowait()
            self.assertIs(type(got), type(v))
            if isinstance(v, (bool, type(None))):
                self.assertIs(got, v)
            elif isinstance(v, float):
                self.assertTrue(same(v, got), (v, got))
            else:
                self.assertEqual(got, v)

    def test_foreign_pickles_read_as_pickle_reads_them(self):
        # Items another pickler wrote (a C client's raw FMT_PICKLE bytes):
        # the forms read in place and every near miss, which must go to
        # pickle.loads and give its result or its error.
        P = struct.pack
        q = queues.create(syncobj=False)
        framed = lambda proto, body: bytes([0x80, proto, 0x95]) + P('<Q', len(body)) + body
        cases = [
            b'\x80\x04N.', b'\x80\x05N.', b'\x80\x05\x88.', b'\x80\x04\x89.',
            b'\x80\x04K\x07.', b'\x80\x02K\x07.', b'\x80\x03N.',
            framed(4, b'M\x01\x02.'), framed(5, b'J\xff\xff\xff\xff.'),
            framed(4, b'G' + P('>d', -2.5) + b'.'),
            framed(5, b'C\x03abc\x94.'), framed(4, b'B' + P('<I', 3) + b'abc\x94.'),
            framed(4, b'\x8c\x02\xc3\xa9\x94.'), framed(4, b'X' + P('<I', 2) + b'\xc3\xa9\x94.'),
            framed(4, b'\x8c\x03\xed\xb2\x80\x94.'),   # a lone surrogate (surrogatepass)
            framed(4, b'C\x03abc.'),                     # no MEMOIZE
            framed(4, b'C\x03abc\x94.extra'),           # bytes after STOP
            framed(4, b'C\x02abc\x94.'),                # wrong length
            bytes([0x80, 4, 0x95]) + P('<Q', 99) + b'C\x03abc\x94.',  # wrong frame length
            b'\x80\x04C\x03abc\x94.',                     # not framed
            framed(4, b'K\x07\x94.'),                     # MEMOIZE after an int
            framed(4, b'\x8c\x02\xff\xfe\x94.'),          # not UTF-8
            framed(4, b'G\x00\x00.'),                     # short float
            framed(4, b'J\x01\x00\x00\x00\x00.'),         # long int field
            b'\x80\x04.', b'\x80\x04', b'\x80', b'',
        ]
        for data in cases:
            try:
                want = pickle.loads(data)
            except Exception as e:
                want = e
            _xichan.queue_put(q.id, data, _xichan.FMT_PICKLE | 0x100, 0, 0)
            if isinstance(want, Exception):
                with self.assertRaises(type(want), msg=data):
                    q.get_nowait()
            else:
                got = q.get_nowait()
                self.assertIs(type(got), type(want), data)
                self.assertEqual(got, want, data)
        self.assertEqual(q.qsize(), 0)


class TestCrossProcess(XTestCase):

    def test_child_puts_values(self):  # 22, 79, 80 across processes
        q = queues.create()
        done = queues.create()
        p = spawn_py('''
            q, done = pickle.loads(bytes.fromhex(sys.argv[1]))
            q.put((1, 'two', b'3', None, 2**62), syncobj=True)
            q.put([1, {'x': 2**100}, 1j])
            q.put(memoryview(b'abc'), syncobj=True)
            done.get(timeout=30)  # stay alive: our items would become UNBOUND
        ''', pickle.dumps((q, done)).hex())
        try:
            self.assertEqual(q.get(timeout=10), (1, 'two', b'3', None, 2**62))
            self.assertEqual(q.get(timeout=5), [1, {'x': 2**100}, 1j])
            mv = q.get(timeout=5)
            self.assertIsInstance(mv, memoryview)
            self.assertEqual(bytes(mv), b'abc')
            self.assertTrue(mv.readonly)
        finally:
            done.put(None)
            p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
