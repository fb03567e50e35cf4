"""Cross-process, cross-interpreter queues (the API of 3.13's
test.support.interpreters.queues, over xichan's shared segment).

Differences from CPython 3.13, all deliberate (see xichan(7)):

- timeouts are float seconds on a monotonic clock (None waits forever, 0 tries
  once, negative -> ValueError, non-number -> TypeError), and a blocked
  put()/get() sleeps on a futex with the GIL released, no polling;
- put()/get() take both call forms: the seeds' ``put(obj, timeout)`` and
  ``get(timeout)``, and multiprocessing's and 3.14's ``put(obj, block,
  timeout)`` and ``get(block, timeout)``: a bool in the first optional
  position is ``block``, a number or None is ``timeout``; ``block=False``
  does not wait.  The 3.14 keyword ``unbounditems=`` is accepted too;
- xichan.multiprocessing wraps these queues in multiprocessing's Queue,
  SimpleQueue and JoinableQueue API;
- full() is False when maxsize <= 0; list_all() is in creation order;
- a queue can be named (``create(name=...)``, ``open(name)``): a named queue
  is kept by the namespace until ``destroy()``;
- ``QueueEmptyError``/``QueueFullError`` are aliases of QueueEmpty/QueueFull;
- a Queue pickles by id, so passing it to a multiprocessing child (spawn or
  fork) attaches the same queue there;
- put_many()/get_many() (and their _nowait variants) move a batch with one
  lock and one wake-up: see Queue.put_many.
- what a process puts outlives the process: the unbound ops (UNBOUND,
  UNBOUND_ERROR, UNBOUND_REMOVE) apply only when a subinterpreter is
  destroyed while its process lives on (see xichan(7), "Items and sessions").
"""

import operator
import os
import pickle
import queue
import weakref

from . import _xichan, _crossinterp, _bindings, NotShareableError
from ._crossinterp import UNBOUND_ERROR, UNBOUND_REMOVE

__all__ = [
    'UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE',
    'create', 'list_all', 'open', 'destroy',
    'Queue',
    'QueueError', 'QueueNotFoundError', 'QueueEmpty', 'QueueFull',
    'QueueEmptyError', 'QueueFullError',
    'ItemInterpreterDestroyed', 'NotShareableError',
]


class QueueError(RuntimeError):
    """Indicates that a queue-related error happened."""


class QueueNotFoundError(QueueError):
    """The targeted queue no longer exists."""


class QueueEmpty(QueueError, queue.Empty):
    """Raised from get_nowait() when the queue is empty.

    It is also raised from get() if it times out.
    """


class QueueFull(QueueError, queue.Full):
    """Raised from put_nowait() when the queue is full.

    It is also raised from put() if it times out.
    """


# The seeds' spellings.
QueueEmptyError = QueueEmpty
QueueFullError = QueueFull


class ItemInterpreterDestroyed(QueueError,
                               _crossinterp.ItemInterpreterDestroyed):
    """Raised from get() and get_nowait()."""


_SHARED_ONLY = _xichan.FMT_MSGPACK
_PICKLED = _xichan.FMT_PICKLE
_UNBOUND_ITEM = _xichan.UNBOUND_ITEM
# Bound once: put()/get() are the hot path.
_queue_put = _xichan.queue_put
_queue_get = _xichan.queue_get
_queue_put_many = _xichan.queue_put_many
_queue_get_many = _xichan.queue_get_many
# put_many: one bytes per item (queue_put_many's form); small scalars are
# written by the extension itself (the bytes pickle.dumps writes).
_dumps_many = _xichan.pickle_dumps
_pickle_dumps = _xichan.pickle_dumps


class _PickledView:
    """A memoryview on its way into a pickle (a plain memoryview cannot be
    pickled): its bytes as a pickle.PickleBuffer -- out of band when big, so
    they are copied once into the item -- and its format, itemsize and shape,
    which _view_of puts back over the receiver's copy.  A strided view is
    gathered in C order first (one more copy)."""

    __slots__ = ('mv',)

    def __init__(self, mv):
        self.mv = mv

    def __reduce_ex__(self, protocol):
        mv = self.mv
        if mv.c_contiguous:
            data = mv
        elif mv.readonly:
            data = mv.tobytes()
        else:
            data = bytearray(mv)
        return (_view_of, (pickle.PickleBuffer(data), mv.format, mv.itemsize, mv.shape))


def _view_of(buf, fmt, itemsize, shape):
    # buf: bytes (the view was read-only) or bytearray, the receiver's own copy.
    return _xichan.buffer_view(buf, fmt, itemsize, tuple(shape))


UNBOUND = _crossinterp.UnboundItem.singleton('queue', __name__)


_serialize_unbound, _resolve_unbound = _crossinterp.unbound_codec(UNBOUND,
                                                                  ItemInterpreterDestroyed)
_unbound_arg = _crossinterp.pick_unbound


def create(maxsize=0, *, syncobj=False, unbounditems=UNBOUND, name=None):
    """Return a new cross-interpreter queue.

    The queue may be used to pass data safely between interpreters and
    processes.

    "syncobj" sets the default for Queue.put() and Queue.put_nowait().

    "unbounditems" likewise sets the default.  See Queue.put() for
    supported values.  The default value is UNBOUND, which replaces
    the unbound item.

    "name" (xichan) names the queue in the namespace: open(name) finds it
    from any process, and it lives until destroy() is called.
    """
    maxsize = operator.index(maxsize)
    _check_name(name, optional=True)
    fmt = _SHARED_ONLY if syncobj else _PICKLED
    unbound = _serialize_unbound(unbounditems)
    unboundop, = unbound
    qid = _xichan.queue_create(maxsize, fmt, unboundop, name)
    return Queue._adopt(qid, fmt, unbound, maxsize)


def open(name):
    """Return the Queue created with this name (QueueNotFoundError if none)."""
    _check_name(name)
    return Queue(_xichan.queue_open(name))


def _check_name(name, optional=False):
    if not isinstance(name, str) and not (optional and name is None):
        raise TypeError(f'name must be a str{" or None" if optional else ""}, '
                        f'not {type(name).__name__!r}')


def destroy(queue):
    """Destroy a queue at once (a Queue or an id); its items are dropped."""
    qid = queue.id if isinstance(queue, Queue) else operator.index(queue)
    _xichan.queue_destroy(qid)


def list_all():
    """Return a list of all open queues, oldest first."""
    res = []
    for qid, fmt, unboundop, _maxsize, _name in _xichan.queue_list():
        try:
            res.append(Queue._bind(qid, fmt, (unboundop,)))
        except QueueNotFoundError:  # destroyed meanwhile
            pass
    return res


_known_queues = weakref.WeakValueDictionary()


def _wait_arg(block, timeout):
    """The timeout of a put/get call whose "block" is not True.

    block=False: 0 (try once, whatever "timeout" says, as multiprocessing
    does).  Any other non-bool in that position is the seeds' "timeout"
    given positionally (a number or None); then "timeout" must not be given
    as well.
    """
    if block is False:
        return 0
    if isinstance(block, bool):  # True: the caller's fast path missed it
        return timeout
    if timeout is not None:
        raise TypeError(f'block must be a bool, not {type(block).__name__!r} '
                        '(a number in its place is the timeout, and then '
                        'timeout= cannot be given as well)')
    if block is not None:
        _crossinterp.check_timeout(block)
    return block


class Queue:
    """A cross-interpreter queue: Queue(id) is the queue with that id.

    create() makes a new one; a Queue pickles by id, so sending it to
    another process or interpreter gives that one the same queue.
    """

    def __new__(cls, id, /):
        return cls._bind(id, None, None)

    @classmethod
    def _bind(cls, id, _fmt, _unbound):
        # There is only one instance for any given ID.
        if isinstance(id, int):
            id = int(id)
        else:
            raise TypeError(f'id must be an int, got {id!r}')
        try:
            return _known_queues[id]
        except KeyError:
            pass
        _xichan.queue_bind(id)
        self = super().__new__(cls)
        self._id = id
        _bindings.hold(self, _xichan.queue_bind)
        try:
            maxsize, fmt, op = _xichan.queue_defaults(id)
        except QueueNotFoundError:
            self._bound = False
            raise
        self._maxsize = maxsize
        self._fmt = fmt if _fmt is None else _fmt
        self._unbound = (op,) if _unbound is None else _unbound
        _known_queues[id] = self
        return self

    @classmethod
    def _adopt(cls, qid, fmt, unbound, maxsize):
        # create() already holds one binding for the new queue.
        self = super().__new__(cls)
        self._id = qid
        _bindings.hold(self, _xichan.queue_bind)
        self._fmt = fmt
        self._unbound = unbound
        self._maxsize = maxsize
        _known_queues[qid] = self
        return self

    def __del__(self):
        _bindings.release(self, _xichan.queue_release)
        try:
            if _known_queues.get(self._id) is self:
                del _known_queues[self._id]
        except Exception:
            pass

    def __repr__(self):
        return f'{type(self).__name__}({self.id})'

    def __hash__(self):
        return hash(self._id)

    # for pickling:
    def __getnewargs__(self):
        return (self._id,)

    # for pickling:
    def __getstate__(self):
        return None

    def __reduce__(self):
        return (type(self), (self._id,))

    @property
    def id(self):
        """The queue's id: unique in the namespace for its whole life."""
        return self._id

    @property
    def maxsize(self):
        """The capacity given to create(); 0 or less means unbounded."""
        return self._maxsize

    def empty(self):
        """Return True if the queue holds no item (at this instant)."""
        return self.qsize() == 0

    def full(self):
        """Return True if the queue holds maxsize items (never when
        maxsize <= 0)."""
        return _xichan.queue_full(self._id)

    def qsize(self):
        """Return the number of items in the queue (at this instant)."""
        return _xichan.queue_count(self._id)

    def put(self, obj, block=True, timeout=None, *,
            syncobj=None,
            unbound=None,
            unbounditems=None,
            ):
        """Add the object to the queue.

        This blocks while the queue is full, until "timeout" seconds (a
        float; None waits forever) have passed, then raises QueueFull.
        It waits the same way while the shared segment has no room for the
        item (until another process takes items), then raises
        SegmentFullError.  block=False does not wait (put_nowait()).  Both
        call forms work: put(obj, timeout) as in the seeds, and put(obj,
        block, timeout) as in multiprocessing and 3.14: a bool in the first
        optional position is "block", a number or None is "timeout".

        If "syncobj" is None (the default) then it uses the
        queue's default, set with create().

        If "syncobj" is false then all objects are supported (they are
        pickled), at the expense of worse performance.  A bytes or
        bytearray of 64 KiB or more, a memoryview or a numpy array is
        pickled with protocol 5, its buffers copied once into the queue;
        a bytes or bytearray is copied once out, anything else (a numpy
        array, a memoryview) is rebuilt over the item where it lies, which
        stays in the queue's segment while the received value lives.

        If "syncobj" is true then the object must be "shareable":
        None, bool, int (64-bit), float, str, bytes, tuples of these,
        memoryview, Queue, channel ends and SharedBuffer.  The object that
        get() returns is then strictly equivalent (a memoryview shares its
        buffer; a Queue is the receiver's own Queue object for that id).

        "unbound" (or "unbounditems") controls the behavior of Queue.get()
        for the given object if the current interpreter (calling put()) is
        later destroyed, or its process ends:

        UNBOUND (the usual default): get() returns UNBOUND in its place;
        UNBOUND_ERROR: get() raises ItemInterpreterDestroyed (consuming it);
        UNBOUND_REMOVE: the item is removed from the queue at once.
        """
        if syncobj is None and unbound is None and unbounditems is None:
            # The usual call: the queue's defaults, no argument handling.
            fmt = self._fmt
            unboundop, = self._unbound
        else:
            fmt, unboundop = self._put_args(syncobj, unbound, unbounditems)
        if block is True:
            if timeout is not None:
                _crossinterp.check_timeout(timeout)
        else:
            timeout = _wait_arg(block, timeout)
        if fmt == _PICKLED:
            obj = _pickle_dumps(obj, _PickledView)
        _queue_put(self._id, obj, fmt, unboundop, timeout)

    def _put_args(self, syncobj, unbound, unbounditems):
        # (fmt, unboundop) for put()/put_nowait()/put_many() arguments.
        unbound = _unbound_arg(unbound, unbounditems)
        if syncobj is None:
            fmt = self._fmt
        else:
            fmt = _SHARED_ONLY if syncobj else _PICKLED
        if unbound is None:
            unboundop, = self._unbound
        else:
            unboundop, = _serialize_unbound(unbound)
        return fmt, unboundop

    def put_nowait(self, obj, *, syncobj=None, unbound=None, unbounditems=None):
        """Add the object to the queue, or raise QueueFull at once."""
        fmt, unboundop = self._put_args(syncobj, unbound, unbounditems)
        if fmt == _PICKLED:
            obj = _pickle_dumps(obj, _PickledView)
        _queue_put(self._id, obj, fmt, unboundop, 0)

    def put_many(self, items, block=True, timeout=None, *,
                 syncobj=None,
                 unbound=None,
                 unbounditems=None,
                 ):
        """Add the objects of "items" (any iterable) to the queue, in order.

        Like put() for each of them, but every item is serialized first
        (an unshareable one raises before anything is queued), and then they
        are appended under one lock with one wake-up, waiting for room in a
        bounded queue as successive put() calls would.  "syncobj" and
        "unbound" apply to every item.

        If "timeout" seconds pass (block=False: at once) before all are in,
        QueueFull is raised; its "count" attribute says how many of the
        first items were put (the rest were not).  "block" and "timeout"
        take the same two call forms as in put().
        """
        # put() inlines these two steps: it is the hot path; this is per batch.
        fmt, unboundop = self._put_args(syncobj, unbound, unbounditems)
        timeout = _wait_arg(block, timeout)
        if fmt == _PICKLED:
            items = [_dumps_many(obj) for obj in items]
        elif not isinstance(items, (list, tuple)):
            items = list(items)
        n = _queue_put_many(self._id, items, fmt, unboundop, timeout)
        if n < len(items):
            exc = QueueFull(f'queue {self._id} is full: {n} of {len(items)} items put')
            exc.count = n
            raise exc

    def put_many_nowait(self, items, *, syncobj=None, unbound=None, unbounditems=None):
        """put_many() that does not wait: QueueFull (with "count") if they do not all fit."""
        self.put_many(items, syncobj=syncobj, unbound=unbound, block=False,
                      unbounditems=unbounditems)

    def get_many(self, max_items, block=True, timeout=None):
        """Return a list of up to "max_items" objects from the queue, oldest first.

        This waits like get() for the first object (QueueEmpty when
        "timeout" passes; block=False does not wait), then takes up to
        max_items of what is there without waiting for more.  An UNBOUND
        item comes back as UNBOUND, as from get().

        An item whose original interpreter was destroyed with
        UNBOUND_ERROR ends a batch: get_many() raises
        ItemInterpreterDestroyed for it when it is first in line.  If an
        item cannot be deserialized, the first such error is raised after
        all the others were taken; its "items" attribute holds them.
        "block" and "timeout" take the same two call forms as in get().
        """
        if block is not True:
            timeout = _wait_arg(block, timeout)
        return _queue_get_many(self._id, max_items, timeout, UNBOUND)

    def get_many_nowait(self, max_items):
        """get_many() that does not wait: QueueEmpty if the queue is empty."""
        return _queue_get_many(self._id, max_items, 0, UNBOUND)

    def get(self, block=True, timeout=None):
        """Return the next object from the queue.

        This blocks while the queue is empty, until "timeout" seconds have
        passed (None waits forever), then raises QueueEmpty.  block=False
        does not wait (get_nowait()).  Both call forms work: get(timeout)
        as in the seeds, and get(block, timeout) as in multiprocessing and
        3.14: a bool in the first optional position is "block", a number
        or None is "timeout".

        If the next item's original interpreter has been destroyed
        then the "next object" is determined by the value of the
        "unbound" argument to put().
        """
        if block is not True:
            timeout = _wait_arg(block, timeout)
        obj = _queue_get(self._id, timeout)
        if obj is _UNBOUND_ITEM:
            return UNBOUND
        return obj

    def get_nowait(self):
        """Return the next object from the queue.

        If the queue is empty then raise QueueEmpty.  Otherwise this
        is the same as get().
        """
        obj = _queue_get(self._id, 0)
        if obj is _UNBOUND_ITEM:
            return UNBOUND
        return obj

    async def get_async(self, timeout=None):
        """Await the next object from the queue (asyncio, any running loop).

        Like get(): QueueEmpty once "timeout" seconds pass.  No thread
        waits: the loop watches the queue through a file descriptor.
        Cancelling the awaiting task (or its timeout) takes nothing.
        """
        from . import _aio
        return await _aio.queue_get(self, timeout)

    async def put_async(self, obj, timeout=None, *, syncobj=None, unbound=None,
                        unbounditems=None):
        """Await room in the queue and add the object (asyncio).

        Like put(), with its keyword arguments: QueueFull once "timeout"
        seconds pass.  Cancelling the awaiting task puts nothing.
        """
        from . import _aio
        kw = {'syncobj': syncobj, 'unbound': unbound, 'unbounditems': unbounditems}
        return await _aio.queue_put(self, obj, timeout, kw)



_xichan._register(
    QueueError=QueueError,
    QueueNotFoundError=QueueNotFoundError,
    QueueEmpty=QueueEmpty,
    QueueFull=QueueFull,
    QueueItemDestroyed=ItemInterpreterDestroyed,
    QueueType=Queue,
)
_xichan._register_xid(Queue)
del os
