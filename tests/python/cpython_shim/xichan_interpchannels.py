"""CPython 3.13's low-level _interpchannels, over xichan's _xichan.

Only for running CPython's own test_channels.py against xichan (see
xichan_cpython_shim).  The calls keep _interpchannels's shapes; where xichan
differs, it says so:

- ChannelID is xichan.channels.ChannelID, whose ids always name one end:
  create() and list_all() give the recv end's id (CPython: an id of both
  ends), which keeps the channel alive as CPython's does.
- send()/send_buffer() return True/False with blocking=False (a receiver
  was already waiting for the item), as xichan's send_nowait does.
- list_interpreters() is not here: xichan associates sessions, not
  CPython interpreter ids (xichan.channels' _xichan.chan_sessions).
"""
from xichan import _xichan, channels as _channels

_NOT_SET = object()


def __getattr__(name):
    # The high level's classes, looked up at each use: reloading
    # xichan.channels replaces them (and re-registers them in C).
    if name in ('ChannelID', 'ChannelError', 'ChannelNotFoundError',
                'ChannelClosedError', 'ChannelEmptyError',
                'ChannelNotEmptyError', 'ChannelInfo'):
        return getattr(_channels, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def create(unboundop):
    """create(unboundop) -> ChannelID; dropping it destroys the channel."""
    return _channels.ChannelID._make(_xichan.chan_create(unboundop), 'recv', adopt=True)


def destroy(cid):
    _xichan.chan_destroy(cid)


def list_all():
    """[(ChannelID, unboundop)] for every channel of the namespace."""
    return [(_channels.ChannelID._make(cid, 'recv', force=True), op)
            for cid, op, _state, _name in _xichan.chan_list()]


def _send(fn, cid, obj, unboundop, blocking, timeout):
    if not blocking and timeout is not None:
        raise ValueError('timeout not supported when blocking=False')
    return fn(cid, obj, unboundop, timeout, not blocking)


def send(cid, obj, unboundop=_xichan.UNBOUND_REPLACE, *, blocking=True, timeout=None):
    return _send(_xichan.chan_send, cid, obj, unboundop, blocking, timeout)


def send_buffer(cid, obj, unboundop=_xichan.UNBOUND_REPLACE, *, blocking=True, timeout=None):
    return _send(_xichan.chan_send_buffer, cid, obj, unboundop, blocking, timeout)


def recv(cid, default=_NOT_SET):
    """(obj, None), or (None, op) for an unbound item; when empty, (default,
    None) or ChannelEmptyError.  It does not wait."""
    try:
        if default is _NOT_SET:
            obj = _xichan.chan_recv(cid, None, True)
        else:
            obj = _xichan.chan_recv(cid, None, True, default)
    except _channels.ItemInterpreterDestroyed:
        return None, _xichan.UNBOUND_ERROR
    if obj is _xichan.UNBOUND_ITEM:
        return None, _xichan.UNBOUND_REPLACE
    return obj, None


def close(cid, *, send=False, recv=False, force=False):
    _xichan.chan_close(cid, send=send, recv=recv, force=force)


def release(cid, *, send=False, recv=False, force=False):
    _xichan.chan_release(cid, send=send, recv=recv, force=force)


def get_count(cid):
    return _xichan.chan_count(cid)


def get_info(cid):
    return _channels.ChannelInfo(*_xichan.chan_info(cid))


def get_channel_defaults(cid):
    return _xichan.chan_defaults(cid)


def _channel_id(cid, *, send=None, recv=None, force=False, _resolve=False):
    end = 'send' if send and not recv else 'recv'
    return _channels.ChannelID._make(_channels._check_cid(cid), end, force=force)
