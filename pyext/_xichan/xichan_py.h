/*
 * xichan_py.h -- declarations shared by the files of the _xichan extension.
 *
 * The extension has three layers:
 *   (a) libxichan itself is the C core: every call returns 0 or a negative
 *       XICHAN_E* code and touches no PyObject;
 *   (b) this extension converts values (codec.c, buffers.c), calls the core
 *       with the GIL released (ops_queue.c, ops_chan.c) and turns codes into
 *       exceptions in exactly one place, raise_from_err() in module.c;
 *   (c) the Python package xichan/ (queues.py, channels.py) on top.
 *
 * All Python-visible state lives in the per-interpreter module state
 * (xp_state); the only process-global state is plain C memory: the table of
 * local buffer exports (buffers.c) and the package directory (module.c).
 *
 * Files: module.c (state, session, errors, timeouts, method table),
 * codec.c (msgpack values), buffers.c (buffer items), smallpickle.c (pickles
 * of small scalars),
 * sharedbuf.c (SharedBuffer), ops_queue.c, ops_chan.c, ops_misc.c (the
 * calls), xid.c (3.12+ cross-interpreter data).
 */
#ifndef XICHAN_PY_H
#define XICHAN_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <msgpack.h>
#include <stdint.h>
#include <sys/types.h>

#include "xichan.h"

/* What an error is about, for raise_from_err()'s messages and exception classes. */
enum { XP_NONE = 0, XP_QUEUE = XICHAN_KIND_QUEUE, XP_CHAN = XICHAN_KIND_CHANNEL,
       XP_BUF = XICHAN_KIND_BUFFER };

/* A SharedBuffer mapping this interpreter knows, for pointer lookups. */
typedef struct xp_bufreg {
    PyObject *obj; /* borrowed: the SharedBuffer removes itself when it dies */
    char *ptr;
    size_t size;
    uint64_t id;
} xp_bufreg;

typedef struct xp_state {
    xichan_client *cl; /* this interpreter's session; NULL until first use */
    pid_t cl_pid;      /* getpid() when cl was opened: another pid = forked child */
    int64_t interp_id;

    /* Classes handed over by the Python layer (_register); NULL until then. */
    PyObject *QueueError, *QueueNotFoundError, *QueueEmpty, *QueueFull, *QueueItemDestroyed;
    PyObject *ChannelError, *ChannelNotFoundError, *ChannelClosedError, *ChannelEmptyError,
        *ChannelNotEmptyError, *ChannelItemDestroyed;
    PyObject *NotShareableError, *XichanError, *SegmentFullError, *AccessDeniedError;
    PyObject *ObjectLockedError;
    PyObject *QueueType, *SendChannelType, *RecvChannelType, *ChannelIDType;
    PyObject *make_channel_id; /* channels._channel_id(id, end) -> ChannelID */

    PyObject *pickle_loads, *pickle_dumps;
    PyObject *kw_buffers;          /* ("buffers",): pickle.loads' keyword */
    PyObject *kw_buffer_callback;  /* ("buffer_callback",): pickle.dumps' */
    PyObject *int5;                /* 5: the pickle protocol of out-of-band buffers */
    int pickle_proto;        /* pickle.DEFAULT_PROTOCOL if 4 or 5 (smallpickle.c), else 0 */
    PyObject *unbound_item;  /* returned by get/recv for an UNBOUND item */
    PyObject *str_id;        /* interned "_id" */
    PyObject *str_end;       /* interned "_end" */

    PyTypeObject *SharedBufferType;
    PyTypeObject *BufferViewType;

    xp_bufreg *bufs;
    size_t nbufs, capbufs;

    msgpack_zone *zone;  /* codec.c: msgpack_unpack's zone, reused item after item */
    int zone_busy;       /* a decode is walking it (a nested one takes its own) */
} xp_state;

/* ------------------------------------------------------------- module.c */

xp_state *xp_state_of(PyObject *module);
xp_state *xp_state_from_type(PyTypeObject *tp);
/* The session of this interpreter, opened on first use (and again in a
 * forked child).  NULL with an exception set on failure. */
xichan_client *xp_client(xp_state *st);
/* Sets the exception for a XICHAN_E* code; always returns NULL.  The one
 * translator of codes into exceptions (module.c's table). */
PyObject *raise_from_err(xp_state *st, int err, int kind, uint64_t id);
/* The same for an object named by name (a str) rather than by id. */
PyObject *raise_from_err_named(xp_state *st, int err, int kind, PyObject *name);
/* Same, returning -1, for int-returning helpers. */
int raise_from_err_int(xp_state *st, int err, int kind, uint64_t id);
/* Takes the raised exception into *first if that is still NULL (else drops
 * it): a batch goes on and raises the first error at the end. */
void xp_err_keep(PyObject **first);
/* Raises exc again (steals it). */
void xp_err_restore(PyObject *exc);
/* Sets an attribute on the exception being raised (e.g. get_many's .items). */
void xp_exc_setattr(const char *name, PyObject *value);
/* timeout (None, int or float seconds) -> absolute deadline; -1 on error. */
int xp_deadline(PyObject *timeout, int64_t *deadline);
/* An unbound op: 0 ok, or -1 with ValueError.  default_ok: 0
 * (XICHAN_UNBOUND_DEFAULT, "the object's") is accepted too. */
int xp_check_unboundop(long op, int default_ok);
/* The same for a Python int argument, stored in *op. */
int xp_unboundop(PyObject *arg, int default_ok, int *op);
/* Object id argument (a non-negative int) -> uint64; -1 on error. */
int xp_id_arg(PyObject *arg, const char *what, uint64_t *out);
/* Imports xichan.queues / xichan.channels so they register their classes. */
int xp_need_queues(xp_state *st);
int xp_need_channels(xp_state *st);

/*
 * Blocking calls run between XP_BLOCK_BEGIN and XP_BLOCK_END: the GIL is
 * released and the thread state parked where the interrupt callback finds
 * it (module.c: xp_interrupt), so Ctrl-C can run Python's signal handlers.
 */
/* Items up to this size are first tried with the GIL held (module.c); a
 * longer copy into the segment runs with it released. */
#define XP_HELD_MAX 16384

typedef struct xp_block {
    PyThreadState *ts;
    struct xp_block *prev;
} xp_block;
void xp_block_begin(xp_block *b);
void xp_block_end(xp_block *b);

/* -------------------------------------------------------------- codec.c */

/* One item being encoded: the packed bytes and the in-flight references
 * taken for handles inside it (given back if the item is not queued). */
/* A buffer item's description and what it points into (buffers.c). */
typedef struct xp_bufhold {
    xichan_bufdesc d;
    int64_t shape[XICHAN_BUF_MAXDIM];
    PyObject *mv;   /* the memoryview d.data is in */
    char *tmp;      /* COPY: the bytes in C order (PyMem) */
} xp_bufhold;

#define XP_ENC_INLINE 256 /* a small item packs into the xp_enc itself: no malloc */

typedef struct xp_enc {
    xp_state *st;
    xichan_client *cl;
    char *buf;         /* the packed bytes: inl, or PyMem once it outgrows it */
    size_t len, cap;
    msgpack_packer pk;
    struct { int kind; uint64_t id; } *refs;
    size_t nrefs, caprefs;
    int fmt;           /* XICHAN_FMT_MSGPACK or XICHAN_FMT_BUFFER */
    char *raw;         /* a top-level SHARED buffer item's payload (PyMem), else NULL */
    size_t rawlen;
    /* A top-level COPY/LOCAL buffer item: put with xichan_*_buffer from this
     * description, so its bytes are copied once, straight into the segment. */
    int direct;
    xp_bufhold hold;
    char inl[XP_ENC_INLINE];
} xp_enc;

/* The encoded item's bytes (not for e->direct: see hold). */
static inline const void *xp_enc_data(const xp_enc *e)
{
    return e->raw ? (const void *)e->raw : (const void *)e->buf;
}
static inline size_t xp_enc_len(const xp_enc *e)
{
    return e->direct ? e->hold.d.nbytes : e->raw ? e->rawlen : e->len;
}

/* An xp_enc points into itself (inl): initialize it where it stays. */
void xp_enc_init(xp_enc *e, xp_state *st, xichan_client *cl);
/* The item was not queued: drop its in-flight references and exports. */
void xp_enc_abort(xp_enc *e);
void xp_enc_fini(xp_enc *e);
int xp_enc_addref(xp_enc *e, int kind, uint64_t id);
/* Encodes a shareable value; a top-level memoryview becomes a buffer item.
 * -1 with NotShareableError/OverflowError set (nothing left to undo but
 * what xp_enc_abort gives back). */
int xp_encode(xp_enc *e, PyObject *obj);
/* Decodes a received item by its own format.  Releases the item. */
PyObject *xp_decode_item(xp_state *st, xichan_item *item);
/* The same without releasing it (a batch releases all at once); a pickled
 * item comes back as its bytes with *unpickle set: pass them to xp_unpickle
 * (which steals them) once the item is released. */
PyObject *xp_decode_held(xp_state *st, xichan_item *item, int *unpickle);
PyObject *xp_unpickle(xp_state *st, PyObject *pickled);
/* If obj is a xichan object (a Queue, a channel end, a ChannelID, a
 * SharedBuffer): 1 with its handle's kind, XICHAN_HANDLE_* flags and id;
 * 0 if it is not one; -1 with an exception set. */
int xp_handle_of(xp_state *st, PyObject *obj, int *kind, int *flags, uint64_t *id);

/* Buffers of this size or more are pickled out of band (codec.c). */
#define XP_OOB_MIN 65536
/* obj pickled for a queue item: bytes (XICHAN_FMT_PICKLE), or (pickle,
 * [PickleBuffer...]) whose buffers go out of band (XICHAN_FMT_PICKLE_OOB).
 * viewtype wraps a memoryview for pickling (xichan.queues._PickledView). */
PyObject *xp_pickle_dumps(xp_state *st, PyObject *obj, PyObject *viewtype);
/* A (pickle, [buffers]) laid out as an XICHAN_FMT_PICKLE_OOB item: iov
 * points into the pickle, a header and the exported buffers (held until
 * xp_oob_fini, which also undoes a failed init). */
typedef struct xp_oob {
    void *hdr;
    size_t hdrlen, len;
    Py_buffer *views;
    size_t n, got;
    struct iovec *iov;
    size_t niov;
} xp_oob;
int xp_oob_init(xp_oob *o, PyObject *pickled);
void xp_oob_fini(xp_oob *o);
/* A handle of another session's object, bound for ours. */
PyObject *xp_handle_new(xp_state *st, int kind, int flags, uint64_t id);

/* The ext types and handle flags are xichan.h's (XICHAN_EXT_*, XICHAN_HANDLE_*). */

/* ------------------------------------------------------- smallpickle.c */

/* pickle.dumps(obj): written here for small scalars, else by pickle. */
PyObject *xp_pickle_small_dumps(xp_state *st, PyObject *obj);
/* pickle.loads of one of the forms xp_pickle_small_dumps writes: *done = 0 (and
 * NULL, no exception) for any other pickle, which pickle.loads must read. */
PyObject *xp_pickle_small_loads(const char *data, size_t len, int *done);

/* ---------------------------------------------------------- sharedbuf.c */

typedef struct {
    PyObject_HEAD
    uint64_t id;
    char *ptr;      /* the mapping in this process */
    size_t size;
    int bound;      /* holds a binding of this interpreter's session */
    PyObject *weakreflist;
} SharedBufferObject;

int xp_sharedbuf_init(PyObject *module, xp_state *st);
/* The registered SharedBuffer whose memory holds [p, p+len), or NULL. */
const xp_bufreg *xp_bufreg_find(xp_state *st, const char *p, size_t len);
/* This interpreter's SharedBuffer object for id (attached if need be). */
PyObject *xp_sharedbuffer_attach(xp_state *st, uint64_t id);
void xp_bufreg_clear(xp_state *st);
/* After fork: bind every registered buffer again in the child's session. */
int xp_buffers_rebind(xp_state *st);

/* ------------------------------------------------------------ buffers.c */

int xp_buffers_init(PyObject *module, xp_state *st);
/* Describes obj's memoryview for a buffer item (mode chosen as in the file
 * comment; references and exports are recorded in e); h keeps what h->d
 * points into until xp_bufhold_fini.  -1 with an exception set. */
int xp_buffer_describe(xp_enc *e, PyObject *obj, xp_bufhold *h);
void xp_bufhold_fini(xp_bufhold *h);
/* h's item payload in a new PyMem block (*out, *outlen); finishes h. */
int xp_buffer_payload(xp_enc *e, xp_bufhold *h, char **out, size_t *outlen);
/* The buffer payload for obj's memoryview (mode chosen as in the file
 * comment; references and exports are recorded in e), in a new PyMem block
 * (*out, *outlen).  -1 with an exception set. */
int xp_buffer_encode(xp_enc *e, PyObject *obj, char **out, size_t *outlen);
/* A memoryview for a buffer payload.  With lease (the item the payload is
 * the whole of), a large copied payload is viewed in place: the view takes
 * the item over (*lease is zeroed) and releases it when it dies.  Otherwise
 * the item may be released after. */
#define XP_LEASE_MIN 65536
PyObject *xp_buffer_decode(xp_state *st, const char *data, size_t len, xichan_item *lease);
/* Memoryviews of the n buffers of a leased pickled item, where they lie;
 * the views take the item over (*lease is zeroed) and free it when they die. */
PyObject *xp_item_views(xp_state *st, xichan_item *lease, const xichan_picklebuf *bufs, int n);
/* Gives back local exports of this interpreter whose receivers are done
 * (all: every one not in use, at module free).  Cheap when none are. */
void xp_exports_sweep(xp_state *st, int all);
#define XP_SWEEP(st)                                                                   \
    do {                                                                               \
        if (xp_exports_done_pending || xp_exports_tracked)                             \
            xp_exports_sweep((st), 0);                                                 \
    } while (0)
/* After a put or a non-blocking send queued e's item on kind's obj with
 * ticket: its local exports go once the item left, if nobody here took it. */
void xp_exports_queued(xp_enc *e, int kind, uint64_t obj, uint64_t ticket);
extern volatile int xp_exports_tracked;
/* After a blocking send on chan returned: an export nobody in this process
 * took was received by another process, so it can go -- at once, or when the
 * receivers here busy on chan are done (buffers.c). */
void xp_export_settle(xp_state *st, uint64_t token, uint64_t chan);
/* Around a receive on chan, from before the pop until after the decode:
 * xp_recv_begin counts the caller, xp_recv_end uncounts it. */
void xp_recv_begin(uint64_t chan);
void xp_recv_end(uint64_t chan);
void xp_exports_drop(uint64_t token);
extern volatile int xp_exports_done_pending;

/* -------------------------------------------------------- ops_*.c, xid.c */

/* ops_misc.c: the shapes ops_queue.c and ops_chan.c share. */
/* Anything with __index__ (an int, a ChannelID) as an object id, named
 * what in errors.  -1 with an exception set. */
int xp_index_id(PyObject *v, const char *what, uint64_t *id);
/* kind's (XP_QUEUE, XP_CHAN) id argument: a queue ID is an int, a channel
 * ID anything with __index__ (a ChannelID).  -1 with an exception set. */
int xp_obj_id(int kind, PyObject *arg, uint64_t *id);
/* fn(cl, id) for the id argument arg, with the GIL released; its result
 * as None, an int or a bool (XP_RET_*), or raised for a negative code. */
typedef int64_t (*xp_id_fn)(xichan_client *cl, uint64_t id);
enum { XP_RET_NONE, XP_RET_INT, XP_RET_BOOL };
PyObject *xp_id_call(PyObject *m, PyObject *arg, int kind, xp_id_fn fn, int ret);
/* fn(cl, name, &id) for the str arg -> the id, or raised naming arg. */
typedef int (*xp_open_fn)(xichan_client *cl, const char *name, uint64_t *id);
PyObject *xp_open_call(PyObject *m, PyObject *arg, int kind, xp_open_fn fn);
/* The session ids a xichan_*_sessions call returned (n of them, or a
 * negative code raised about kind/id) as a list; sids holds XP_SIDS_MAX. */
#define XP_SIDS_MAX 256
PyObject *xp_sids_list(xp_state *st, int n, const uint32_t *sids, int kind, uint64_t id);
/* list_objects(kind) with each tuple cut to the fields pick[0..npick)
 * (indices into list_objects' tuple); open_only keeps the open (or
 * locked) objects. */
PyObject *xp_list_fields(PyObject *m, int kind, const int *pick, int npick, int open_only);

extern PyMethodDef xp_queue_methods[];
extern PyMethodDef xp_chan_methods[];
extern PyMethodDef xp_misc_methods[];
extern PyMethodDef xp_xid_methods[];
int xp_xid_init(PyObject *module, xp_state *st);
/* ops_waitset.c: the WaitSet type and the EV_* constants. */
int xp_waitset_init(PyObject *module, xp_state *st);

#endif /* XICHAN_PY_H */
