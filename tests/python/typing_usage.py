"""Typed use of the public API, checked by `mypy --strict` (make pytypes):
the stubs and hints must let ordinary code type-check with no ignores.
Also runs (tests/python/test_typing.py), so that it stays true code."""
from __future__ import annotations

import queue

import xichan
import xichan.multiprocessing as xmp
from xichan import channels, queues


def use_queues() -> list[int]:
    q: queues.Queue = queues.create(maxsize=4, syncobj=False)
    q.put(1)
    q.put(2, True, 1.0)
    q.put(3, 0.5)
    q.put_many([4], timeout=1)
    got: list[int] = [q.get(), q.get(True, None), q.get(1.0)]
    got += q.get_many(4, False)
    try:
        q.get_nowait()
    except queue.Empty:
        pass
    assert q.qsize() == 0 and q.empty() and not q.full() and q.maxsize == 4
    return got


def use_channels() -> object:
    r, s = channels.create(unbounditems=channels.UNBOUND_REMOVE)
    sent: bool = s.send_nowait(b'x')
    assert sent is False
    obj: object = r.recv(timeout=1.0)
    s.close()
    return obj


def use_multiprocessing() -> int:
    q: xmp.Queue[int] = xmp.Queue(2)
    q.put(1)
    n: int = q.get(timeout=1)
    jq: xmp.JoinableQueue[str] = xmp.JoinableQueue()
    jq.put('task')
    s: str = jq.get()
    jq.task_done()
    jq.join(timeout=5)
    sq: xmp.SimpleQueue[bytes] = xmp.SimpleQueue()
    sq.put(s.encode())
    assert sq.get() == b'task'
    shared = xmp.Queue.from_queue(queues.create())
    shared.put(None)
    q.close()
    q.join_thread()
    return n


def use_package() -> int:
    buf = xichan.SharedBuffer(16)
    view = memoryview(buf)
    view[0] = 7
    assert xichan.is_shareable(buf)
    q = xichan.create_queue()
    assert isinstance(q, xichan.Queue)
    try:
        raise xichan.SegmentFullError('example')
    except xichan.XichanError as e:
        assert e.code is None
    return buf.size


if __name__ == '__main__':
    print(use_queues(), use_channels(), use_multiprocessing(), use_package())
