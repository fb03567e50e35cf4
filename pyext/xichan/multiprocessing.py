"""multiprocessing's queues over xichan: change one import line.

    from multiprocessing import Queue           # before
    from xichan.multiprocessing import Queue    # after

``Queue(maxsize=0)``, ``SimpleQueue()`` and ``JoinableQueue(maxsize=0)``
have the signatures and behaviour of multiprocessing's: put/get with
``block`` and ``timeout``, put_nowait/get_nowait, qsize/empty/full, close,
join_thread, cancel_join_thread, task_done/join, and ``queue.Empty`` /
``queue.Full`` raised.  Each is a handle on xichan queues in the
namespace's shared segment, so:

- it pickles by id into any process: a child of any start method (fork,
  spawn, forkserver), a ``Pool`` or ``ProcessPoolExecutor`` task, a
  process found by name -- which multiprocessing's own queues refuse;
- put() returns once the item is in the shared queue (there is no feeder
  thread, nothing is buffered in the process, an unpicklable object raises
  in put() itself), so close(), join_thread() and cancel_join_thread() have
  nothing to flush;
- a blocked get() sleeps on a futex with the GIL released and wakes within
  microseconds of the put; qsize() works on every platform;
- ``Queue.from_queue(q)`` wraps an existing ``xichan.queues.Queue`` (a
  named one, say) and ``.queue`` is the one under a handle: the two APIs
  can share a queue.

Differences from multiprocessing, all on purpose: a timeout is a float
number of seconds (a non-number raises TypeError; a negative one means do
not wait, as in multiprocessing); after close(), put() and get() raise
ValueError and empty(), full() and qsize() still answer.

JoinableQueue.join() blocks without polling, across processes.  Its count
of unfinished tasks is one token per put() in a second xichan queue (put
queues the token, then the item; task_done() takes a token).  When a worker
that took an item dies before its task_done(), its task stays unfinished:
join() keeps waiting, as multiprocessing's does, because the work was not
done; join(timeout=...) (an extension) lets a supervisor notice, and a
task_done() on behalf of the dead worker (after re-queueing its item, if
it should be redone) lets join() return.  Two narrower windows: a process
killed inside put(), between the token and the item, leaves one task that
no item will end (join() waits; one task_done() more clears it); one
killed inside task_done(), after taking the last token and before waking
the joiners, leaves the joiners already asleep waiting until their timeout
or the next wake, while a join() called afterwards sees the zero and
returns at once.  Both are tested by killing a process at that step.
"""

from __future__ import annotations

import queue as _pyqueue
from typing import Any, Generic, TypeVar

from . import queues as _queues

__all__ = ['Queue', 'SimpleQueue', 'JoinableQueue', 'Empty', 'Full']

#: Raised by get() with block=False or when its timeout passes (queue.Empty).
Empty = _pyqueue.Empty
#: Raised by put() with block=False or when its timeout passes (queue.Full).
Full = _pyqueue.Full

_T = TypeVar('_T')

# task_done() drains at most this many joiner registrations per call; more
# joiners than that are woken by later calls (each joiner re-checks).
_MAX_JOINERS = 1 << 16


def _timeout(block: object, timeout: float | None) -> float | None:
    """xichan's timeout for multiprocessing's (block, timeout)."""
    if not block:
        return 0
    if timeout is not None:
        try:
            if timeout < 0:  # multiprocessing: do not wait
                return 0
        except TypeError:
            pass  # xichan names the bad type
    return timeout


class Queue(Generic[_T]):
    """A process-shared FIFO queue, with multiprocessing.Queue's API.

    maxsize <= 0 means unbounded.  put() blocks while the queue is full,
    get() while it is empty; both raise queue.Full / queue.Empty when
    block is false or the timeout passes.
    """

    _queue: _queues.Queue
    _closed: bool

    def __init__(self, maxsize: int = 0, *, ctx: object = None) -> None:
        """A new queue; "ctx" (a multiprocessing context) is accepted and
        not needed: the queue works with every start method."""
        self._init(_queues.create(max(0, maxsize)))

    def _init(self, q: _queues.Queue) -> None:
        self._queue = q
        self._closed = False

    @classmethod
    def from_queue(cls, queue: _queues.Queue) -> Queue[Any]:
        """A handle with this API on an existing xichan.queues.Queue."""
        if not isinstance(queue, _queues.Queue):
            raise TypeError(f'queue must be a xichan.queues.Queue, '
                            f'not {type(queue).__name__!r}')
        self = cls.__new__(cls)
        self._init(queue)
        return self

    @property
    def queue(self) -> _queues.Queue:
        """The xichan.queues.Queue under this handle."""
        return self._queue

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._state()))

    def _state(self) -> tuple[_queues.Queue, ...]:
        return (self._queue,)

    def __repr__(self) -> str:
        return f'<{type(self).__module__}.{type(self).__qualname__} id={self._queue.id}>'

    def _check_closed(self) -> None:
        if self._closed:
            raise ValueError(f'Queue {self!r} is closed')

    def put(self, obj: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put obj into the queue.

        If the queue is full, wait for room: for ever when block is true
        and timeout None, at most timeout seconds when it is a number,
        not at all when block is false; then raise queue.Full.
        """
        self._check_closed()
        self._queue.put(obj, True, _timeout(block, timeout))

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return an item from the queue.

        If the queue is empty, wait for an item as put() waits for room,
        then raise queue.Empty.
        """
        self._check_closed()
        obj: _T = self._queue.get(True, _timeout(block, timeout))
        return obj

    def put_nowait(self, obj: _T) -> None:
        """put(obj, False): queue.Full at once if the queue is full."""
        self.put(obj, False)

    def get_nowait(self) -> _T:
        """get(False): queue.Empty at once if the queue is empty."""
        return self.get(False)

    def qsize(self) -> int:
        """The number of items in the queue (at this instant)."""
        return self._queue.qsize()

    def empty(self) -> bool:
        """True if the queue holds no item (at this instant)."""
        return self._queue.empty()

    def full(self) -> bool:
        """True if the queue holds maxsize items (never when unbounded)."""
        return self._queue.full()

    def close(self) -> None:
        """This handle will put and get no more (ValueError if it tries).

        Other handles, in this process or others, are not affected, and the
        items stay in the queue: nothing is buffered here to flush or lose.
        """
        self._closed = True

    def join_thread(self) -> None:
        """Return at once (after close(), as multiprocessing requires):
        put() itself moved every item into the shared queue."""
        if not self._closed:
            raise AssertionError(f'Queue {self!r} not closed')

    def cancel_join_thread(self) -> None:
        """Do nothing: there is no feeder thread whose data could be lost."""



class JoinableQueue(Queue[_T]):
    """A Queue whose consumers call task_done() for every item they got,
    and join() waits until every item put was done, in any process.

    See the module's docstring for what a worker's death does to the
    count of unfinished tasks.
    """

    _unfinished: _queues.Queue
    _joiners: _queues.Queue
    _wakes: _queues.Queue

    def __init__(self, maxsize: int = 0, *, ctx: object = None) -> None:
        """A new joinable queue; "ctx" is accepted and not needed."""
        self._init(_queues.create(max(0, maxsize)), _queues.create(),
                   _queues.create(), _queues.create())

    def _init(self, q: _queues.Queue, *aux: _queues.Queue) -> None:
        super()._init(q)
        if not aux:
            raise TypeError('JoinableQueue needs its own queues: create one with '
                            'JoinableQueue(), not from_queue()')
        self._unfinished, self._joiners, self._wakes = aux

    @classmethod
    def from_queue(cls, queue: _queues.Queue) -> Queue[Any]:
        """Not for JoinableQueue: its count of unfinished tasks lives in
        queues of its own (TypeError)."""
        raise TypeError('JoinableQueue keeps its count in queues of its own: '
                        'create one with JoinableQueue() and share that')

    def _state(self) -> tuple[_queues.Queue, ...]:
        return (self._queue, self._unfinished, self._joiners, self._wakes)

    def put(self, obj: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put obj into the queue (as Queue.put) and count one unfinished
        task, which a task_done() ends."""
        self._check_closed()
        # The token first: a join() that sees the item also sees its task.
        self._unfinished.put(None)
        try:
            self._queue.put(obj, True, _timeout(block, timeout))
        except BaseException:
            self._done_one(refuse=False)
            raise

    def task_done(self) -> None:
        """Say that one item got from the queue was processed; join()
        returns once every put() has its task_done().  ValueError if called
        more times than there were items put."""
        self._done_one(refuse=True)

    def _done_one(self, refuse: bool) -> None:
        try:
            self._unfinished.get(False)
        except _queues.QueueEmpty:
            if refuse:
                raise ValueError('task_done() called too many times') from None
            return
        if self._unfinished.empty():
            self._wake_joiners()

    def _wake_joiners(self) -> None:
        try:
            n = len(self._joiners.get_many(_MAX_JOINERS, False))
        except _queues.QueueEmpty:
            return
        self._wakes.put_many([None] * n)

    def join(self, timeout: float | None = None) -> None:
        """Block until every item put was got and processed (task_done()).

        timeout (xichan's extension): give up after that many seconds,
        raising TimeoutError; the tasks are not affected.
        """
        if self._unfinished.empty():
            return
        import time
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            # Register, then look: a task_done() that empties the count after
            # our look drains our registration and wakes us.  A wake meant
            # for a joiner that had already seen the zero wakes a later one
            # for nothing; it looks again and waits again.
            self._joiners.put(None)
            if self._unfinished.empty():
                self._unregister()
                return
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._wakes.get(True, left)
            except _queues.QueueEmpty:
                self._unregister()
                raise TimeoutError(f'{self!r}: tasks still unfinished after '
                                   f'{timeout} s') from None
            if self._unfinished.empty():
                return

    def _unregister(self) -> None:
        try:
            self._joiners.get(False)
        except _queues.QueueEmpty:
            pass  # a task_done() took it and queued a wake


class SimpleQueue(Generic[_T]):
    """An unbounded process-shared FIFO queue, with
    multiprocessing.SimpleQueue's API: put(obj), get(), empty(), close()."""

    _queue: _queues.Queue
    _closed: bool

    def __init__(self, *, ctx: object = None) -> None:
        """A new queue; "ctx" is accepted and not needed."""
        self._queue = _queues.create()
        self._closed = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self._queue,)))

    def __repr__(self) -> str:
        return f'<{type(self).__module__}.{type(self).__qualname__} id={self._queue.id}>'

    @property
    def queue(self) -> _queues.Queue:
        """The xichan.queues.Queue under this handle."""
        return self._queue

    def _check_closed(self) -> None:
        if self._closed:
            raise OSError(f'SimpleQueue {self!r}: handle is closed')

    def put(self, obj: _T) -> None:
        """Put obj into the queue."""
        self._check_closed()
        self._queue.put(obj)

    def get(self) -> _T:
        """Remove and return an item, waiting for one if the queue is empty."""
        self._check_closed()
        obj: _T = self._queue.get()
        return obj

    def empty(self) -> bool:
        """True if the queue holds no item (at this instant)."""
        self._check_closed()
        return self._queue.empty()

    def close(self) -> None:
        """This handle will put and get no more (OSError if it tries, as
        multiprocessing's closed pipe does); the items stay.  Closing twice
        is allowed."""
        self._closed = True



def _rebuild(cls: type[Queue[Any]] | type[SimpleQueue[Any]],
             state: tuple[_queues.Queue, ...]) -> Queue[Any] | SimpleQueue[Any]:
    # A handle in the receiving process: the same queues, open.
    self = object.__new__(cls)
    if isinstance(self, SimpleQueue):
        self._queue, = state
        self._closed = False
    else:
        self._init(*state)
    return self
