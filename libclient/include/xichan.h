/*
 * xichan.h -- the public C API of libxichan.
 *
 * Anything not declared in this file is not API: symbols named xichan__*
 * are internal and may change between any two commits.
 *
 * Conventions
 *   - Every call returns 0 (or a count) on success and a negative XICHAN_E*
 *     code on failure; xichan_strerror() turns a code into a message.  No
 *     call sets errno as its way of reporting.
 *   - Process-local objects (xichan_client) are opaque handles with an
 *     open/close pair; xichan_client_close(NULL) is a no-op.
 *   - Shared objects (queues, channels) are named by by-value typed ids,
 *     64-bit numbers unique within a namespace for its whole life.
 *   - Blocking calls take an absolute CLOCK_MONOTONIC deadline in
 *     nanoseconds: XICHAN_FOREVER waits forever, XICHAN_NOWAIT (or any
 *     deadline in the past) tries once.  xichan_deadline(seconds) builds one.
 *   - A blocking call holds no lock while it sleeps.  It returns
 *     XICHAN_EINTR when the interrupt callback (xichan_client_set_interrupt)
 *     asks it to stop.  No call waits unboundedly for a lock another
 *     process holds (XICHAN_LOCK_GRACE_MS below): XICHAN_ELOCKED.
 *
 * Ownership of item memory is spelt out at each call: put copies the caller's
 * bytes into the segment before it returns (the caller keeps its buffer on
 * success and on failure); get hands out a view into the segment that stays
 * valid until xichan_item_release().
 */
#ifndef XICHAN_H
#define XICHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define XICHAN_EXTERN __attribute__((visibility("default")))
#else
#define XICHAN_EXTERN
#endif

#define XICHAN_VERSION_MAJOR 0
#define XICHAN_VERSION_MINOR 1

/* ---------------------------------------------------------------- errors */

/*
 * XX(name, value, message).  Negated errno values where one fits, and a
 * private range from -1000 downwards for the rest.
 */
#define XICHAN_ERRNO_MAP(XX)                                                   \
    XX(EINVAL, -22, "invalid argument")                                        \
    XX(ENOMEM, -12, "out of process memory")                                   \
    XX(EPERM, -1, "permission denied")                                         \
    XX(EACCES, -13, "the namespace's daemon refused this user: not its owner, not root and not in its group (xichand --group)") \
    XX(EINTR, -4, "interrupted")                                               \
    XX(ETIMEDOUT, -110, "timed out")                                           \
    XX(ENOTEMPTY, -39, "channel is not empty (try force)")                     \
    XX(ENAMETOOLONG, -36, "name too long")                                     \
    XX(EEXIST, -17, "an object with that name already exists")                 \
    XX(EIO, -5, "system call failed")                                          \
    XX(ENOSPC, -28, "shared segment is full (drain items, or a larger --size or XICHAN_SIZE)") \
    XX(E2BIG, -7, "item larger than the whole segment heap can ever hold")     \
    XX(EEMPTY, -1001, "empty")                                                 \
    XX(EFULL, -1002, "full")                                                   \
    XX(ENOTFOUND, -1003, "not found")                                          \
    XX(ECLOSED, -1004, "channel is closed")                                    \
    XX(ENOTBOUND, -1005, "never bound by this session")                        \
    XX(EUNBOUND, -1006, "item's original session ended")                       \
    XX(ENODAEMON, -1007, "no xichand runs for this namespace and none could be started "    \
       "(start `xichand`; clients start it themselves unless XICHAN_AUTOSTART=0, "           \
       "finding it through XICHAN_DAEMON, beside libxichan or on PATH)")                     \
    XX(EREFUSED, -1008, "the daemon refused the session")                      \
    XX(ELIMIT, -1009, "a fixed table of the segment is full (objects, sessions or bindings)") \
    XX(ECORRUPT, -1010, "shared segment is corrupt")                           \
    XX(EVERSION, -1011, "segment layout or protocol version mismatch")         \
    XX(EBROKEN, -1012, "object is broken: a crashed process left it unrepairable") \
    XX(ESTALE, -1013, "handle belongs to the parent of a fork(); open a new client") \
    XX(EBUSY, -1014, "another xichand already serves this namespace")          \
    XX(EDAEMONLOST, -1016, "connection to xichand lost")                      \
    XX(ELOCKED, -1017, "object locked by a stopped or slow process")          \
    XX(EBADNAME, -1018, "object name must be UTF-8 text without control characters")

typedef enum {
#define XICHAN_ERR_ENUM_(name, value, msg) XICHAN_##name = value,
    XICHAN_ERRNO_MAP(XICHAN_ERR_ENUM_)
#undef XICHAN_ERR_ENUM_
} xichan_errno;

/*
 * A message for any code (unknown codes get a generic text); never NULL.
 * When xichan_client_open() failed in the calling thread because someone
 * refused someone (XICHAN_EACCES: this uid was kept out; XICHAN_EPERM: the
 * daemon or segment found is not to be trusted; XICHAN_ENODAEMON: no daemon
 * runs and this uid may not start one there), the message for that code
 * says who and why, e.g. "the daemon of namespace 'ns' refused uid 1001: not
 * the owner (uid 1000) and not in group 'team' (gid 2000)", until the
 * thread's next xichan_client_open().  Likewise XICHAN_ELOCKED and a
 * corrupt lock's XICHAN_ECORRUPT name the process or thread concerned,
 * until the thread's next such failure or client open.
 */
XICHAN_EXTERN const char *xichan_strerror(int err);
/* The symbolic name ("XICHAN_ENOSPC"), or "XICHAN_E?" for unknown codes. */
XICHAN_EXTERN const char *xichan_err_name(int err);

/* --------------------------------------------------------------- timing */

#define XICHAN_FOREVER INT64_MAX
#define XICHAN_NOWAIT ((int64_t)0)

/*
 * Waiting for another process's lock.  Every call takes the lock of the
 * object (or of the segment's table or heap) for a few microseconds.  If
 * another process holds it and is stopped (SIGSTOP, Ctrl-Z, a debugger),
 * a call waits no longer than its deadline, or, when that is nearer (a
 * nowait call, or a call with no deadline such as xichan_queue_count),
 * XICHAN_LOCK_GRACE_MS (a holder asleep with the lock held counts as
 * stopped: it waits itself); a holder that is running gets up to
 * XICHAN_LOCK_SLOW_MS.  Then the call fails with XICHAN_ELOCKED, and
 * xichan_strerror(XICHAN_ELOCKED) names the holder's pid in that thread.
 * XICHAN_FOREVER waits as long as the holder stays stopped (the interrupt
 * callback still ends it).  A lock whose word names no thread at all
 * (a scribbled segment) fails the call with XICHAN_ECORRUPT.
 */
#define XICHAN_LOCK_GRACE_MS 20
#define XICHAN_LOCK_SLOW_MS 250

/* CLOCK_MONOTONIC now, in nanoseconds. */
XICHAN_EXTERN int64_t xichan_now_ns(void);
/* Now + seconds as a deadline; seconds < 0 or NaN gives XICHAN_NOWAIT,
 * +inf or overflow gives XICHAN_FOREVER.  A deadline that passes is
 * reported as what was still in the way: XICHAN_EEMPTY for get/recv,
 * XICHAN_EFULL for put, XICHAN_ETIMEDOUT for send (xichan(7)). */
XICHAN_EXTERN int64_t xichan_deadline(double seconds);

/* ------------------------------------------------------------- clients */

typedef struct xichan_client xichan_client;

/* xichan_client_opts.autostart: may the client start xichand if none runs?
 * The zero value is the default, so that zeroed options mean what NULL does. */
enum {
    XICHAN_AUTOSTART_DEFAULT = 0, /* $XICHAN_AUTOSTART ("0": no), else yes */
    XICHAN_AUTOSTART_ON = 1,
    XICHAN_AUTOSTART_OFF = -1
};

typedef struct xichan_client_opts {
    const char *name;        /* namespace; NULL: $XICHAN_NAME or "default" */
    const char *runtime_dir; /* NULL: $XICHAN_RUNTIME_DIR, $XDG_RUNTIME_DIR/xichan, /tmp/xichan-$UID */
    int autostart;           /* XICHAN_AUTOSTART_*; 0 is the default, as with opts NULL */
    const char *kind;        /* a short label shown by xichanctl ("c", "python"); NULL: "c" */
} xichan_client_opts;

/*
 * Opens a session with the namespace's daemon (starting it if allowed) and
 * maps the segment.  opts may be NULL.  On success *out is a new handle the
 * caller closes with xichan_client_close(); on failure *out is NULL.
 * Errors: XICHAN_ENODAEMON, XICHAN_EREFUSED, XICHAN_EVERSION, XICHAN_ELIMIT,
 * XICHAN_ENOMEM, XICHAN_EIO.
 *
 * A handle may be used by several threads at once.  After fork() the child's
 * copy answers every call with XICHAN_ESTALE: open a new client there.
 */
XICHAN_EXTERN int xichan_client_open(xichan_client **out, const xichan_client_opts *opts);
/*
 * Ends the session, as the end of its process does: its bindings and
 * channel associations are released (an unnamed object nothing else binds
 * is destroyed), and every item it put stays deliverable, whatever the
 * item's unbound op; no channel is closed by it.  Then unmaps.  Waits for
 * the daemon to have released it (a few ms); with no daemon running, the
 * session ends when a daemon next adopts the segment.
 */
XICHAN_EXTERN void xichan_client_close(xichan_client *cl);
/*
 * Ends the session as CPython ends an interpreter: as xichan_client_close,
 * and also each item the session put and nobody took yet gets its unbound
 * op (XICHAN_UNBOUND: received as an UNBOUND marker; XICHAN_UNBOUND_ERROR:
 * its receiver gets XICHAN_EUNBOUND; XICHAN_UNBOUND_REMOVE: removed), and a
 * channel left with no open association on either end is closed.  The
 * Python binding uses it when a subinterpreter is destroyed while its
 * process lives on.  If no daemon runs at that moment, the session instead
 * ends as a plain close when its process exits.
 */
XICHAN_EXTERN void xichan_client_close_unbind(xichan_client *cl);
/* This session's id (>= 1), unique in the namespace for its whole life. */
XICHAN_EXTERN uint32_t xichan_client_session(const xichan_client *cl);

/*
 * Blocking calls call check(arg) at least every period_ms milliseconds while
 * they wait, and when a signal interrupts them; a nonzero return makes the
 * call give up with XICHAN_EINTR (a channel send withdraws its item first).
 * The Python binding uses this to run signal handlers.  check == NULL turns
 * it off (the default): then waits end only on their event or deadline.
 */
XICHAN_EXTERN void xichan_client_set_interrupt(xichan_client *cl, int (*check)(void *arg),
                                               void *arg, int period_ms);

/* --------------------------------------------------------- items, common */

/* Payload formats.  The library stores the number; it reads none of them. */
enum {
    XICHAN_FMT_RAW = 0,     /* opaque bytes */
    XICHAN_FMT_MSGPACK = 1, /* one msgpack value */
    XICHAN_FMT_PICKLE = 2,  /* a Python pickle */
    XICHAN_FMT_BUFFER = 3,  /* buffer metadata + bytes (xichan(7), ITEM FORMATS) */
    XICHAN_FMT_PICKLE_OOB = 4 /* a pickle and its out-of-band buffers (xichan(7)) */
};

/*
 * What happens to an item when the session that put it ends by an unbind
 * (xichan_client_close_unbind; CPython's values).  An item whose producer's
 * process ended, or that closed with xichan_client_close, is delivered as
 * it is whatever its op.
 */
enum {
    XICHAN_UNBOUND_DEFAULT = 0, /* per call: use the object's default */
    XICHAN_UNBOUND_REMOVE = 1,  /* the item disappears */
    XICHAN_UNBOUND_ERROR = 2,   /* get/recv consumes it and fails with XICHAN_EUNBOUND */
    XICHAN_UNBOUND_REPLACE = 3  /* get/recv returns an item with .unbound set */
};
/* 1 if op is a value a call accepts: XICHAN_UNBOUND_DEFAULT or one of the
 * three ops (every call that takes an unbound op checks it with this). */
#define XICHAN_UNBOUND_OK(op) ((op) >= XICHAN_UNBOUND_DEFAULT && (op) <= XICHAN_UNBOUND_REPLACE)

typedef struct xichan_item {
    const void *data; /* points into the segment; valid until xichan_item_release() */
    size_t len;
    int fmt;          /* XICHAN_FMT_* */
    int unbound;      /* 1: the producer unbound with op REPLACE; data is empty (CPython's UNBOUND) */
    uint32_t producer; /* session id of the producer (ids wrap after 2^28 sessions) */
    /* private */
    xichan_client *cl_;
    uint64_t blk_;
} xichan_item;

/* Frees the item's block.  Safe on a zeroed item and idempotent. */
XICHAN_EXTERN void xichan_item_release(xichan_item *item);

/* --------------------------------------------------------------- queues */

typedef struct { uint64_t id; } xichan_queue_id;

typedef struct xichan_queue_opts {
    int64_t maxsize; /* <= 0: unbounded */
    int fmt;         /* default format, stored for the Python layer */
    int unboundop;   /* XICHAN_UNBOUND_REMOVE/ERROR/REPLACE; 0 means REPLACE */
    const char *name; /* NULL, or a name (<= 63 bytes) that keeps the queue alive until destroyed */
} xichan_queue_opts;

/*
 * Creates a queue and binds it once to the calling session.  opts may be
 * NULL (unbounded, REPLACE).  Errors: XICHAN_EINVAL, XICHAN_EEXIST,
 * XICHAN_ENAMETOOLONG, XICHAN_ELIMIT.
 */
XICHAN_EXTERN int xichan_queue_create(xichan_client *cl, const xichan_queue_opts *opts,
                                      xichan_queue_id *out);
/* Finds a named queue.  XICHAN_ENOTFOUND if there is none. */
XICHAN_EXTERN int xichan_queue_open(xichan_client *cl, const char *name, xichan_queue_id *out);
/* Destroys at once; queued items are dropped, blocked callers get XICHAN_ENOTFOUND. */
XICHAN_EXTERN int xichan_queue_destroy(xichan_client *cl, xichan_queue_id q);
/* Adds one binding of this session.  The queue lives while any binding does. */
XICHAN_EXTERN int xichan_queue_bind(xichan_client *cl, xichan_queue_id q);
/* Drops one binding; the last one destroys the queue (unless named).
 * XICHAN_ENOTBOUND if this session holds none. */
XICHAN_EXTERN int xichan_queue_unbind(xichan_client *cl, xichan_queue_id q);
/* The same, under CPython's name (_interpqueues.release); "release" also
 * names dropping a channel end (xichan_chan_release) and freeing an item
 * (xichan_item_release), so new code says unbind. */
XICHAN_EXTERN int xichan_queue_release(xichan_client *cl, xichan_queue_id q);

/*
 * Copies len bytes into a new item and appends it, waiting until the deadline
 * for room in a bounded queue.  unboundop 0 uses the queue's default.
 * Errors: XICHAN_EFULL (deadline passed), XICHAN_ENOTFOUND, XICHAN_ENOSPC
 * (segment full: nothing is queued), XICHAN_E2BIG, XICHAN_EINTR.
 */
XICHAN_EXTERN int xichan_queue_put(xichan_client *cl, xichan_queue_id q, int fmt, const void *data,
                                   size_t len, int unboundop, int64_t deadline_ns);
/*
 * xichan_queue_put of the n pieces iov[0..n-1] laid back to back as one
 * item: each is copied once, straight into the item (a header and a large
 * body need no buffer of their own).  Same results as xichan_queue_put.
 */
XICHAN_EXTERN int xichan_queue_putv(xichan_client *cl, xichan_queue_id q, int fmt,
                                    const struct iovec *iov, size_t n, int unboundop,
                                    int64_t deadline_ns);
/*
 * Puts one item and waits until a getter has taken it: a hand-off, as
 * xichan_chan_send is for channels.  Waiting for room and for the getter
 * share the deadline.  Errors: XICHAN_EFULL (no room in time: nothing was
 * queued), XICHAN_ETIMEDOUT or XICHAN_EINTR (not taken in time, or the
 * interrupt callback: the item was withdrawn, no getter ever sees it),
 * XICHAN_ENOTFOUND (destroyed; an item still queued went with it), and the
 * errors of xichan_queue_put.  0 also when a purge dropped the item.
 */
XICHAN_EXTERN int xichan_queue_handoff(xichan_client *cl, xichan_queue_id q, int fmt,
                                       const void *data, size_t len, int unboundop,
                                       int64_t deadline_ns);
/*
 * Takes the oldest item, waiting until the deadline for one.  On success the
 * caller owns *item and releases it.  An UNBOUND_ERROR item is consumed and
 * reported as XICHAN_EUNBOUND.  Errors: XICHAN_EEMPTY, XICHAN_ENOTFOUND,
 * XICHAN_EUNBOUND, XICHAN_EINTR.  On failure *item is zeroed.
 */
XICHAN_EXTERN int xichan_queue_get(xichan_client *cl, xichan_queue_id q, xichan_item *item,
                                   int64_t deadline_ns);
/* One item to put in a batch. */
typedef struct xichan_iov {
    const void *data;
    size_t len;
    int fmt;
} xichan_iov;

/*
 * Batches: one lock, one allocation pass and one wake for many items.
 * put_many copies and appends the n items in order, waiting for room in a
 * bounded queue as n puts would; it returns n, or how many were put when
 * the deadline passed first (the rest are not queued), or an error if none
 * was.  get_many waits until the deadline for at least one item, then takes
 * up to max in order and returns how many; the caller releases them (see
 * xichan_items_release).  An UNBOUND_ERROR item ends a batch: it is
 * reported (XICHAN_EUNBOUND) by the call that finds it first in line.
 */
XICHAN_EXTERN int xichan_queue_put_many(xichan_client *cl, xichan_queue_id q, const xichan_iov *items,
                                        size_t n, int unboundop, int64_t deadline_ns);
XICHAN_EXTERN int xichan_queue_get_many(xichan_client *cl, xichan_queue_id q, xichan_item *items,
                                        size_t max, int64_t deadline_ns);
/* Releases n items at once (one lock). */
XICHAN_EXTERN void xichan_items_release(xichan_item *items, size_t n);

/*
 * Leases: the oldest item that another session put, taken so that it goes
 * back to the queue (in order, at the head) if this session ends -- exit,
 * kill -9, close -- before it commits.  (A forwarder never takes back what
 * it put in itself.)  For forwarders that must not lose an item between
 * taking it and handing it on (xichan-bridge).  lease waits as get does
 * and fills *item the same way; commit consumes the item (and releases
 * it; xichan_item_release on a leased item commits it too); abort puts it
 * back at once.  Errors of lease: those of xichan_queue_get, and
 * XICHAN_ELIMIT for a segment with more than 2^24 object slots.  commit
 * and abort: XICHAN_EINVAL if item is not a lease this session holds;
 * abort: XICHAN_ENOTFOUND if the queue is gone (the item is freed).
 */
XICHAN_EXTERN int xichan_queue_lease(xichan_client *cl, xichan_queue_id q, xichan_item *item,
                                     int64_t deadline_ns);
XICHAN_EXTERN int xichan_queue_lease_commit(xichan_item *item);
XICHAN_EXTERN int xichan_queue_lease_abort(xichan_item *item);
/*
 * Waits until some caller is blocked in get on the empty queue, and returns
 * how many items the blocked callers want: one per get, up to 256 per
 * get_many (its max).  A hint: one killed while it waited still counts.  Marks
 * the queue so that each getter that starts to wait wakes this call: no
 * polling.  XICHAN_ETIMEDOUT when the deadline passes first.
 */
XICHAN_EXTERN int xichan_queue_wait_getters(xichan_client *cl, xichan_queue_id q,
                                            int64_t deadline_ns);

/* Number of queued items (a snapshot), or an error. */
XICHAN_EXTERN int64_t xichan_queue_count(xichan_client *cl, xichan_queue_id q);
/* 1 if bounded and at capacity, 0 if not, or an error. */
XICHAN_EXTERN int xichan_queue_full(xichan_client *cl, xichan_queue_id q);
/* The defaults given at creation. */
/*
 * Drops every item queued in q and keeps the queue: returns how many were
 * dropped (>= 0), or an error.  Putters blocked on a full queue are woken.
 * Items put meanwhile by others may be dropped or kept, as if the purge
 * came before or after them.
 */
XICHAN_EXTERN int64_t xichan_queue_purge(xichan_client *cl, xichan_queue_id q);
XICHAN_EXTERN int xichan_queue_defaults(xichan_client *cl, xichan_queue_id q, int64_t *maxsize,
                                        int *fmt, int *unboundop);

/* ------------------------------------------------------------ channels */

/*
 * Channels follow CPython's _interpchannels with sessions in place of
 * interpreters (xichan(7)).  Two kinds of reference exist:
 *   - bindings keep a channel alive (xichan_chan_bind/unbind), as for queues;
 *   - each session's association with the send and recv ends, made by its
 *     first send or recv attempt and given up by xichan_chan_release().  Once
 *     no session holds an open association on either end, and one ever did,
 *     the channel closes by itself.
 */
typedef struct { uint64_t id; } xichan_chan_id;

typedef struct xichan_chan_opts {
    int unboundop;    /* default for items sent; 0 means REPLACE */
    const char *name; /* as for queues */
} xichan_chan_opts;

enum {
    XICHAN_END_SEND = 1,
    XICHAN_END_RECV = 2,
    XICHAN_CLOSE_FORCE = 4 /* close: drop queued items */
};

/* Creates a channel bound once to the caller.  Ids start at 0. */
XICHAN_EXTERN int xichan_chan_create(xichan_client *cl, const xichan_chan_opts *opts,
                                     xichan_chan_id *out);
XICHAN_EXTERN int xichan_chan_open(xichan_client *cl, const char *name, xichan_chan_id *out);
/* Destroys at once: items dropped; blocked senders get XICHAN_ECLOSED,
 * blocked receivers XICHAN_ENOTFOUND; later calls XICHAN_ENOTFOUND. */
XICHAN_EXTERN int xichan_chan_destroy(xichan_client *cl, xichan_chan_id c);
XICHAN_EXTERN int xichan_chan_bind(xichan_client *cl, xichan_chan_id c);
/* Drops one binding; the last one destroys the channel (unless named). */
XICHAN_EXTERN int xichan_chan_unbind(xichan_client *cl, xichan_chan_id c);

/*
 * Rendezvous send: queues a copy of the bytes and waits until a receiver
 * has taken that very item.  On timeout or interrupt the item is withdrawn
 * (no receiver ever sees it) and XICHAN_ETIMEDOUT / XICHAN_EINTR returned;
 * XICHAN_NOWAIT therefore always times out unless the item was taken.
 * Errors also: XICHAN_ECLOSED (closed, closing, this session released its
 * send end, or force-closed or destroyed while waiting), XICHAN_ENOTFOUND,
 * XICHAN_ENOSPC, XICHAN_E2BIG.
 */
XICHAN_EXTERN int xichan_chan_send(xichan_client *cl, xichan_chan_id c, int fmt, const void *data,
                                   size_t len, int unboundop, int64_t deadline_ns);
/* Queues and returns at once: 1 if a receiver was already blocked waiting
 * (it will take this item), 0 if not, or an error as for send. */
XICHAN_EXTERN int xichan_chan_send_nowait(xichan_client *cl, xichan_chan_id c, int fmt,
                                          const void *data, size_t len, int unboundop);
/*
 * Takes the oldest item, waiting until the deadline.  Errors: XICHAN_EEMPTY
 * (deadline passed), XICHAN_ECLOSED, XICHAN_ENOTFOUND, XICHAN_EUNBOUND,
 * XICHAN_EINTR.  Any attempt associates the recv end.
 */
XICHAN_EXTERN int xichan_chan_recv(xichan_client *cl, xichan_chan_id c, xichan_item *item,
                                   int64_t deadline_ns);
/*
 * flags: XICHAN_END_SEND, XICHAN_END_RECV (0: both), XICHAN_CLOSE_FORCE.
 * Empty: closes.  Not empty: FORCE drops the items and closes; SEND alone
 * makes it "closing" (sends fail, receivers drain, then it is closed);
 * otherwise XICHAN_ENOTEMPTY and nothing changes.  Closed or closing
 * already (for a send-side close): XICHAN_ECLOSED.
 */
XICHAN_EXTERN int xichan_chan_close(xichan_client *cl, xichan_chan_id c, int flags);
/* Gives up this session's association with the ends (0: both); its own
 * later sends/recvs on those ends fail with XICHAN_ECLOSED. */
XICHAN_EXTERN int xichan_chan_release(xichan_client *cl, xichan_chan_id c, int ends);
/* Queued items (0 once closed), or an error (XICHAN_ECLOSED when closed). */
XICHAN_EXTERN int64_t xichan_chan_count(xichan_client *cl, xichan_chan_id c);
XICHAN_EXTERN int xichan_chan_defaults(xichan_client *cl, xichan_chan_id c, int *unboundop);

/* CPython's ChannelInfo, with sessions for interpreters. */
typedef struct xichan_chan_info {
    int open, closing, closed;
    uint64_t count;
    uint32_t num_send, num_send_released;  /* sessions associated with the send end */
    uint32_t num_recv, num_recv_released;
    uint32_t num_both, num_both_released;  /* with both ends (released: both released) */
    uint32_t num_both_send_released, num_both_recv_released;
    int send_associated, send_released;    /* the calling session */
    int recv_associated, recv_released;
} xichan_chan_info;

XICHAN_EXTERN int xichan_chan_info_get(xichan_client *cl, xichan_chan_id c, xichan_chan_info *out);
/* Sessions associated (and not released) with one end; returns the total.
 * XICHAN_ECLOSED on a closed channel. */
XICHAN_EXTERN int xichan_chan_sessions(xichan_client *cl, xichan_chan_id c, int end, uint32_t *sids,
                                       size_t cap);

/* ------------------------------------------------------ shared buffers */

/*
 * A shared buffer is a block of the segment that every session can map:
 * writes are seen by all, with no copy.  It lives, like a queue, while some
 * session holds a binding (or an item in flight holds a reference).
 */
typedef struct { uint64_t id; } xichan_buf_id;

/* Allocates size zeroed bytes, bound once to the caller.  Errors:
 * XICHAN_EINVAL (size 0), XICHAN_ENOSPC, XICHAN_E2BIG, XICHAN_ELIMIT. */
XICHAN_EXTERN int xichan_buf_create(xichan_client *cl, size_t size, xichan_buf_id *out);
XICHAN_EXTERN int xichan_buf_bind(xichan_client *cl, xichan_buf_id b);
/* Drops one binding; the last one frees the memory: unmap your views first. */
XICHAN_EXTERN int xichan_buf_unbind(xichan_client *cl, xichan_buf_id b);
/* The buffer's address in this process and its size.  The pointer stays
 * valid while the caller's session keeps a binding. */
XICHAN_EXTERN int xichan_buf_map(xichan_client *cl, xichan_buf_id b, void **ptr, size_t *size);

/* ------------------------------------------------------- buffer items */

/*
 * An XICHAN_FMT_BUFFER item carries a typed buffer: struct-module format,
 * itemsize, shape and readonly, and either a copy of the bytes (COPY), or a
 * reference to memory in a shared buffer (SHARED): the receiver maps the
 * same bytes, in any process, and writes are seen both ways.  LOCAL is the
 * Python binding's: a copy plus the sender's pid and a token that lets a
 * receiver in the same process view the sender's own memory.  The payload
 * layout is documented in xichan.7 and at the top of bufitem.c.
 */
enum { XICHAN_BUF_COPY = 0, XICHAN_BUF_SHARED = 1, XICHAN_BUF_LOCAL = 2 };

#define XICHAN_BUF_MAXDIM 64

typedef struct xichan_bufdesc {
    int mode;              /* XICHAN_BUF_* */
    const char *format;    /* struct format; NULL or "" means "B" */
    size_t itemsize;       /* bytes per item (>= 1) */
    int ndim;              /* 0..XICHAN_BUF_MAXDIM */
    const int64_t *shape;  /* ndim entries; nbytes == itemsize * prod(shape) */
    int readonly;
    size_t nbytes;
    const void *data;      /* COPY, LOCAL: the bytes (encode copies them) */
    xichan_buf_id buf;     /* SHARED: the buffer and the byte offset in it */
    uint64_t offset;
    uint64_t local_pid, local_token, local_addr; /* LOCAL only */
} xichan_bufdesc;

/* Bytes a payload for d needs, or 0 if d is invalid. */
XICHAN_EXTERN size_t xichan_bufitem_size(const xichan_bufdesc *d);
/* Writes d's payload into out (cap >= xichan_bufitem_size(d)); XICHAN_EINVAL if d is invalid. */
XICHAN_EXTERN int xichan_bufitem_encode(const xichan_bufdesc *d, void *out, size_t cap);
/*
 * Parses and checks a payload.  out's pointers point into the payload
 * (format into fmtbuf, which needs 256 bytes; shape into shapebuf).
 * XICHAN_ECORRUPT if any field is inconsistent.
 */
XICHAN_EXTERN int xichan_bufitem_parse(const void *payload, size_t len, xichan_bufdesc *out,
                                       char fmtbuf[256], int64_t shapebuf[XICHAN_BUF_MAXDIM]);
/*
 * Queue or send a buffer item.  For SHARED the item holds an in-flight
 * reference on the buffer until the receiver accepts it
 * (xichan_item_buffer); the bytes are not copied.
 */
XICHAN_EXTERN int xichan_queue_put_buffer(xichan_client *cl, xichan_queue_id q,
                                          const xichan_bufdesc *d, int unboundop,
                                          int64_t deadline_ns);
XICHAN_EXTERN int xichan_chan_send_buffer(xichan_client *cl, xichan_chan_id c,
                                          const xichan_bufdesc *d, int unboundop,
                                          int64_t deadline_ns);
/* As xichan_chan_send_nowait: 1 if a receiver took it at once, else 0. */
XICHAN_EXTERN int xichan_chan_send_buffer_nowait(xichan_client *cl, xichan_chan_id c,
                                                 const xichan_bufdesc *d, int unboundop);
/*
 * Accepts a received buffer item: parses it and sets *ptr to its bytes.
 * COPY/LOCAL: ptr points into the item (valid until it is released).
 * SHARED: the caller's session binds the buffer (release it with
 * xichan_buf_unbind when done with ptr) and the item's in-flight reference
 * is given back; ptr stays valid after the item is released.
 */
XICHAN_EXTERN int xichan_item_buffer(xichan_client *cl, const xichan_item *item, xichan_bufdesc *out,
                                     char fmtbuf[256], int64_t shapebuf[XICHAN_BUF_MAXDIM],
                                     void **ptr);

/*
 * XICHAN_FMT_PICKLE_OOB payloads: a Python pickle (protocol 5) and its
 * out-of-band buffers, each at an offset that is a multiple of
 * XICHAN_PICKLEITEM_ALIGN.  Layout in xichan.7 and at the top of
 * pickleitem.c.
 */
#define XICHAN_PICKLEITEM_MAGIC 0x31424B50u /* "PKB1" */
#define XICHAN_PICKLEITEM_ALIGN 64u
#define XICHAN_PICKLEITEM_HDR 16u  /* bytes before the buffer table */
#define XICHAN_PICKLEITEM_ENT 24u  /* bytes per buffer in the table */

typedef struct xichan_picklebuf {
    const void *data; /* points into the payload */
    size_t len;
    int readonly;     /* the buffer was read-only (1) or writable (0) when pickled */
} xichan_picklebuf;

/*
 * Parses and checks a payload: *pickle and *picklen are the pickle, the
 * first cap buffers go to bufs.  Returns how many buffers the item has
 * (may be more than cap), or XICHAN_ECORRUPT / XICHAN_EINVAL.
 */
XICHAN_EXTERN int xichan_pickleitem_parse(const void *payload, size_t len, const void **pickle,
                                          size_t *picklen, xichan_picklebuf *bufs, size_t cap);
/*
 * Writes the header and buffer table for a pickle of picklen bytes and
 * nbuf buffers of lens[i] bytes (readonly may be NULL) into out; returns
 * its size (the pickle follows it, then the buffers, each padded with zeros
 * to its aligned offset), or 0 if cap is too small or an argument is bad.
 */
XICHAN_EXTERN size_t xichan_pickleitem_header(size_t picklen, const size_t *lens,
                                              const int *readonly, size_t nbuf, void *out,
                                              size_t cap);

/*
 * References held by items in flight (CPython keeps a queue alive while a
 * Queue object sits in another queue): delta +1 when a handle to the object
 * is packed into an item, -1 when the receiver has bound it for itself.  An
 * item dropped unread keeps its reference until the object is destroyed.
 */
XICHAN_EXTERN int xichan_obj_inflight(xichan_client *cl, int kind, uint64_t id, int delta);

/* ---------------------------------------------------------- wait sets */

/*
 * A wait set waits for the first of many queues and channel ends to become
 * ready, in one thread or through a file descriptor for poll/epoll/select
 * and event loops.  Readiness is level-triggered and waiting never
 * consumes anything: the caller then makes a nowait call, which may lose
 * the race to another consumer (XICHAN_EEMPTY), and simply waits again.
 *
 *   XICHAN_EV_READABLE  queue: an item is there; channel: an item is there,
 *                       or the channel is closing or closed (recv would
 *                       not block)
 *   XICHAN_EV_WRITABLE  queue: a put would not block (not full); channel:
 *                       no item waits for a receiver, or an item was
 *                       received since the member was last reported
 *   XICHAN_EV_CLOSED    always reported, asked or not: the object was
 *                       destroyed, or the channel is closed
 *
 * A wait set belongs to the client that made it and to one thread at a
 * time; it holds registrations in the segment that the daemon removes if
 * the process dies.  Members per set: at most 4096.
 */
enum { XICHAN_EV_READABLE = 1, XICHAN_EV_WRITABLE = 2, XICHAN_EV_CLOSED = 4 };

typedef struct xichan_waitset xichan_waitset;

typedef struct xichan_ready {
    int member;        /* as returned by xichan_waitset_add_* */
    unsigned events;   /* XICHAN_EV_* now true (only those asked, plus CLOSED) */
    uint64_t user;     /* the caller's value given at add */
} xichan_ready;

/* Creates an empty wait set.  XICHAN_ELIMIT if the segment's table of wait
 * sets (one per session slot) is full. */
XICHAN_EXTERN int xichan_waitset_create(xichan_client *cl, xichan_waitset **out);
/* Removes every member and frees the set (and its fd).  NULL is a no-op.
 * Destroy a set before closing its client. */
XICHAN_EXTERN void xichan_waitset_destroy(xichan_waitset *ws);
/*
 * Adds a queue or a channel with the events of interest; returns the
 * member (>= 0) or an error (XICHAN_ENOTFOUND, XICHAN_ELIMIT when the set
 * or the segment's registration table is full, XICHAN_EINVAL).  The same
 * object may be added more than once.
 */
XICHAN_EXTERN int xichan_waitset_add_queue(xichan_waitset *ws, xichan_queue_id q,
                                           unsigned events, uint64_t user);
XICHAN_EXTERN int xichan_waitset_add_chan(xichan_waitset *ws, xichan_chan_id c, unsigned events,
                                          uint64_t user);
/* Removes a member (XICHAN_ENOTFOUND if there is none by that number). */
XICHAN_EXTERN int xichan_waitset_remove(xichan_waitset *ws, int member);
/*
 * Waits until a member is ready or the deadline passes, and fills up to
 * cap entries.  Returns how many (>= 1), 0 for XICHAN_NOWAIT with nothing
 * ready, XICHAN_ETIMEDOUT, or XICHAN_EINTR (the client's interrupt
 * callback).  Sleeps on a futex with no lock held; a member still ready
 * is reported again by the next call.
 */
XICHAN_EXTERN int xichan_waitset_wait(xichan_waitset *ws, xichan_ready *ready, size_t cap,
                                      int64_t deadline_ns);
/*
 * A file descriptor that polls readable while some member may be ready:
 * then call xichan_waitset_wait(..., XICHAN_NOWAIT), which clears it once
 * it returns 0.  Owned by the set (do not close it).  The first call
 * starts one helper thread per set that sleeps on the set's futex word and
 * writes the descriptor (an eventfd).
 */
XICHAN_EXTERN int xichan_waitset_fd(xichan_waitset *ws);

/*
 * A channel send in two steps, for event loops: xichan_chan_send_start
 * queues the item as send_nowait does and gives its ticket;
 * xichan_chan_send_check tells whether it was received (0), is still
 * waiting (XICHAN_EEMPTY) or was dropped by a forced close or a destroy
 * (XICHAN_ECLOSED); xichan_chan_send_cancel withdraws it (0) unless a
 * receiver already took it (1).  Wait for XICHAN_EV_WRITABLE between checks.
 */
XICHAN_EXTERN int xichan_chan_send_start(xichan_client *cl, xichan_chan_id c, int fmt,
                                         const void *data, size_t len, int unboundop,
                                         uint64_t *ticket);
XICHAN_EXTERN int xichan_chan_send_check(xichan_client *cl, xichan_chan_id c, uint64_t ticket);
XICHAN_EXTERN int xichan_chan_send_cancel(xichan_client *cl, xichan_chan_id c, uint64_t ticket);

/*
 * Whether an item is still in a queue.  Every item gets a ticket when it is
 * queued: a serial number of its queue or channel, in fifo order, modulo
 * 2^32.  xichan_last_ticket gives the ticket of the last item the calling
 * thread queued (by any put or send, the last of a put_many), so read it
 * right after the call that queued it.  xichan_queue_put_check tells
 * whether the item with that ticket may still be in queue q (1) or has
 * left it (0): taken by a getter, purged, removed as unbound, or the queue
 * destroyed.  "Left" is exact; "may still be in" also covers an item a
 * getter took out of turn (a lease, a withdrawn hand-off) while older
 * items wait, until those leave too.  For a channel item use
 * xichan_chan_send_check with the same ticket.
 */
XICHAN_EXTERN uint64_t xichan_last_ticket(void);
XICHAN_EXTERN int xichan_queue_put_check(xichan_client *cl, xichan_queue_id q, uint64_t ticket);

/* --------------------------------------------------------- inspection */

enum { XICHAN_KIND_QUEUE = 1, XICHAN_KIND_CHANNEL = 2, XICHAN_KIND_BUFFER = 3 };

enum {
    XICHAN_STATE_OPEN = 0,
    XICHAN_STATE_CLOSING = 1, /* channels: send side closed, items drain */
    XICHAN_STATE_CLOSED = 2,
    XICHAN_STATE_BROKEN = 3,
    XICHAN_STATE_LOCKED = 4   /* its lock is held by a stopped or slow process (locked_by) */
};

typedef struct xichan_obj_info {
    uint64_t id;
    int kind;          /* XICHAN_KIND_* */
    int state;         /* XICHAN_STATE_* */
    int64_t maxsize;
    uint64_t count;    /* queued items */
    uint64_t bytes;    /* payload bytes queued */
    uint32_t nbound;   /* bindings, all sessions */
    uint32_t nsessions; /* sessions holding a binding or an association */
    int fmt;
    int unboundop;
    char name[64];     /* "" if unnamed */
    uint32_t locked_by; /* XICHAN_STATE_LOCKED: the holder's pid (count, bytes: 0, unknown) */
    /* Totals since the object was created (queues and channels; 0 for
     * buffers): items put or sent, items taken by a get or recv, payload
     * bytes put or sent.  Statistics: a process killed in the middle of a
     * put or get may leave one uncounted. */
    uint64_t puts, gets, put_bytes;
} xichan_obj_info;

/*
 * Fills up to cap entries, oldest object first, and returns how many objects
 * exist (which may exceed cap), or an error.
 */
XICHAN_EXTERN int xichan_list(xichan_client *cl, xichan_obj_info *out, size_t cap);
/* One object's info by kind and id. */
XICHAN_EXTERN int xichan_info(xichan_client *cl, int kind, uint64_t id, xichan_obj_info *out);
/*
 * Copies the item index places after the head of a queue or channel (0: the
 * next one a get or recv would take) into buf, without taking it.  On
 * success out->data is buf, out->len the payload length, and out owns
 * nothing (xichan_item_release is a no-op on it).  out->unbound is 1 for an
 * item a getter would receive as UNBOUND and 2 for one whose get would fail
 * with XICHAN_EUNBOUND (no payload in either case).  Errors: XICHAN_EEMPTY
 * (fewer items), XICHAN_E2BIG (out->len says how many bytes buf needs),
 * XICHAN_ENOTFOUND, XICHAN_EINVAL.  A snapshot: the item may be taken at
 * any moment after the call.
 */
XICHAN_EXTERN int xichan_peek(xichan_client *cl, int kind, uint64_t id, uint64_t index, void *buf,
                              size_t cap, xichan_item *out);
/* Session ids bound to or associated with an object; returns the total. */
XICHAN_EXTERN int xichan_obj_sessions(xichan_client *cl, int kind, uint64_t id, uint32_t *sids,
                                      size_t cap);

enum { XICHAN_SESSION_LIVE = 1, XICHAN_SESSION_ENDING = 2 };

typedef struct xichan_session_info {
    uint32_t sid, pid, uid;
    int state;         /* XICHAN_SESSION_LIVE, or _ENDING while the daemon releases what it held */
    uint64_t start_ns; /* CLOCK_REALTIME */
    char kind[16];     /* "c", "python", "ctl": printable ASCII, others shown as '?' */
    int nobjects;      /* objects it is bound to or associated with; -1 if unknown */
} xichan_session_info;

/*
 * The attached sessions, by session id: fills up to cap records and returns
 * how many sessions there are (which may exceed cap), or an error.  The
 * table is read without a lock (the daemon is its only writer), so it is a
 * snapshot that may be a moment old; nobjects is counted under the object
 * table's lock, -1 when a stopped or slow process holds it (not waited for).
 */
XICHAN_EXTERN int xichan_sessions(xichan_client *cl, xichan_session_info *out, size_t cap);

typedef struct xichan_stats {
    uint64_t segment_size, heap_size, heap_used, heap_free;
    uint32_t objects, sessions, max_objects, max_sessions;
    uint32_t daemon_pid;  /* 0 while no daemon serves */
    char segment_name[64];
    uint64_t created_ns;      /* CLOCK_REALTIME when the segment was made */
    uint64_t daemon_start_ns; /* CLOCK_REALTIME when daemon_pid started serving; 0 if none */
} xichan_stats;

XICHAN_EXTERN int xichan_stats_get(xichan_client *cl, xichan_stats *out);

/* -------------------------------------------------------- msgpack */

/*
 * The msgpack extension types xichan items use (xichan(7), ITEM FORMATS),
 * read and written by the Python binding and xichanctl alike:
 *   XICHAN_EXT_HANDLE  a queue, channel or buffer: XICHAN_EXT_HANDLE_SIZE
 *                      bytes -- kind u8 (XICHAN_KIND_*), flags u8
 *                      (XICHAN_HANDLE_*), id u64 little-endian.  The item
 *                      holds one in-flight reference to the object
 *                      (xichan_obj_inflight), which its receiver gives back.
 *   XICHAN_EXT_BUFFER  a buffer payload, as xichan_bufitem_encode writes it.
 */
#define XICHAN_EXT_HANDLE 1
#define XICHAN_EXT_BUFFER 2
#define XICHAN_EXT_HANDLE_SIZE 10
enum {
    XICHAN_HANDLE_SEND = 0x01,   /* a channel's send end */
    XICHAN_HANDLE_RECV = 0x02,   /* a channel's recv end */
    XICHAN_HANDLE_CHANID = 0x10, /* with SEND or RECV: the bare channel id (Python ChannelID) */
};

/*
 * msgpack-c helpers.  They name msgpack-c's structs by their tags, which
 * msgpack-c's typedefs share, so they are declared whatever the order of
 * #include <msgpack.h> and <xichan.h>; a caller includes <msgpack.h> to
 * have the structs themselves.  Python receives a msgpack item as the
 * natural value (map -> dict, array -> tuple).
 */
struct msgpack_sbuffer;
struct msgpack_unpacked;
/* Puts/sends the packed bytes of sb as one XICHAN_FMT_MSGPACK item. */
XICHAN_EXTERN int xichan_queue_put_msgpack(xichan_client *cl, xichan_queue_id q,
                                           const struct msgpack_sbuffer *sb, int64_t deadline_ns);
XICHAN_EXTERN int xichan_chan_send_msgpack(xichan_client *cl, xichan_chan_id c,
                                           const struct msgpack_sbuffer *sb, int64_t deadline_ns);
/*
 * Unpacks a msgpack item into out (initialised by the caller with
 * msgpack_unpacked_init and destroyed with msgpack_unpacked_destroy; the
 * objects stay valid until then, also after xichan_item_release).
 * XICHAN_EINVAL if the item is not msgpack; XICHAN_ECORRUPT if its bytes are
 * not one complete msgpack value.
 */
XICHAN_EXTERN int xichan_item_unpack(const xichan_item *item, struct msgpack_unpacked *out);

#ifdef __cplusplus
}
#endif
#endif /* XICHAN_H */
