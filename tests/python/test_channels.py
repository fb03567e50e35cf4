"""Channels: CHECKLIST.md items 28-66 (send/recv, close/release,
association), with other participants as threads and processes."""
import pickle
import subprocess
import threading
import time
from array import array

import _env
from _env import Producer, XTestCase, spawn_py, run_py, wait_for

from xichan import channels, queues, _xichan

CE = channels.ChannelClosedError


def count(s):
    return _xichan.chan_count(int(s.id))


def later(delay, fn, *args):
    def run():
        time.sleep(delay)
        fn(*args)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


class TestSendRecv(XTestCase):

    def test_send_nowait_counts(self):  # 28 (xichan §0.6: returns a bool)
        r, s = channels.create()
        self.assertIs(s.send_nowait(1), False)
        self.assertIs(s.send_nowait(2), False)
        self.assertEqual(count(s), 2)
        self.assertEqual(s._info.count, 2)

    def test_send_nowait_true_when_receiver_waits(self):  # §0.6
        # Nothing tells this process that the receiver thread is asleep in
        # recv() yet, so each round gives it longer before the send: a send
        # that came too early returns False (the item queued, and received
        # all the same).  Some round must return True, and whenever it does,
        # the waiting receiver got that very item.
        r, s = channels.create()
        results = []
        for i in range(8):
            got = []
            t = threading.Thread(target=lambda: got.append(r.recv(timeout=30)))
            t.start()
            time.sleep(0.02 * 2 ** i)
            res = s.send_nowait(('x', i))
            t.join(30)
            self.assertFalse(t.is_alive())
            self.assertEqual(got, [('x', i)])
            self.assertIsInstance(res, bool)
            results.append(res)
            if res:
                break
        self.assertIn(True, results)
        self.assertEqual(count(s), 0)

    def test_fifo_several_senders(self):  # 29
        r, s = channels.create()
        ready, done = queues.create(), queues.create()
        for i in range(5):
            s.send_nowait(('a', i))
        p = spawn_py('''
            s, ready, done = pickle.loads(bytes.fromhex(sys.argv[1]))
            for i in range(5):
                s.send_nowait(('b', i))
            ready.put('sent')
            done.get(timeout=30)  # keep our items bound
        ''', pickle.dumps((s, ready, done)).hex())
        try:
            self.assertEqual(ready.get(timeout=20), 'sent')
            s2 = channels.SendChannel(int(s.id))
            for i in range(5):
                s2.send_nowait(('c', i))
            got = [r.recv_nowait() for _ in range(15)]
        finally:
            done.put('bye')
            p.communicate(timeout=30)
        self.assertEqual(got, [(k, i) for k in 'abc' for i in range(5)])

    def test_recv_nowait_empty(self):  # 30
        r, s = channels.create()
        with self.assertRaises(channels.ChannelEmptyError) as cm:
            r.recv_nowait()
        self.assertEqual(str(cm.exception), f'channel {int(r.id)} is empty')

    def test_recv_nowait_default(self):  # 31
        r, s = channels.create()
        d = object()
        self.assertIs(r.recv_nowait(d), d)
        self.assertIsNone(r.recv_nowait(None))
        s.send_nowait('item')
        self.assertEqual(r.recv_nowait(d), 'item')

    def test_send_blocks_until_received(self):  # 32
        r, s = channels.create()
        got = []
        t = later(0.3, lambda: got.append(r.recv()))
        with self.assertTakes(0.25, 5):
            s.send('rendezvous')
        t0 = time.monotonic()
        t.join(5)
        self.assertEqual(got, ['rendezvous'])
        self.assertLess(time.monotonic() - t0, 1)

    def test_send_timeout(self):  # 33
        r, s = channels.create()
        with self.assertTakes(0.29, 2):
            with self.assertRaises(TimeoutError):
                s.send('x', timeout=0.3)
        self.assertEqual(count(s), 0)
        self.assertIsNone(r.recv_nowait(None))

    def test_send_timeout_zero(self):  # 34
        r, s = channels.create()
        with self.assertTakes(0, 1):  # a hang bound; no waiting is checked by count
            with self.assertRaises(TimeoutError):
                s.send('x', timeout=0)
        self.assertEqual(count(s), 0)

    def test_send_bad_timeouts(self):  # 35
        r, s = channels.create()
        with self.assertRaises(ValueError):
            s.send('x', timeout=-0.5)
        with self.assertRaises(TypeError):
            s.send('x', timeout='a')
        with self.assertRaises(ValueError):
            r.recv(timeout=-1)  # 37
        with self.assertRaises(TypeError):
            r.recv(timeout='1')
        self.assertEqual(count(s), 0)

    def test_recv_timeout(self):  # 37, 38 (float semantics)
        r, s = channels.create()
        # Never early; late only by a hang bound (a busy box delays wakeups).
        with self.assertTakes(0.99, 3):
            with self.assertRaises(TimeoutError):
                r.recv(timeout=1)
        with self.assertTakes(0.49, 2):
            with self.assertRaises(TimeoutError):
                r.recv(timeout=0.5)
        with self.assertTakes(0, 1):
            with self.assertRaises(TimeoutError):
                r.recv(timeout=0)

    def test_recv_queued_at_once(self):  # 39
        r, s = channels.create()
        s.send_nowait('ready')
        with self.assertTakes(0, 1):  # a hang bound: recv() has no timeout
            self.assertEqual(r.recv(), 'ready')

    # 40: a blocked recv wakes for the item.  How fast is measured by the
    # bench (scripts/bench: py_pingpong's xichan-channel rows), not here.
    def test_blocked_recv_thread(self):  # 40 (thread)
        r, s = channels.create()
        for i in range(20):
            t = later(0.01, s.send_nowait, ('item', i))
            self.assertEqual(r.recv(timeout=10), ('item', i))
            t.join(10)
        self.assertEqual(count(s), 0)

    def test_blocked_recv_process(self):  # 40 (another process)
        r, s = channels.create()
        p = spawn_py('''
            s = pickle.loads(bytes.fromhex(sys.argv[1]))
            for i in range(20):
                time.sleep(0.01)
                s.send(('item', i), timeout=10)
        ''', pickle.dumps(s).hex())
        got = [r.recv(timeout=20) for _ in range(20)]
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(got, [('item', i) for i in range(20)])
        self.assertEqual(count(s), 0)

    def test_blocked_send_force_closed(self):  # 41
        r, s = channels.create()
        later(0.2, lambda: _xichan.chan_close(int(r.id), force=True))
        with self.assertRaises(CE):
            s.send('x', timeout=10)

    def test_blocked_recv_closed(self):  # 42
        r, s = channels.create()
        later(0.2, r.close)
        with self.assertTakes(0.15, 5):
            with self.assertRaises(CE):
                r.recv(timeout=10)

    def test_send_buffer_bytearray(self):  # 43
        r, s = channels.create()
        data = bytearray(10)
        s.send_buffer_nowait(data)
        view = r.recv()
        self.assertIsInstance(view, memoryview)
        view[0] = 1
        self.assertEqual(data[0], 1)
        data[1] = 2
        self.assertEqual(view[1], 2)
        with self.assertRaises(BufferError):
            data.append(0)  # exported while the receiver's view lives
        del view
        data.append(0)

    def test_send_buffer_blocking_to_thread(self):  # 43, blocking send_buffer
        # CPython's test_send_buffer: the receiver (a thread of this process)
        # pops the item, which lets send_buffer() return, and only then
        # decodes it; the sender must keep its export meanwhile, or the
        # receiver gets a copy instead of the sender's memory.  Which of the
        # two gets the GIL first varies, hence the rounds.
        for _ in range(100):
            r, s = channels.create()
            data = bytearray(b'spamspamspam')
            got = []
            t = threading.Thread(target=lambda: got.append(r.recv(timeout=30)))
            t.start()
            s.send_buffer(data, timeout=30)
            t.join(30)
            view, = got
            data[4:8] = b'eggs'
            self.assertEqual(bytes(view), b'spameggsspam')
            view[4:8] = b'ham.'
            self.assertEqual(data, b'spamham.spam')
            del view, got
            data.append(0)  # the export is given back once the view dies

    def test_send_buffer_blocking_export_given_back(self):  # 43
        # A thread here and another process both wait on the channel; each
        # takes one of two blocking send_buffer()s.  Whichever took `data`,
        # once both are done and no view of it lives, its export is given
        # back (a process took it: when the busy thread here is done).
        r, s = channels.create()
        p = spawn_py('''
            r = pickle.loads(bytes.fromhex(sys.argv[1]))
            print(bytes(r.recv(timeout=30)).decode())
        ''', pickle.dumps(r).hex())
        got = []
        t = threading.Thread(target=lambda: got.append(bytes(r.recv(timeout=30))))
        t.start()
        self.assertTrue(wait_for(lambda: len(_xichan.chan_sessions(r.id, send=False)) == 2, 30))
        data = bytearray(b'first')
        s.send_buffer(data, timeout=30)
        s.send_buffer(bytearray(b'second'), timeout=30)
        out, err = p.communicate(timeout=30)
        t.join(30)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(sorted([out.strip(), got[0].decode()]), ['first', 'second'])
        data.append(0)  # not exported any more

    def test_send_buffer_format(self):  # 44
        r, s = channels.create()
        s.send_buffer_nowait(b'abc')
        v = r.recv()
        self.assertTrue(v.readonly)
        self.assertEqual(bytes(v), b'abc')
        a = array('i', [1, 2, 3])
        s.send_buffer_nowait(a)
        v = r.recv()
        self.assertEqual(v.format, 'i')
        self.assertEqual(v.tolist(), [1, 2, 3])
        self.assertFalse(v.readonly)
        s.send_buffer_nowait(memoryview(bytearray(12)).cast('B', (3, 4)))
        v = r.recv()
        self.assertEqual(v.shape, (3, 4))

    def test_send_buffer_type_errors(self):  # 45
        r, s = channels.create()
        with self.assertRaises(TypeError):
            s.send_buffer('s')
        with self.assertRaises(TypeError):
            s.send_buffer(1)
        with self.assertRaises(TypeError):
            s.send_buffer_nowait('s')
        self.assertEqual(count(s), 0)

    def test_send_buffer_blocking(self):  # 46
        r, s = channels.create()
        self.assertIs(s.send_buffer_nowait(b'x'), False)
        r.recv()
        with self.assertTakes(0.19, 2):
            with self.assertRaises(TimeoutError):
                s.send_buffer(b'x', timeout=0.2)
        self.assertEqual(count(s), 0)
        got = []
        t = later(0.1, lambda: got.append(bytes(r.recv())))
        s.send_buffer(bytearray(b'yz'), timeout=5)
        t.join(5)
        self.assertEqual(got, [b'yz'])

    def test_send_memoryview_shares(self):  # 2.5 "send(memoryview) also shares"
        r, s = channels.create()
        data = bytearray(4)
        s.send_nowait(memoryview(data))
        v = r.recv()
        v[3] = 9
        self.assertEqual(data[3], 9)

    def test_recv_consumes_unbound(self):  # 47
        r, s = channels.create()
        s.send_nowait('mine')
        p = Producer('''
            objs[0].send_nowait('from a producer that unbinds')
        ''', s)
        p.finish(unbind=True)  # as a destroyed subinterpreter
        self.assertEqual(count(s), 2)
        self.assertEqual(r.recv(), 'mine')
        self.assertIs(r.recv(), channels.UNBOUND)
        self.assertEqual(count(s), 0)

    def test_recv_of_an_exited_process_item(self):  # §0.1: items outlive their process
        r, s = channels.create()
        run_py('''
            s = pickle.loads(bytes.fromhex(sys.argv[1]))
            s.send_nowait('from a process that exits', unbound=channels.UNBOUND_REMOVE)
        ''', pickle.dumps(s).hex())
        self.assertEqual(count(s), 1)
        self.assertEqual(r.recv(), 'from a process that exits')
        self.assertEqual(count(s), 0)


class TestClose(XTestCase):

    def test_close_empty(self):  # 48
        r, s = channels.create()
        r.close()
        self.assertTrue(r.is_closed)
        self.assertTrue(s.is_closed)

    def test_closed_errors(self):  # 49
        r, s = channels.create()
        s.close()
        n = int(r.id)
        for fn in (lambda: s.send_nowait(1), lambda: s.send(1, timeout=1), r.recv_nowait,
                   lambda: r.recv(timeout=1), lambda: r.recv_nowait(None),
                   lambda: _xichan.chan_count(n), r.close, s.close,
                   lambda: _xichan.chan_sessions(n, send=True)):
            with self.assertRaises(CE) as cm:
                fn()
            self.assertEqual(str(cm.exception), f'channel {n} is closed')

    def test_recv_close_not_empty(self):  # 50
        r, s = channels.create()
        s.send_nowait(1)
        with self.assertRaises(channels.ChannelNotEmptyError) as cm:
            r.close()
        self.assertEqual(str(cm.exception), f'channel {int(r.id)} may not be closed if '
                                            f'not empty (try force=True)')
        s.send_nowait(2)
        self.assertEqual((r.recv(), r.recv()), (1, 2))

    def test_lowlevel_close_not_empty(self):  # 51
        r, s = channels.create()
        s.send_nowait(1)
        with self.assertRaises(channels.ChannelNotEmptyError):
            _xichan.chan_close(int(r.id))
        self.assertFalse(r.is_closed)

    def test_send_close_not_empty(self):  # 52, 53
        r, s = channels.create()
        s.send_nowait(1)
        s.send_nowait(2)
        s.close()
        self.assertTrue(s.is_closed)
        self.assertFalse(r.is_closed)
        info = r._info
        self.assertEqual((info.open, info.closing), (False, True))
        with self.assertRaises(CE):
            s.send_nowait(3)
        with self.assertRaises(CE):
            s.close()
        self.assertEqual(r.recv(), 1)
        self.assertEqual(r.recv(), 2)
        self.assertTrue(r.is_closed)
        with self.assertRaises(CE):
            r.recv_nowait()

    def test_force_close(self):  # 54
        r, s = channels.create()
        s.send_nowait(1)
        _xichan.chan_close(int(r.id), force=True)
        self.assertTrue(r.is_closed)
        self.assertEqual(r._info.count, 0)
        with self.assertRaises(CE):
            r.recv_nowait()

    def test_closed_then_destroyed(self):  # 55
        r, s = channels.create()
        r.close()
        with self.assertRaises(CE):
            s.send_nowait(1)
        channels.destroy(r)
        with self.assertRaises(channels.ChannelNotFoundError):
            s.send_nowait(1)

    def test_list_all_with_closed(self):  # 56
        r, s = channels.create()
        r.close()
        pairs = channels.list_all()
        self.assertIn((r, s), pairs)

    def test_release_only_sender_closes(self):  # 57
        r, s = channels.create()
        s.send_nowait('pending')
        _xichan.chan_release(int(s.id), send=True)
        self.assertTrue(r.is_closed)

    def test_release_recv(self):  # 58
        r, s = channels.create()
        n = int(r.id)
        r.recv_nowait(None)
        s.send_nowait(1)
        _xichan.chan_release(n, recv=True)
        with self.assertRaises(CE) as cm:
            r.recv_nowait()
        self.assertEqual(str(cm.exception), f'channel {n} is already closed')
        s.send_nowait(2)

    def test_missing_release_close(self):  # 59
        for fn in (lambda: _xichan.chan_release(10**6, send=True),
                   lambda: _xichan.chan_close(10**6)):
            with self.assertRaises(channels.ChannelNotFoundError):
                fn()

    def test_drop_ends_destroys(self):  # 60
        r, s = channels.create()
        s.send_nowait('pending')
        n = int(r.id)
        del r, s
        self.assertNotIn(n, [int(a.id) for a, b in channels.list_all()])
        with self.assertRaises(channels.ChannelNotFoundError):
            channels.RecvChannel(n).recv_nowait()

    def test_in_flight_end_keeps_alive(self):  # 61
        r, s = channels.create()
        q = queues.create(syncobj=True)
        r2, s2 = channels.create()
        n2 = int(r2.id)
        s.send_nowait(r2)
        q.put(s2)
        del r2, s2
        self.assertIn(n2, [int(a.id) for a, b in channels.list_all()])
        rr = r.recv()
        ss = q.get()
        ss.send_nowait('alive')
        self.assertEqual(rr.recv(), 'alive')


class TestAssociation(XTestCase):

    def test_unused(self):  # 62
        r, s = channels.create()
        self.assertEqual(_xichan.chan_sessions(int(r.id), send=True), [])
        self.assertEqual(_xichan.chan_sessions(int(r.id), send=False), [])

    def test_listed_after_use(self):  # 63
        r, s = channels.create()
        me = _xichan.session_id()
        n = int(r.id)
        s.send_nowait(1)
        self.assertEqual(_xichan.chan_sessions(n, send=True), [me])
        self.assertEqual(_xichan.chan_sessions(n, send=False), [])
        r.recv_nowait()
        r.recv_nowait(None)
        self.assertEqual(_xichan.chan_sessions(n, send=False), [me])
        r2, s2 = channels.create()
        r2.recv_nowait(None)  # a recv attempt on an empty channel associates
        self.assertEqual(_xichan.chan_sessions(int(r2.id), send=False), [me])

    def test_ended_participant_drops_out(self):  # 64
        r, s = channels.create()
        n = int(r.id)
        me = _xichan.session_id()
        r.recv_nowait(None)
        p = spawn_py('''
            s = pickle.loads(bytes.fromhex(sys.argv[1]))
            s.send_nowait(1)
            print(xichan._xichan.session_id(), flush=True)
            sys.stdin.readline()  # stay until told to end
        ''', pickle.dumps(s).hex(), stdin=subprocess.PIPE)
        try:
            child = int(p.stdout.readline())
            # Listed while it lives (and only it: this process never sent)...
            self.assertNotEqual(child, me)
            self.assertEqual(_xichan.chan_sessions(n, send=True), [child])
            self.assertEqual(_xichan.chan_sessions(n, send=False), [me])
        finally:
            out, err = p.communicate('\n', timeout=30)
        self.assertEqual(p.returncode, 0, err)
        # ...and gone once it ended (the daemon notices the exit).
        self.assertTrue(wait_for(lambda: _xichan.chan_sessions(n, send=True) == [], timeout=10),
                        _xichan.chan_sessions(n, send=True))
        self.assertEqual(_xichan.chan_sessions(n, send=False), [me])

    def test_sessions_args(self):  # 65
        r, s = channels.create()
        with self.assertRaises(TypeError):
            _xichan.chan_sessions(int(r.id))
        r.close()
        with self.assertRaises(CE):
            _xichan.chan_sessions(int(r.id), send=True)

    def test_auto_close_when_producer_unbinds(self):  # 66, "subinterpreter destroyed"
        r, s = channels.create()
        p = Producer('objs[0].send_nowait(1)', s)
        self.assertFalse(r.is_closed)
        p.finish(unbind=True)
        self.assertTrue(r.is_closed)

    def test_no_auto_close_when_producer_process_ends(self):  # §0.1
        r, s = channels.create()
        run_py('''
            s = pickle.loads(bytes.fromhex(sys.argv[1]))
            s.send_nowait(1)
            s.send_nowait(2)
        ''', pickle.dumps(s).hex())
        self.assertFalse(r.is_closed)
        self.assertEqual((r.recv(timeout=10), r.recv(timeout=10)), (1, 2))
        s.send_nowait(3)  # still open both ways
        self.assertEqual(r.recv_nowait(), 3)
