"""Cross-process, cross-interpreter channels (the API of 3.13's
test.support.interpreters.channels, over xichan's shared segment).

Differences from CPython 3.13, all deliberate (see xichan(7)):

- recv()/send() timeouts are float seconds (None forever, 0 once, negative
  -> ValueError, non-number -> TypeError); a blocked recv() sleeps on a futex
  with the GIL released (no 10 ms polling); both raise TimeoutError;
- send_nowait()/send_buffer_nowait() return True when a receiver was already
  waiting and takes this very item, else False;
- list_all() is in creation order, includes closed channels, and its send
  ends send with the channel's default unbound op;
- ``unbounditems=`` is accepted per call as well as ``unbound=``;
- a channel can be named (``create(name=...)``, ``open(name)``);
- ends pickle by id, so passing one to a multiprocessing child attaches it.
- what a process puts outlives the process: the unbound ops (UNBOUND,
  UNBOUND_ERROR, UNBOUND_REMOVE) apply only when a subinterpreter is
  destroyed while its process lives on (see xichan(7), "Items and sessions").
"""

import operator
from collections import namedtuple

from . import _xichan, _crossinterp, _bindings
from ._crossinterp import UNBOUND_ERROR, UNBOUND_REMOVE

__all__ = [
    'UNBOUND', 'UNBOUND_ERROR', 'UNBOUND_REMOVE',
    'create', 'list_all', 'open', 'destroy',
    'SendChannel', 'RecvChannel',
    'ChannelError', 'ChannelNotFoundError', 'ChannelEmptyError',
    'ItemInterpreterDestroyed',
]


class ChannelError(RuntimeError):
    """Indicates that a channel-related error happened."""


class ChannelNotFoundError(ChannelError):
    """The targeted channel no longer exists."""


class ChannelClosedError(ChannelError):
    """The targeted channel has been closed."""


class ChannelEmptyError(ChannelError):
    """The targeted channel is empty."""


class ChannelNotEmptyError(ChannelError):
    """The targeted channel should have been empty."""


class ItemInterpreterDestroyed(ChannelError,
                               _crossinterp.ItemInterpreterDestroyed):
    """Raised from get() and get_nowait()."""


# CPython passes kind 'queue' here too (channels.py:31); kept for fidelity.
UNBOUND = _crossinterp.UnboundItem.singleton('queue', __name__)
_UNBOUND_ITEM = _xichan.UNBOUND_ITEM


_serialize_unbound, _resolve_unbound = _crossinterp.unbound_codec(UNBOUND,
                                                                  ItemInterpreterDestroyed)


def _unbound_op(default, unbound, unbounditems):
    unbound = _crossinterp.pick_unbound(unbound, unbounditems)
    if unbound is None:
        return default[0]
    return _serialize_unbound(unbound)[0]


ChannelInfo = namedtuple('ChannelInfo', [
    'open', 'closing', 'closed', 'count',
    'num_interp_send', 'num_interp_send_released',
    'num_interp_recv', 'num_interp_recv_released',
    'num_interp_both', 'num_interp_both_released',
    'num_interp_both_send_released', 'num_interp_both_recv_released',
    'send_associated', 'send_released', 'recv_associated', 'recv_released',
])


# ------------------------------------------------------------- ChannelID

class ChannelID:
    """A channel ID for one end; like CPython's _interpchannels.ChannelID.

    Each ChannelID object holds a binding that keeps the channel alive.
    """

    __slots__ = ('_id', '_end', '_bound', '__weakref__')

    def __new__(cls, *args, **kwargs):
        raise TypeError('cannot create xichan.channels.ChannelID instances')

    @classmethod
    def _make(cls, cid, end, *, force=False, adopt=False):
        self = object.__new__(cls)
        self._id = cid
        self._end = end
        self._bound = False
        if not adopt:
            try:
                _xichan.chan_bind(cid)
            except ChannelNotFoundError:
                if not force:
                    raise
                return self
        _bindings.hold(self, _xichan.chan_bind)
        return self

    def __del__(self):
        _bindings.release(self, _xichan.chan_unbind)

    @property
    def end(self):
        """'send' or 'recv': the end this id belongs to."""
        return self._end

    @property
    def send(self):
        """True for a send end's id."""
        return self._end == 'send'

    @property
    def recv(self):
        """True for a recv end's id."""
        return self._end == 'recv'

    def __index__(self):
        return self._id

    def __int__(self):
        return self._id

    def __str__(self):
        return str(self._id)

    def __repr__(self):
        return f'ChannelID({self._id}, {self._end}=True)'

    def __hash__(self):
        return hash(self._id)

    def __eq__(self, other):
        if isinstance(other, ChannelID):
            return self._id == other._id and self._end == other._end
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return self._id == other
        return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __reduce__(self):
        raise TypeError(f'cannot pickle {type(self).__name__!r} object')


def _channel_id(cid, end):
    """For _xichan: a bound ChannelID received in an item."""
    return ChannelID._make(cid, end)


def _check_cid(cid):
    if isinstance(cid, ChannelID):
        return cid._id
    if isinstance(cid, (str, bytes, float)) or not hasattr(type(cid), '__index__'):
        raise TypeError(f'channel ID must be an int, got {type(cid).__name__}')
    n = operator.index(cid)
    if n < 0:
        raise ValueError(f'channel ID must be a non-negative int, got {n!r}')
    if n >= 2**64:
        raise OverflowError(f'channel ID too large, got {n!r}')
    return n


# ------------------------------------------------------------- module API

def create(*, unbounditems=UNBOUND, name=None):
    """Return (recv, send) for a new cross-interpreter channel.

    The channel may be used to pass data safely between interpreters and
    processes.

    "unbounditems" sets the default for the send end of the channel.
    See SendChannel.send() for supported values.  The default value
    is UNBOUND, which replaces the unbound item when received.

    "name" (xichan) names the channel in the namespace: open(name) finds it
    from any process, and it lives until destroy() is called.
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f'name must be a str or None, not {type(name).__name__!r}')
    unbound = _serialize_unbound(unbounditems)
    unboundop, = unbound
    cid = _xichan.chan_create(unboundop, name)
    recv = RecvChannel._adopt(cid)
    send = SendChannel._with_op(cid, unbound)
    return recv, send


def open(name):
    """Return (recv, send) for the channel created with this name."""
    if not isinstance(name, str):
        raise TypeError(f'name must be a str, not {type(name).__name__!r}')
    cid = _xichan.chan_open(name)
    return RecvChannel(cid), SendChannel(cid)


def destroy(channel):
    """Destroy a channel at once (an end or an id); its items are dropped."""
    cid = int(channel.id) if isinstance(channel, _ChannelEnd) else _check_cid(channel)
    _xichan.chan_destroy(cid)


def list_all():
    """Return a list of (recv, send) for all channels, oldest first."""
    return [(RecvChannel(cid), SendChannel._with_op(cid, (op,)))
            for cid, op, _state, _name in _xichan.chan_list()]


class _ChannelEnd:
    """The base class for RecvChannel and SendChannel."""

    _end = None

    def __new__(cls, cid):
        self = super().__new__(cls)
        if self._end not in ('send', 'recv'):
            raise NotImplementedError(self._end)
        self._id = ChannelID._make(_check_cid(cid), self._end, force=True)
        return self

    @classmethod
    def _adopt(cls, cid):
        self = super().__new__(cls)
        self._id = ChannelID._make(cid, cls._end, adopt=True)
        return self

    def __repr__(self):
        return f'{type(self).__name__}(id={int(self._id)})'

    def __hash__(self):
        return hash(self._id)

    def __eq__(self, other):
        if isinstance(self, RecvChannel):
            if not isinstance(other, RecvChannel):
                return NotImplemented
        elif not isinstance(other, SendChannel):
            return NotImplemented
        return other._id == self._id

    # for pickling:
    def __getnewargs__(self):
        return (int(self._id),)

    # for pickling:
    def __getstate__(self):
        return None

    def __reduce__(self):
        return (type(self), (int(self._id),))

    @property
    def id(self):
        """The channel's ChannelID (an int: unique in the namespace)."""
        return self._id

    @property
    def _info(self):
        return ChannelInfo(*_xichan.chan_info(self._id._id))

    @property
    def is_closed(self):
        """True once the channel is closed."""
        return self._info.closed


_NOT_SET = object()


class RecvChannel(_ChannelEnd):
    """The receiving end of a cross-interpreter channel."""

    _end = 'recv'

    def recv(self, timeout=None):
        """Return the next object from the channel.

        This blocks until an object has been sent, if none have been
        sent already, or until "timeout" seconds have passed (then
        TimeoutError).
        """
        obj = _xichan.chan_recv(self._id._id, timeout)
        if obj is _UNBOUND_ITEM:
            return UNBOUND
        return obj

    def recv_nowait(self, default=_NOT_SET):
        """Return the next object from the channel.

        If none have been sent then return the default if one
        is provided or fail with ChannelEmptyError.  Otherwise this
        is the same as recv().
        """
        if default is _NOT_SET:
            obj = _xichan.chan_recv(self._id._id, None, True)
        else:
            obj = _xichan.chan_recv(self._id._id, None, True, default)
        if obj is _UNBOUND_ITEM:
            return UNBOUND
        return obj

    async def recv_async(self, timeout=None):
        """Await the next object from the channel (asyncio, any running loop).

        Like recv(): TimeoutError once "timeout" seconds pass.  No thread
        waits; cancelling the awaiting task takes nothing.
        """
        from . import _aio
        return await _aio.chan_recv(self, timeout)

    def close(self):
        """Close the channel's receiving side: no more recv() here or in
        any other interpreter or process (ChannelClosedError); a send()
        after it fails too."""
        _xichan.chan_close(self._id._id, recv=True)


class SendChannel(_ChannelEnd):
    """The sending end of a cross-interpreter channel."""

    _end = 'send'

    def __new__(cls, cid):
        return cls._with_op(cid, None)

    @classmethod
    def _with_op(cls, cid, _unbound):
        self = super().__new__(cls, cid)
        if _unbound is None:
            try:
                op = _xichan.chan_defaults(self._id._id)
                _unbound = (op,)
            except ChannelNotFoundError:
                _unbound = _serialize_unbound(UNBOUND)
        self._unbound = _unbound
        return self

    @property
    def is_closed(self):
        """True once the channel is closed, or closing (its send side was
        closed while items were still in it)."""
        info = self._info
        return info.closed or info.closing

    def send(self, obj, timeout=None, *, unbound=None, unbounditems=None):
        """Send the object (i.e. its data) to the channel's receiving end.

        This blocks until the object is received, or until "timeout"
        seconds have passed (then TimeoutError, and the item is withdrawn).
        While the shared segment has no room for it, it waits for room
        within the same timeout (then SegmentFullError).
        """
        op = _unbound_op(self._unbound, unbound, unbounditems)
        _xichan.chan_send(self._id._id, obj, op, timeout, False)

    def send_nowait(self, obj, *, unbound=None, unbounditems=None):
        """Send the object to the channel's receiving end.

        If the object is immediately received then return True
        (else False).  Otherwise this is the same as send().
        """
        op = _unbound_op(self._unbound, unbound, unbounditems)
        return _xichan.chan_send(self._id._id, obj, op, None, True)

    def send_buffer(self, obj, timeout=None, *, unbound=None, unbounditems=None):
        """Send the object's buffer to the channel's receiving end.

        This blocks until the object is received.
        """
        op = _unbound_op(self._unbound, unbound, unbounditems)
        _xichan.chan_send_buffer(self._id._id, obj, op, timeout, False)

    def send_buffer_nowait(self, obj, *, unbound=None, unbounditems=None):
        """Send the object's buffer to the channel's receiving end.

        If the object is immediately received then return True
        (else False).  Otherwise this is the same as send().
        """
        op = _unbound_op(self._unbound, unbound, unbounditems)
        return _xichan.chan_send_buffer(self._id._id, obj, op, None, True)

    async def send_async(self, obj, timeout=None, *, unbound=None, unbounditems=None):
        """Send the object and await its receipt (asyncio, any running loop).

        Like send(): TimeoutError once "timeout" seconds pass, and the item
        is withdrawn.  Cancelling the awaiting task withdraws the item too,
        unless a receiver already took it.
        """
        from . import _aio
        op = _unbound_op(self._unbound, unbound, unbounditems)
        return await _aio.chan_send(self, obj, op, timeout, False)

    async def send_buffer_async(self, obj, timeout=None, *, unbound=None, unbounditems=None):
        """send_buffer() as send_async() is send()."""
        from . import _aio
        op = _unbound_op(self._unbound, unbound, unbounditems)
        return await _aio.chan_send(self, obj, op, timeout, True)

    def close(self):
        """Close the channel's sending side: no more send(); receivers
        still get the items already in it, then the channel closes."""
        _xichan.chan_close(self._id._id, send=True)


_xichan._register(
    ChannelError=ChannelError,
    ChannelNotFoundError=ChannelNotFoundError,
    ChannelClosedError=ChannelClosedError,
    ChannelEmptyError=ChannelEmptyError,
    ChannelNotEmptyError=ChannelNotEmptyError,
    ChannelItemDestroyed=ItemInterpreterDestroyed,
    SendChannelType=SendChannel,
    RecvChannelType=RecvChannel,
    ChannelIDType=ChannelID,
    make_channel_id=_channel_id,
)
_xichan._register_xid(SendChannel, RecvChannel, ChannelID)
