"""Worker functions for multiprocessing tests (importable by spawn children)."""
import os


def drain(q, out):
    """Get items until None; report (pid, items) on out."""
    from xichan import queues
    got = []
    while True:
        v = q.get(timeout=60)
        if v is None:
            break
        got.append(v)
    out.put((os.getpid(), got), syncobj=False)


_pool_q = None


def pool_init(q):
    global _pool_q
    _pool_q = q


def pool_drain(_):
    got = []
    while True:
        v = _pool_q.get(timeout=60)
        if v is None:
            return got
        got.append(v)


def echo_objects(q, r, s, sb):
    """Uses every kind of handle it was given as Process args."""
    v = r.recv(timeout=30)
    memoryview(sb)[0] = 77
    s.send((v, os.getpid()), timeout=30)
    q.put('queue ok', syncobj=True)  # outlives this process (xichan(7))


def put_and_exit(q, n, tag):
    """Puts n items and returns: the process exits right after."""
    for i in range(n):
        q.put((tag, i))


def square_worker(jobs, results):
    """The README's worker: squares until the None stop marker."""
    for n in iter(jobs.get, None):
        results.put((n, n * n))


_results = None


def results_init(q):
    global _results
    _results = q


def put_result(n):
    """A Pool/executor task that answers through a xichan queue."""
    _results.put((n, n * n))
    return n


def stage(inq, outq, f):
    """A pipeline stage: applies f until None, forwards None, exits."""
    for v in iter(inq.get, None):
        outq.put(f(v))
    outq.put(None)


def plus_one(v):
    return v + 1


def times_two(v):
    return v * 2


def send_two(s):
    """The channel's only sender: sends two items and exits."""
    s.send_nowait('one')
    s.send_nowait('two')
