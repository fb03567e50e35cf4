"""CPython 3.13's low-level _interpqueues, over xichan's _xichan.

Only for running CPython's own test_queues.py against xichan (see
xichan_cpython_shim).  The calls keep _interpqueues's shapes; where xichan
differs, it says so:

- fmt is CPython's: 0 = shareable objects only (xichan's msgpack format),
  1 = pickled by the caller (obj is the pickle's bytes).  Other values raise
  ValueError (CPython does not check them).
- get() returns (obj, 0, None): _xichan decodes each item by its own format
  (it unpickles a pickled one), so obj is always final.  An unbound item is
  (None, None, op), as in CPython.
- create() leaves the queue unbound, as CPython's does: _xichan's
  queue_create binds it once to this interpreter, and the first bind()
  here takes over that binding (until then release() raises QueueError
  "never bound").
"""
from xichan import _xichan, queues as _queues

_FMT_TO_XICHAN = {0: _xichan.FMT_MSGPACK, 1: _xichan.FMT_PICKLE}
_FMT_FROM_XICHAN = {v: k for k, v in _FMT_TO_XICHAN.items()}

# Queues create() made here whose creation binding no bind() took over yet.
_unclaimed = set()


def __getattr__(name):
    # The exception classes are the high level's, looked up at each use:
    # reloading xichan.queues replaces them (and re-registers them in C).
    if name in ('QueueError', 'QueueNotFoundError'):
        return getattr(_queues, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def _fmt(fmt):
    try:
        return _FMT_TO_XICHAN[fmt]
    except (KeyError, TypeError):
        raise ValueError(f'unsupported fmt {fmt!r}') from None


def create(maxsize, fmt, unboundop):
    """create(maxsize, fmt, unboundop) -> qid (not bound)"""
    qid = _xichan.queue_create(maxsize, _fmt(fmt), unboundop)
    _unclaimed.add(qid)
    return qid


def destroy(qid):
    _xichan.queue_destroy(qid)
    _unclaimed.discard(qid)


def list_all():
    """[(qid, fmt, unboundop)] for every queue of the namespace."""
    return [(qid, _FMT_FROM_XICHAN.get(fmt, fmt), op)
            for qid, fmt, op, _maxsize, _name in _xichan.queue_list()]


def put(qid, obj, fmt, unboundop):
    _xichan.queue_put(qid, obj, _fmt(fmt), unboundop, 0)


def get(qid):
    try:
        obj = _xichan.queue_get(qid, 0)
    except _queues.ItemInterpreterDestroyed:
        return None, None, _xichan.UNBOUND_ERROR
    if obj is _xichan.UNBOUND_ITEM:
        return None, None, _xichan.UNBOUND_REPLACE
    return obj, 0, None


def bind(qid):
    if qid in _unclaimed:
        _xichan.queue_count(qid)  # QueueNotFoundError if it is gone
        _unclaimed.discard(qid)
    else:
        _xichan.queue_bind(qid)


def release(qid):
    if qid in _unclaimed:
        _xichan.queue_count(qid)
        raise _queues.QueueError(f'queue {qid} never bound')
    _xichan.queue_release(qid)


def get_maxsize(qid):
    return _xichan.queue_defaults(qid)[0]


def get_queue_defaults(qid):
    """(fmt, unboundop) given at creation."""
    _maxsize, fmt, op = _xichan.queue_defaults(qid)
    return _FMT_FROM_XICHAN.get(fmt, fmt), op


def is_full(qid):
    return _xichan.queue_full(qid)


def get_count(qid):
    return _xichan.queue_count(qid)
