"""Across processes: pickling handles into multiprocessing children (spawn
and fork), pools draining a queue exactly once, named objects, fork(),
SharedBuffer, kill -9 of a producer, Ctrl-C of blocked calls."""
import multiprocessing
import os
import pickle
import signal
import sys
import time

import _env
import _mpworkers
from _env import XTestCase, spawn_py, wait_for

import xichan
from xichan import channels, queues, _xichan

N_POOL = 20000


class TestMultiprocessing(XTestCase):
    timeout = 120

    def check_process_args(self, method):
        ctx = multiprocessing.get_context(method)
        q = queues.create()
        r, s = channels.create()
        r2, s2 = channels.create()
        sb = xichan.SharedBuffer(16)
        p = ctx.Process(target=_mpworkers.echo_objects, args=(q, r2, s, sb))
        p.start()
        s2.send('hello child', timeout=30)
        v, pid = r.recv(timeout=30)
        self.assertEqual((v, pid), ('hello child', p.pid))
        self.assertEqual(q.get(timeout=30), 'queue ok')
        self.assertEqual(memoryview(sb)[0], 77)
        p.join(30)
        self.assertEqual(p.exitcode, 0)

    def test_process_args_spawn(self):  # 11, 27 across processes (spawn)
        self.check_process_args('spawn')

    def test_process_args_fork(self):  # 11, 27 across processes (fork)
        self.check_process_args('fork')

    def check_pool(self, method):
        ctx = multiprocessing.get_context(method)
        q = queues.create(syncobj=True)
        for i in range(N_POOL):
            q.put_nowait(i)
        for _ in range(4):
            q.put_nowait(None)
        with ctx.Pool(4, initializer=_mpworkers.pool_init, initargs=(q,)) as pool:
            res = pool.map(_mpworkers.pool_drain, range(4), chunksize=1)
        allgot = [v for part in res for v in part]
        self.assertEqual(len(allgot), N_POOL)
        self.assertEqual(sorted(allgot), list(range(N_POOL)))
        for part in res:  # each worker saw its items in FIFO order
            self.assertEqual(part, sorted(part))
        self.assertEqual(q.qsize(), 0)

    def test_pool_spawn(self):  # 103, 104: 4 workers, 20,000 items, exactly once
        self.check_pool('spawn')

    def test_pool_fork(self):  # 103, 104 with fork
        self.check_pool('fork')

    def test_consumer_processes(self):  # 103 across processes
        ctx = multiprocessing.get_context('spawn')
        q = queues.create(syncobj=True)
        out = queues.create()
        procs = [ctx.Process(target=_mpworkers.drain, args=(q, out)) for _ in range(4)]
        for p in procs:
            p.start()
        for i in range(2000):
            q.put(i)
        for _ in procs:
            q.put(None)
        got = []
        for _ in procs:
            pid, items = out.get(timeout=60)
            got.extend(items)
        for p in procs:
            p.join(30)
        self.assertEqual(sorted(got), list(range(2000)))


class TestNamed(XTestCase):

    def test_named_queue(self):  # §0.9 named objects
        name = f'jobs-{os.getpid()}'
        q = queues.create(name=name)
        self.assertIs(queues.open(name), q)
        with self.assertRaises(queues.QueueError):
            queues.create(name=name)
        qid = q.id
        del q
        q = queues.open(name)  # still there: named objects live until destroyed
        self.assertEqual(q.id, qid)
        p = spawn_py('''
            q = queues.open(sys.argv[1])
            r, s = channels.open(sys.argv[1] + '-chan')
            s.send(q.get(timeout=30), timeout=30)
        ''', name)
        r, s = channels.create(name=name + '-chan')
        q.put('job 1')
        self.assertEqual(r.recv(timeout=30), 'job 1')
        p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
        queues.destroy(q)
        with self.assertRaises(queues.QueueNotFoundError):
            queues.open(name)
        channels.destroy(r)
        with self.assertRaises(channels.ChannelNotFoundError):
            channels.open(name + '-chan')


class TestFork(XTestCase):

    def test_fork_child_new_session(self):  # DESIGN: a forked child never reuses its parent's session
        q = queues.create()
        r, s = channels.create()
        parent_sid = _xichan.session_id()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                sid = _xichan.session_id()
                s.send((sid, q.get(timeout=10)), timeout=10)
                code = 0 if sid != parent_sid else 2
            finally:
                os._exit(code)
        q.put('for the child')
        sid, v = r.recv(timeout=30)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertNotEqual(sid, parent_sid)
        self.assertEqual(v, 'for the child')
        # The child's bindings ended with it; ours keep the objects alive.
        q.put('still here')
        self.assertEqual(q.get(), 'still here')

    def test_fork_child_binds_every_holder_again(self):
        # Two ChannelIDs of one end compare equal, yet each holds a binding:
        # the child takes one for every holder, as its __del__ gives one back.
        q = queues.create()
        r, s = channels.create()
        cid = int(r.id)
        extra = [channels._channel_id(cid, 'recv') for _ in range(2)]
        self.assertEqual(extra[0], extra[1])
        nq = _xichan.obj_info(_xichan.KIND_QUEUE, q.id)[6]
        nc = _xichan.obj_info(_xichan.KIND_CHANNEL, cid)[6]
        self.assertEqual((nq, nc), (1, 4))
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(rd)
                seen = (_xichan.obj_info(_xichan.KIND_QUEUE, q.id)[6],
                        _xichan.obj_info(_xichan.KIND_CHANNEL, cid)[6])
                del extra[:]
                gone = _xichan.obj_info(_xichan.KIND_CHANNEL, cid)[6]
                os.write(wr, repr(seen + (gone,)).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wr)
        with os.fdopen(rd) as f:
            got = f.read()
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(got, repr((2 * nq, 2 * nc, 2 * nc - 2)))
        self.assertTrue(wait_for(lambda: _xichan.obj_info(_xichan.KIND_CHANNEL, cid)[6] == nc, 30))
        self.assertEqual(_xichan.obj_info(_xichan.KIND_QUEUE, q.id)[6], nq)


class TestSharedBuffer(XTestCase):

    def test_basics(self):  # §0.10 SharedBuffer
        sb = xichan.SharedBuffer(100)
        self.assertEqual(len(sb), 100)
        self.assertEqual(sb.size, 100)
        m = memoryview(sb)
        self.assertFalse(m.readonly)
        self.assertEqual(bytes(m), bytes(100))
        m[:3] = b'abc'
        self.assertEqual(repr(sb), f'SharedBuffer(id={sb.id}, size=100)')
        with self.assertRaises(ValueError):
            xichan.SharedBuffer(0)
        sb2 = pickle.loads(pickle.dumps(sb))
        self.assertEqual(bytes(memoryview(sb2)[:3]), b'abc')

    def test_across_processes(self):  # 43/44 across processes, §0.10
        sb = xichan.SharedBuffer(1 << 20)
        memoryview(sb)[0] = 1
        r, s = channels.create()
        r2, s2 = channels.create()
        p = spawn_py('''
            sb, r, s = pickle.loads(bytes.fromhex(sys.argv[1]))
            m = memoryview(sb)
            assert m[0] == 1
            m[1] = 2
            view = r.recv(timeout=30)      # a view into the same buffer
            view[0] = 3
            local = r.recv(timeout=30)     # a bytearray of the parent: a copy here
            local[0] = 9
            s.send((bytes(local[:2]), view.nbytes), timeout=30)
            s.send('done', timeout=30)
        ''', pickle.dumps((sb, r2, s)).hex())
        s2.send_buffer(memoryview(sb)[1000:2000], timeout=30)
        mine = bytearray(b'xy')
        s2.send_buffer(mine, timeout=30)
        self.assertEqual(r.recv(timeout=30), (b'\ty', 1000))
        self.assertEqual(r.recv(timeout=30), 'done')
        p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
        m = memoryview(sb)
        self.assertEqual((m[0], m[1], m[1000]), (1, 2, 3))
        self.assertEqual(mine, bytearray(b'xy'))  # another process wrote its own copy
        mine.append(0)  # the export was given back when the send returned

    def test_big_copies_viewed_in_place(self):
        # >= 64 KiB copied buffers: sent with one copy, viewed in the item
        # (buffers.c); the block is freed when the view dies.
        from xichan import _xichan
        n = 1 << 20
        q, back = queues.create(syncobj=True), queues.create(syncobj=True)
        p = spawn_py('''
            q, back = pickle.loads(bytes.fromhex(sys.argv[1]))
            v = q.get(timeout=30)               # a writable copy
            assert v.nbytes == 1 << 20 and not v.readonly, (v.nbytes, v.readonly)
            assert v[0] == 1 and v[-1] == 2
            v[0] = 7
            ro = q.get(timeout=30)              # a read-only one
            assert ro.readonly and bytes(ro[:2]) == b'ab'
            strided = q.get(timeout=30)         # sent as COPY, in C order
            back.put((v[0], bytes(strided[:3]), strided.nbytes), timeout=30)
            del v, ro, strided
            back.put(xichan._xichan.stats()['heap_used'], timeout=30)
            q.get(timeout=30)
        ''', pickle.dumps((q, back)).hex())
        ba = bytearray(n)
        ba[0], ba[-1] = 1, 2
        q.put(memoryview(ba))
        q.put(memoryview(b'ab' * (n // 2)))
        q.put(memoryview(bytearray(b'xy' * n))[::2])
        got = back.get(timeout=30) if p.poll() is None else p.communicate()
        self.assertEqual(got, (7, b'xxx', n))
        self.assertEqual(ba[0], 1)  # the receiver wrote its own copy
        used = back.get(timeout=30)
        self.assertLess(used, n)  # the views died: their blocks went back
        q.put(None)
        p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0)
        # In this process a strided view arrives as a copy too; it outlives its queue.
        q2 = queues.create(syncobj=True)
        q2.put(memoryview(bytearray(range(256)) * 1024)[1::2])
        v = q2.get()
        queues.destroy(q2)
        del q2
        self.assertEqual((v.nbytes, v[0], v[1], v[-1]), (n // 8, 1, 3, 255))
        del v

    def test_buffer_outlives_sender(self):  # 87 for buffers (in-flight reference)
        q = queues.create()
        sb = xichan.SharedBuffer(64)
        memoryview(sb)[5] = 5
        q.put(memoryview(sb)[4:8], syncobj=True)
        del sb  # the item's in-flight reference keeps the memory
        v = q.get()
        self.assertEqual((v.nbytes, v.readonly, v[1]), (4, False, 5))
        # Still the shared memory, not a copy: a view of it sent on shares it
        # again, and writes through either are seen through the other.
        v[2] = 7
        q.put(v, syncobj=True)
        w = q.get()
        self.assertEqual(bytes(w), bytes([0, 5, 7, 0]))
        w[3] = 9
        self.assertEqual(v[3], 9)


class TestCrashAndSignals(XTestCase):
    timeout = 90

    def test_kill9_producer(self):  # §0.1: a killed producer's items all stay
        for op in (queues.UNBOUND, queues.UNBOUND_ERROR, queues.UNBOUND_REMOVE):
            with self.subTest(op=op):
                self.check_kill9(op)

    def check_kill9(self, op):
        q = queues.create(1000, unbounditems=op)
        p = spawn_py('''
            q = pickle.loads(bytes.fromhex(sys.argv[1]))
            i = 0
            while True:
                q.put(i, syncobj=True)
                print(i, flush=True)
                i += 1
        ''', pickle.dumps(q).hex())
        values = []
        # Consume a few hundred while the producer runs.
        while len(values) < 300:
            values.append(q.get(timeout=30))
        os.kill(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=30)
        last = int(out.split()[-1]) if out.split() else -1
        self.assertEqual(values, list(range(len(values))))
        # Whatever op the items carry, the rest is delivered as it was put.
        while True:
            try:
                values.append(q.get(timeout=5))
            except queues.QueueEmpty:
                break
        # Every put() that had returned (printed) is there; at most one
        # more may have completed without its print.
        total = len(values)
        self.assertGreaterEqual(total, last + 1)
        self.assertLessEqual(total, last + 2)
        self.assertEqual(values, list(range(len(values))))
        # The daemon notices the death and applies the op to what is left.
        if op is queues.UNBOUND_REMOVE:
            self.assertTrue(wait_for(lambda: q.qsize() == 0, 10))
            return
        n_unbound = 0
        while True:
            try:
                v = q.get(timeout=5)
            except queues.ItemInterpreterDestroyed:
                n_unbound += 1
                continue
            except queues.QueueEmpty:
                break
            if v is queues.UNBOUND:
                n_unbound += 1
            else:
                values.append(v)
        # Every put() that had returned (printed) is accounted for; at most one
        # more may have completed without its print.
        total = len(values) + n_unbound
        self.assertGreaterEqual(total, last + 1)
        self.assertLessEqual(total, last + 2)
        self.assertEqual(values, list(range(len(values))))

    def sigint_child(self, code, *objs):
        p = spawn_py('''
            import signal
            objs = pickle.loads(bytes.fromhex(sys.argv[1]))
            print('ready', flush=True)
            t0 = time.monotonic()
            try:
        ''' + '\n'.join('        ' + line for line in code.strip().splitlines()) + '''
            except KeyboardInterrupt:
                print('interrupted', time.monotonic(), flush=True)
            else:
                print('not interrupted', flush=True)
        ''', pickle.dumps(objs).hex())
        self.assertEqual(p.stdout.readline().strip(), 'ready')
        time.sleep(0.3)  # let it block
        t_sig = time.monotonic()
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=30)
        words = out.split()
        self.assertEqual(words[0], 'interrupted', (out, err))
        self.assertLess(float(words[1]) - t_sig, 0.5)
        return p

    def test_sigint_get(self):  # §0.3 Ctrl-C interrupts any wait (get)
        q = queues.create()
        self.sigint_child('objs[0].get()', q)

    def test_sigint_recv(self):  # §0.3 (recv)
        r, s = channels.create()
        self.sigint_child('objs[0].recv()', r)

    def test_sigint_send_withdraws(self):  # 36
        r, s = channels.create()
        r.recv_nowait(None)  # keep the channel open when the child ends
        self.sigint_child('objs[0].send("never received")', s)
        self.assertEqual(s._info.count, 0)
        self.assertIsNone(r.recv_nowait(None))

    def test_sigint_put_full(self):  # §0.3 (put on a full queue): nothing queued
        q = queues.create(1)
        q.put(0)
        self.sigint_child('objs[0].put(1)', q)
        self.assertEqual(q.qsize(), 1)

    def test_sigint_in_process(self):  # §0.3: a signal handler raising in this process
        q = queues.create()
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0)
        old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with self.assertRaises(KeyboardInterrupt):
                q.get(timeout=10)
        finally:
            signal.signal(signal.SIGALRM, old)
        # A hang bound below get's own timeout: a handler run only once the
        # wait ran out would raise too, but after 10 s.
        self.assertLess(time.monotonic() - t0, 5)
