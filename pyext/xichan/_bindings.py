"""The bindings that xichan's Python objects hold, and fork().

A Queue and a ChannelID each hold one binding of this interpreter's session
(xichan_queue_bind(3), xichan_chan_bind(3)) while their ``_bound`` is true,
and give it back when they die (``release``).  After fork() the child must
not use its parent's session: _xichan opens a fresh one (it notices the new
pid), and every object still holding a binding binds again there, so the
child's objects keep theirs alive as the parent's do; one that cannot (its
object is gone) is marked unbound.

The objects are tracked by identity: two ChannelIDs of one end compare
equal, yet each holds a binding of its own.
"""

import os as _os
import weakref as _weakref

from . import _xichan

_held = {}  # id(obj) -> (a weak reference to obj, bind)


def hold(obj, bind):
    """obj (with an ``_id``) now holds a binding; ``bind(obj._id)`` takes
    another in a forked child."""
    key = id(obj)
    obj._bound = True
    # The callback runs while obj dies, before its id can serve another; it
    # holds the dict itself, which outlives this module's globals at exit.
    _held[key] = (_weakref.ref(obj, lambda _ref, held=_held: held.pop(key, None)), bind)


def release(obj, unbind):
    """Gives back obj's binding, if it holds one (``unbind(obj._id)``);
    never raises (it runs in __del__)."""
    if getattr(obj, '_bound', False):
        obj._bound = False
        try:
            unbind(obj._id)
        except Exception:
            pass


def _after_fork_child():
    live = [(obj, bind) for ref, bind in list(_held.values())
            if (obj := ref()) is not None and obj._bound]
    try:
        _xichan._after_fork_child(bool(live))
    except Exception:
        return
    for obj, bind in live:
        try:
            bind(obj._id)
        except Exception:
            obj._bound = False


try:
    _os.register_at_fork(after_in_child=_after_fork_child)
except (AttributeError, RuntimeError):  # no fork here (subinterpreters)
    pass
