"""Worker functions for multiprocessing tests (importable by spawn children)."""
import os
import time


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
    q.put('queue ok', syncobj=True)
    # Stay alive until our queue item is taken (else it becomes UNBOUND).
    deadline = time.monotonic() + 30
    while q.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
