"""What a process puts outlives the process (xichan(7), "Items and sessions").

A session that ends because its process exits or dies leaves every item it
put deliverable as it was put, whatever the item's unbound op, and its
channel associations go without closing any channel.  These are the
patterns users write with multiprocessing: a worker that puts and exits, a
pool whose results are read after the pool is gone, a pipeline whose stages
forward a stop marker and exit.  Each runs many times, because the failure
they guard against depended on timing: the moment join() returns, the items
are there.
"""
import multiprocessing
import os
import signal
import sys
import unittest
from concurrent.futures import ProcessPoolExecutor

import _mpworkers as w
from _env import XTestCase, run_py, wait_for

from xichan import _xichan, channels, queues

# The join test runs 200 rounds per start method on 3.13 and 20 on older
# Pythons: the property is the daemon's, not the Python version's.
ROUNDS = 200 if sys.version_info >= (3, 13) else 20


def methods():
    return [m for m in ('fork', 'spawn', 'forkserver')
            if m in multiprocessing.get_all_start_methods()]


class TestJoinThenRead(XTestCase):
    timeout = 600

    def check(self, method, rounds):
        ctx = multiprocessing.get_context(method)
        q = queues.create()
        for r in range(rounds):
            p = ctx.Process(target=w.put_and_exit, args=(q, 5, r))
            p.start()
            p.join()
            self.assertEqual(p.exitcode, 0)
            got = [q.get_nowait() for _ in range(5)]
            self.assertEqual(got, [(r, i) for i in range(5)], f'round {r}')
            self.assertTrue(q.empty())

    def test_fork(self):
        if 'fork' not in methods():
            self.skipTest('no fork here')
        self.check('fork', ROUNDS)

    def test_spawn(self):
        self.check('spawn', ROUNDS)

    def test_exit_kinds(self):
        """sys.exit, an exception, os._exit: the items stay all the same."""
        q = queues.create(unbounditems=queues.UNBOUND_REMOVE)
        for how in ('sys.exit(3)', 'raise SystemError("boom")', 'os._exit(0)', 'pass'):
            r = run_py(f'''
                q = pickle.loads(bytes.fromhex(sys.argv[1]))
                q.put({how!r}); q.put(1, unbounditems=queues.UNBOUND_ERROR)
                {how}
            ''', __import__('pickle').dumps(q).hex(), check=False)
            self.assertNotEqual(r.returncode, None)
            self.assertEqual((q.get_nowait(), q.get_nowait()), (how, 1))


class TestWorkerPools(XTestCase):
    timeout = 300

    def test_readme_natural_order(self):
        """Stop markers, join, then read: every result is there."""
        for method in methods():
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                jobs, results = queues.create(maxsize=4), queues.create()
                ps = [ctx.Process(target=w.square_worker, args=(jobs, results))
                      for _ in range(2)]
                for p in ps:
                    p.start()
                for n in range(10):
                    jobs.put(n)
                for p in ps:
                    jobs.put(None)
                for p in ps:
                    p.join()
                squares = sorted(results.get_nowait() for _ in range(10))
                self.assertEqual([sq for _, sq in squares], [n * n for n in range(10)])
                self.assertTrue(results.empty())

    def test_pool_results_read_after_the_pool(self):
        for method in methods():
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                results = queues.create()
                with ctx.Pool(2, initializer=w.results_init, initargs=(results,)) as pool:
                    self.assertEqual(sorted(pool.map(w.put_result, range(200))),
                                     list(range(200)))
                # The pool's workers are gone (terminated at the with's end).
                got = sorted(results.get_nowait() for _ in range(200))
                self.assertEqual(got, [(n, n * n) for n in range(200)])
                self.assertTrue(results.empty())

    def test_executor_results_read_after_the_executor(self):
        for method in methods():
            with self.subTest(method=method):
                ctx = multiprocessing.get_context(method)
                results = queues.create()
                with ProcessPoolExecutor(2, mp_context=ctx, initializer=w.results_init,
                                         initargs=(results,)) as ex:
                    self.assertEqual(sorted(ex.map(w.put_result, range(200))),
                                     list(range(200)))
                got = sorted(results.get_nowait() for _ in range(200))
                self.assertEqual(got, [(n, n * n) for n in range(200)])

    def test_three_stage_pipeline(self):
        """Each stage forwards None and exits; 20 runs, all exact."""
        ctx = multiprocessing.get_context('spawn' if 'fork' not in methods() else 'fork')
        for run in range(20):
            q0, q1, q2, q3 = (queues.create() for _ in range(4))
            stages = [ctx.Process(target=w.stage, args=a) for a in
                      ((q0, q1, w.plus_one), (q1, q2, w.times_two), (q2, q3, w.plus_one))]
            for p in stages:
                p.start()
            for v in range(50):
                q0.put(v)
            q0.put(None)
            for p in stages:
                p.join()
            out = [q3.get_nowait() for _ in range(51)]
            self.assertEqual(out, [(v + 1) * 2 + 1 for v in range(50)] + [None], f'run {run}')
            self.assertTrue(q3.empty())


class TestChannels(XTestCase):

    def test_sole_sender_exits_before_the_receiver_looks(self):
        r, s = channels.create()
        ctx = multiprocessing.get_context(methods()[0])
        p = ctx.Process(target=w.send_two, args=(s,))
        p.start()
        p.join()
        self.assertFalse(r.is_closed)
        self.assertEqual((r.recv_nowait(), r.recv_nowait()), ('one', 'two'))


if __name__ == '__main__':
    unittest.main()


class TestDaemonStop(XTestCase):
    timeout = 120

    def test_sigterm_keeps_the_namespace(self):
        """SIGTERM (systemctl stop/restart): nothing is lost, clients go on,
        and the next daemon -- here started by a new client -- adopts it."""
        name = f'keep{os.getpid()}'
        q = queues.create(name=name, unbounditems=queues.UNBOUND_REMOVE)
        r, s = channels.create(name=name)
        q.put('before')
        s.send_nowait('on the channel')
        pid = _xichan.stats()['daemon_pid']
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not _alive(pid), 10))
        q.put('meanwhile')  # no daemon: the data plane goes on
        run_py(f'''
            q = queues.open({name!r})
            assert q.qsize() == 2, q.qsize()
            q.put('from a new process')
            r, s = channels.open({name!r})
            s.send_nowait('and again')
        ''')
        self.assertNotEqual(_xichan.stats()['daemon_pid'], pid)
        self.assertEqual([q.get_nowait() for _ in range(3)],
                         ['before', 'meanwhile', 'from a new process'])
        self.assertEqual((r.recv_nowait(), r.recv_nowait()), ('on the channel', 'and again'))
        queues.destroy(q)
        channels.destroy(r)


def _alive(pid):
    """Running, and not a zombie waiting to be reaped."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False
