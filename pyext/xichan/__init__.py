"""xichan: channels and queues shared by processes and interpreters.

The API mirrors CPython 3.13's ``test.support.interpreters.queues`` and
``.channels`` (see ``xichan.queues`` and ``xichan.channels``), but the objects
live in a POSIX shared-memory segment owned by the ``xichand`` daemon of the
namespace ($XICHAN_NAME), so they work across processes as well as between
interpreters, and survive the death of any participant.

Package-level names:

- ``create_queue``, ``Queue``, ``QueueEmpty``, ``QueueFull`` (as in 3.13's
  ``interpreters`` package, imported lazily);
- the submodules ``queues``, ``channels`` and ``multiprocessing`` (a
  drop-in for multiprocessing's Queue, SimpleQueue and JoinableQueue),
  also loaded on first use as attributes;
- ``NotShareableError`` (a TypeError and a ValueError, and on Python 3.13+
  a subclass of the interpreters module's own NotShareableError, so code
  written for 3.13 or 3.14 catches it) and ``is_shareable(obj)``;
- ``SharedBuffer(size)``: zeroed bytes in the segment, writable, shared
  zero-copy with every process that attaches it (pickle it, or send it);
- ``select(readable, writable, timeout)`` and ``WaitSet`` (with
  ``READABLE``, ``WRITABLE``, ``CLOSED``) wait for the first of many queues
  and channel ends; ``WaitSet.fileno()`` serves selectors and event loops,
  and the ``*_async`` methods (``Queue.get_async`` ...) await in asyncio;
- ``XichanError`` for failures of the system itself (no daemon, segment
  corrupt, tables full), with ``SegmentFullError`` when the segment has no
  room for an item and ``AccessDeniedError`` when the namespace's daemon
  refuses this user (or this client refuses a daemon it cannot trust), and
  ``ObjectLockedError`` (also a TimeoutError) when a stopped process holds
  the object's lock past the call's timeout.
"""

import os as _os

from . import _xichan
from . import _bindings  # noqa: F401 -- after fork(), a child binds again (SharedBuffers too)

__all__ = [
    'create_queue', 'Queue', 'QueueEmpty', 'QueueFull',
    'NotShareableError', 'is_shareable', 'SharedBuffer',
    'XichanError', 'SegmentFullError', 'AccessDeniedError', 'ObjectLockedError',
    'select', 'WaitSet', 'READABLE', 'WRITABLE', 'CLOSED',
]

# A subinterpreter's sys.path is fixed when it is created; _xichan adds this
# directory there when an object arrives before xichan was imported.
_xichan._set_path(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))


class XichanError(RuntimeError):
    """libxichan failed (no daemon, corrupt segment, a table full, ...).

    ``code`` is the XICHAN_E* number (libxichan(3) lists them).
    """
    code = None


class SegmentFullError(XichanError, MemoryError):
    """The shared segment had no room for the item.

    A blocking put()/send() waits for room (another process taking items
    frees it) until its timeout; this is raised when the timeout passes, or
    at once by put_nowait()/send_nowait()/block=False.  The message gives
    the item's size and the heap's, and how to start a daemon with a larger
    segment (xichand --size, or XICHAN_SIZE for one a client starts).
    """


class AccessDeniedError(XichanError, PermissionError):
    """XICHAN_EACCES: the namespace's daemon refused this uid (not its owner,
    not in its --group); XICHAN_EPERM: this client refused a daemon or
    segment another user owns.  The message names namespace, uid and group."""


class ObjectLockedError(XichanError, TimeoutError):
    """XICHAN_ELOCKED: another process holds the object's lock and is stopped
    (SIGSTOP, Ctrl-Z, a debugger) or slow.  The call waited until its
    timeout, or 20 ms for a non-blocking call (250 ms while the holder
    runs), and changed nothing; the message names the holder's pid.  A
    blocking ``send`` that gets it has left its item queued."""


try:  # 3.13+: test.support.interpreters / concurrent.interpreters re-export it
    from _interpreters import NotShareableError as _InterpNotShareable
    _NOT_SHAREABLE_BASES = (_InterpNotShareable, TypeError, ValueError)
except ImportError:
    _NOT_SHAREABLE_BASES = (TypeError, ValueError)


class NotShareableError(*_NOT_SHAREABLE_BASES):
    """The object does not support cross-interpreter (cross-process) data.

    Code written for 3.13 (``except interpreters.NotShareableError``, a
    ValueError there) or 3.14 (a TypeError) catches it.
    """


SharedBuffer = _xichan.SharedBuffer

_xichan._register(
    NotShareableError=NotShareableError,
    XichanError=XichanError,
    SegmentFullError=SegmentFullError,
    AccessDeniedError=AccessDeniedError,
    ObjectLockedError=ObjectLockedError,
)

_SHAREABLE_TYPES = (type(None), bool, int, float, str, bytes, tuple, memoryview)


def is_shareable(obj):
    """Return True if the object's type can be sent as it is (syncobj=True).

    Like CPython's, this looks only at the top-level type: a tuple holding a
    list is "shareable" here, but sending it fails.
    """
    tp = type(obj)
    if tp in _SHAREABLE_TYPES or tp is SharedBuffer:
        return True
    from . import queues, channels
    return tp in (queues.Queue, channels.SendChannel, channels.RecvChannel,
                  channels.ChannelID)


def __getattr__(name):
    if name in ('select', 'WaitSet', 'READABLE', 'WRITABLE', 'CLOSED'):
        from . import _aio
        globals().update((n, getattr(_aio, n)) for n in _aio.__all__)
        return globals()[name]
    # The submodules load on first use, so `import xichan` then
    # `xichan.queues.open(...)` works as `from xichan import queues` does.
    if name in ('queues', 'channels', 'multiprocessing'):
        import importlib
        return importlib.import_module(f'{__name__}.{name}')
    if name in ('Queue', 'QueueEmpty', 'QueueFull', 'create_queue'):
        from .queues import create as create_queue, Queue, QueueEmpty, QueueFull
        ns = globals()
        ns.update(create_queue=create_queue, Queue=Queue,
                  QueueEmpty=QueueEmpty, QueueFull=QueueFull)
        return ns[name]
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
