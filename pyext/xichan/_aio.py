"""Waiting on many queues and channel ends: WaitSet, select(), and asyncio.

Everything here is built on one C object, ``_xichan.WaitSet`` (a
``xichan_waitset``, see xichan_waitset_create(3)): members are queues and
channel ends with the events of interest; readiness is level-triggered and
waiting never takes an item -- the caller then makes a nowait call, which
may lose the race to another consumer, and waits again.

asyncio.  Each running event loop gets one wait set, whose file descriptor
(an eventfd that a helper thread in libxichan writes when a member becomes
ready) is watched with ``loop.add_reader``: no thread per waiter, no
polling.  An awaiting call (``Queue.get_async`` ...) first tries the nowait
form; if that would block, it registers a future on the member
(object, events) and awaits it.  When the fd is readable, the loop's
callback asks the wait set which members are ready and wakes one waiter
per ready member (every waiter for a channel's send end, since each is
waiting for its own item, and every waiter when the object closed).  A
member still ready is reported again on the next loop iteration, so a
waiter that was woken but cancelled before it ran passes nothing on to be
lost: the next waiter is woken then.

Cancellation safety: an awaiting call holds nothing while it awaits --
items are taken or put only by the synchronous nowait calls between
awaits -- so cancelling it, or its timeout, takes and puts nothing.
``send_async`` queues its item first (``chan_send_start``) and awaits its
receipt; cancelled or timed out, it withdraws the item unless a receiver
already took it (then a timeout returns normally, as a blocking send that
was received just in time does, and a cancellation propagates with the
item delivered).
"""

import asyncio
import os
import threading
import weakref
from collections import deque

from . import _xichan
from ._crossinterp import check_timeout

READABLE = _xichan.EV_READABLE
WRITABLE = _xichan.EV_WRITABLE
CLOSED = _xichan.EV_CLOSED
_KQ = _xichan.KIND_QUEUE
_KC = _xichan.KIND_CHANNEL
_TIMEDOUT = object()
_IDLE_MEMBERS = 256   # members a loop keeps registered with no waiter

__all__ = ['WaitSet', 'select', 'READABLE', 'WRITABLE', 'CLOSED']


def _kind_id(obj, events):
    """(kind, id) of a queue or channel end usable for events."""
    from .queues import Queue
    from .channels import RecvChannel, SendChannel
    if isinstance(obj, Queue):
        return _KQ, obj._id
    if isinstance(obj, RecvChannel):
        if events & WRITABLE:
            raise TypeError('a RecvChannel cannot be waited on for writing')
        return _KC, obj._id._id
    if isinstance(obj, SendChannel):
        if events & READABLE:
            raise TypeError('a SendChannel cannot be waited on for reading')
        return _KC, obj._id._id
    raise TypeError(f'expected a Queue, RecvChannel or SendChannel, '
                    f'not {type(obj).__name__!r}')


class WaitSet:
    """Wait for the first of many queues and channel ends to be ready.

    ``add(obj, events=READABLE)`` returns a key; ``wait(timeout=None)``
    returns ``[(obj, events), ...]`` for the members ready now (level-
    triggered: a member still ready is returned again; nothing is taken),
    ``[]`` when ``timeout`` passes.  ``fileno()`` is a file descriptor that
    polls readable while a member may be ready, for ``selectors``, ``select``
    and event loops: when it is readable, call ``wait(0)``.  ``CLOSED`` is
    always reported for a destroyed object or a closed channel.  One thread
    uses a WaitSet at a time (a wait holds it); select() keeps one per thread.
    """

    def __init__(self):
        self._ws = _xichan.WaitSet()
        self._objs = {}

    def add(self, obj, events=READABLE):
        """Watch a Queue, RecvChannel (READABLE) or SendChannel (WRITABLE)
        for events (READABLE | WRITABLE); return the key remove() takes."""
        kind, oid = _kind_id(obj, events)
        key = self._ws.add(kind, oid, events, 0)
        self._objs[key] = obj
        return key

    def remove(self, key):
        """Stop watching the member add() returned key for."""
        self._ws.remove(key)
        del self._objs[key]

    def wait(self, timeout=None):
        """Return [(obj, events)] of the members ready now, waiting up to
        "timeout" seconds (None: forever; 0: just look) for one; [] if none."""
        check_timeout(timeout)
        try:
            ready = self._ws.wait(timeout)
        except TimeoutError:
            return []
        return [(self._objs[m], ev) for m, ev, _ in ready]

    def fileno(self):
        """A file descriptor that polls readable while a member may be
        ready (then call wait(0)); owned by the set."""
        return self._ws.fileno()

    def close(self):
        """Remove every member and free the set and its descriptor."""
        self._ws.close()
        self._objs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_local = threading.local()


def select(readable=(), writable=(), timeout=None):
    """Wait until some of the queues and channel ends are ready.

    Like ``select.select``: returns ``(ready_readable, ready_writable)``,
    sublists of the arguments (queues and RecvChannels for reading, queues
    and SendChannels for writing), both empty if ``timeout`` seconds (None:
    forever; 0: just look) pass first.  Ready means a nowait call would not
    block now -- another consumer may still win the race for the item.
    A destroyed object or a closed channel counts as ready (the call then
    raises).
    """
    check_timeout(timeout)
    readable = list(readable)
    writable = list(writable)
    ws = getattr(_local, 'ws', None)
    if ws is None or getattr(_local, 'pid', None) != os.getpid():
        ws = _local.ws = _xichan.WaitSet()
        _local.pid = os.getpid()
    members = []
    try:
        for i, obj in enumerate(readable):
            kind, oid = _kind_id(obj, READABLE)
            members.append(ws.add(kind, oid, READABLE, i << 1))
        for i, obj in enumerate(writable):
            kind, oid = _kind_id(obj, WRITABLE)
            members.append(ws.add(kind, oid, WRITABLE, (i << 1) | 1))
        try:
            ready = ws.wait(timeout)
        except TimeoutError:
            ready = []
    finally:
        for m in members:
            ws.remove(m)
    r = sorted(u >> 1 for _, _, u in ready if not u & 1)
    w = sorted(u >> 1 for _, _, u in ready if u & 1)
    return [readable[i] for i in r], [writable[i] for i in w]


# ------------------------------------------------------------- asyncio

class _LoopWaiter:
    """The wait set of one event loop and the futures waiting on it."""

    def __init__(self, loop):
        self._loop = weakref.ref(loop)
        self.pid = os.getpid()
        self.ws = _xichan.WaitSet()
        self.fd = self.ws.fileno()
        self.members = {}   # (kind, id, events) -> member
        self.keys = {}      # member -> (kind, id, events)
        self.waiters = {}   # member -> deque of futures
        loop.add_reader(self.fd, self._on_ready)

    def register(self, loop, kind, oid, events):
        key = (kind, oid, events)
        m = self.members.get(key)
        if m is None:
            m = self.ws.add(kind, oid, events, 0)
            self.members[key] = m
            self.keys[m] = key
            self.waiters[m] = deque()
        fut = loop.create_future()
        self.waiters[m].append(fut)
        return m, fut

    def unregister(self, m, fut):
        dq = self.waiters.get(m)
        if dq is None:
            return
        try:
            dq.remove(fut)
        except ValueError:
            pass
        # A member with no waiter left stays registered (the next await on
        # the object needs no new registration) until it is reported ready
        # with nobody waiting, or too many idle ones pile up.
        if not dq and len(self.members) > _IDLE_MEMBERS:
            self._drop(m)

    def _drop(self, m):
        key = self.keys.pop(m)
        del self.members[key]
        del self.waiters[m]
        self.ws.remove(m)

    def _on_ready(self):
        for m, ev, _ in self.ws.wait(0):
            dq = self.waiters.get(m)
            if dq is None:
                continue
            if not dq:      # ready, and nobody here waits for it: stop watching
                self._drop(m)
                continue
            every = ev & CLOSED or (self.keys[m][0] == _KC and self.keys[m][2] == WRITABLE)
            while dq:
                fut = dq.popleft()
                if not fut.done():
                    fut.set_result(None)
                    if not every:
                        break
            if ev & CLOSED:
                self._drop(m)

    def close(self):
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            try:
                loop.remove_reader(self.fd)
            except Exception:
                pass
        self.ws.close()


_waiters = {}   # id(loop) -> (weakref to loop, _LoopWaiter)
_waiters_lock = threading.Lock()


def _forget(key):
    with _waiters_lock:
        entry = _waiters.pop(key, None)
    if entry is not None:
        try:
            entry[1].close()
        except Exception:
            pass


def _waiter(loop):
    entry = _waiters.get(id(loop))
    if entry is not None and entry[0]() is loop and entry[1].pid == os.getpid():
        return entry[1]
    with _waiters_lock:
        # Loops closed since (asyncio.run makes one per call): free their sets.
        for k, (ref, w) in list(_waiters.items()):
            lp = ref()
            if lp is None or lp.is_closed() or w.pid != os.getpid():
                del _waiters[k]
                if w.pid == os.getpid():
                    w.ws.close()
        w = _LoopWaiter(loop)
        key = id(loop)
        _waiters[key] = (weakref.ref(loop, lambda _r, k=key: _forget(k)), w)
    return w


def _deadline(loop, timeout):
    check_timeout(timeout)
    return None if timeout is None else loop.time() + timeout


def _expire(fut):
    if not fut.done():
        fut.set_result(_TIMEDOUT)


async def _ready(loop, kind, oid, events, deadline):
    """Awaits (kind, oid) having events; _TIMEDOUT if deadline passed first."""
    if deadline is not None and loop.time() >= deadline:
        return _TIMEDOUT
    w = _waiter(loop)
    m, fut = w.register(loop, kind, oid, events)
    timer = None if deadline is None else loop.call_at(deadline, _expire, fut)
    try:
        return await fut
    finally:
        if timer is not None:
            timer.cancel()
        w.unregister(m, fut)


async def _until(try_once, empty, kind, oid, events, timeout):
    """try_once() until it does not raise empty, awaiting events on (kind,
    oid) between tries; at the deadline, one last try, whose empty raises."""
    loop = asyncio.get_running_loop()
    deadline = _deadline(loop, timeout)
    while True:
        try:
            return try_once()
        except empty:
            pass
        if await _ready(loop, kind, oid, events, deadline) is _TIMEDOUT:
            return try_once()


async def queue_get(q, timeout):
    from .queues import QueueEmpty
    return await _until(q.get_nowait, QueueEmpty, _KQ, q._id, READABLE, timeout)


async def queue_put(q, obj, timeout, kw):
    from .queues import QueueFull
    return await _until(lambda: q.put_nowait(obj, **kw), QueueFull, _KQ, q._id, WRITABLE,
                        timeout)


async def chan_recv(rch, timeout):
    from .channels import ChannelEmptyError
    try:
        return await _until(rch.recv_nowait, ChannelEmptyError, _KC, rch._id._id, READABLE,
                            timeout)
    except ChannelEmptyError:  # only the last try, at the deadline, raises it
        raise TimeoutError('timed out') from None


async def chan_send(sch, obj, op, timeout, buffer):
    loop = asyncio.get_running_loop()
    deadline = _deadline(loop, timeout)
    cid = sch._id._id
    ticket, exports = _xichan.chan_send_start(cid, obj, op, buffer)
    received = None      # True: taken by a receiver; False: withdrawn or dropped
    try:
        while True:
            try:
                if _xichan.chan_send_check(cid, ticket):
                    received = True
                    return
            except BaseException:
                received = False     # dropped by a forced close or a destroy
                raise
            if await _ready(loop, _KC, cid, WRITABLE, deadline) is _TIMEDOUT:
                received = _xichan.chan_send_cancel(cid, ticket)
                if received:
                    return   # received just in time
                raise TimeoutError('timed out')
    finally:
        if received is None:   # cancelled, or an error: take the item back
            received = _xichan.chan_send_cancel(cid, ticket)
        if exports:
            if received:
                _xichan.chan_send_settle(cid, exports)
            else:
                _xichan.chan_send_drop(exports)
