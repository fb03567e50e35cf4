/*
 * span.c -- one spanned queue: local items out to JetStream, remote items in
 * when a local getter waits.
 *
 * DESIGN.  The queue on each machine stays an ordinary named xichan queue;
 * the bridge is one more session on it (as iceoryx2's zenoh tunnel is one
 * more participant).  A JetStream stream per queue (XQ_<name>, one subject,
 * work-queue retention: a message is removed when one consumer acknowledges
 * it) is the cluster-wide queue, and every bridge pulls from one shared
 * durable consumer, so each message goes to one machine.
 *
 *   out     a thread leases (xichan_queue_lease) the oldest items that other
 *           sessions put on this machine -- it waits for the first, then
 *           takes what is there, up to --window (at most maxsize for a
 *           bounded stream) -- publishes them asynchronously, each with its
 *           id machine:boot:session:seq (the producer's session, and the
 *           queue's id above the item's place in the queue) in the header
 *           Xichan-Id, waits for JetStream's acknowledgements, publishes
 *           again one by one and in order whatever was not acknowledged,
 *           and commits each lease only when its item is stored.  A bridge
 *           killed in between leaves the items held by a dead session, and
 *           the daemon puts them back at the head in order; the next bridge
 *           publishes them again under the same ids.  A publish whose
 *           acknowledgement was lost, and one published again after a
 *           bridge died, are stored twice: the consuming side drops the
 *           copy that comes to the machine that has the first (the id
 *           table), and a copy that goes to another machine is a
 *           duplicate.  A stream at max_msgs refuses a publish
 *           (10077): the item stays held and its publish is retried, so the
 *           local queue fills and local puts block, as on a full local
 *           queue.  Items put by the bridge itself (imported ones) are
 *           never leased out again.
 *   in      a thread waits (xichan_queue_wait_getters: woken by the getter,
 *           no polling of the queue) until local callers are blocked in get
 *           on the empty queue, then fetches as many messages as they want
 *           (one per get, up to 256 per get_many, plus --prefetch), with a
 *           pull request renewed every FETCH_MS while they wait; it puts
 *           each into the local queue, records its id in the recent-id
 *           table (ids.c), and acknowledges it.  A bridge killed before the
 *           acknowledgement leaves the message to be delivered again after
 *           the ack wait; if it comes back to this machine the table drops
 *           it, if it goes to another machine it is a duplicate (counted by
 *           the soak).
 *   So no item is lost while it moves, and an item is doubled only when a
 *   bridge or a NATS node fails with it in flight.  Order: a producer
 *   machine's items enter the stream in its put order (one publisher per
 *   queue; a batch that partly failed is published again in order, so only
 *   a failure can put an item behind a later one), and leave it in stream
 *   order; a redelivered message comes after newer ones.
 *
 * WHY NOT Nats-Msg-Id.  JetStream's own de-duplication (the Nats-Msg-Id
 * header) loses stored messages in nats-server 2.9.10 when nodes restart:
 * a node rebuilds its duplicate table from the messages it still stores,
 * and a work-queue stream has removed the acknowledged ones, so a node that
 * restarted stores a publish that the leader refused as a duplicate.  Each
 * node numbers stored messages as the leader's proposal minus the publishes
 * it refused (nats-server's "clfs"), so its sequence numbers drift from the
 * leader's, and when it becomes leader the message the old leader
 * acknowledged at a drifted sequence is not there.  Traced in the chaos
 * soak: an item acknowledged at stream sequence S, and later a copy of the
 * item before it delivered as sequence S; the item itself never came (what
 * nats-server 2.9.21 fixed by resetting clfs on a leader change).  So the
 * bridge sends no Nats-Msg-Id, no publish is ever refused as a duplicate,
 * and copies are dropped by the consuming machines instead.
 *
 * A local getter that is already waiting also takes an item put locally
 * before the bridge leases it: a machine serves itself first.  An item the
 * bridge brought for a getter that gave up (timeout, Ctrl-C) stays in the
 * local queue for the next getter there.
 *
 * What does not span: channels; get_nowait and get(timeout=0) see only the
 * items already on this machine (a remote item comes only to a waiting
 * getter); qsize()/empty()/full() count this machine's items; a
 * SharedBuffer item and an item larger than the server's max payload are
 * refused by the bridge (moved to the local queue <name>.refused, with an
 * error in the log) -- documented in xichan-bridge(8).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "bridge.h"
#include "internal.h" /* the item's place in its queue (its ticket), for the message id */

#define WAIT_S 0.5          /* bounded waits: the stop flag is seen within this */
#define FETCH_MS 500
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 500
#define FMT_HEADER "Xichan-Fmt"
#define SLOT_HEADER "Xichan-Slot" /* the item's place in the publish window */
#define ID_HEADER "Xichan-Id"     /* machine:boot:session:seq (not Nats-Msg-Id: WHY above) */

/* The span's queue; reopen() replaces it when the queue was destroyed. */
static xichan_queue_id span_q(struct span *sp)
{
    return (xichan_queue_id){__atomic_load_n(&sp->q.id, __ATOMIC_RELAXED)};
}

/* nats.c's last error text, else the status's. */
static const char *nats_err(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t && t[0] ? t : natsStatus_GetText(s);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* XICHAN_BRIDGE_TRACE=1: one line per item that crosses, with its message
 * id, stream sequence and the printable bytes of its payload, so a lost
 * item can be followed from its put to JetStream and back out. */
static void trace_item(struct span *sp, const char *dir, const char *id, unsigned long long seq,
                       const char *what, const void *data, size_t len)
{
    char text[41];
    size_t n = 0;

    for (size_t i = 0; i < len && n < sizeof(text) - 1; i++) {
        unsigned char c = ((const unsigned char *)data)[i];
        if (c >= 0x21 && c < 0x7f)
            text[n++] = (char)c;
    }
    text[n] = '\0';
    bridge_log("trace: %s '%s' %s seq %llu %s %s", dir, sp->name, id ? id : "-", seq, what, text);
}

/* NATS stream names allow [A-Za-z0-9_-]; anything else is _XX (hex). */
static void escape(char *out, size_t cap, const char *name)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)name; *p && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-')
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "_%02X", *p);
    }
    out[n] = '\0';
}

static int stream_setup(struct bridge *br, struct span *sp)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[1] = {sp->subject};
    natsStatus s = NATS_ERR;

    jsStreamConfig_Init(&cfg);
    cfg.Name = sp->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_WorkQueuePolicy;
    cfg.MaxMsgs = sp->maxsize > 0 ? sp->maxsize : -1;
    cfg.Discard = js_DiscardNew;
    cfg.Storage = br->memory_storage ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = br->replicas;
    cfg.Duplicates = br->dup_window_ms * 1000000;
    /* A cluster that is still electing its leaders answers "not ready" or
     * not at all for a while: bounded retries. */
    for (int i = 0; i < 60 && !br->stop; i++) {
        s = js_AddStream(&si, br->js, &cfg, NULL, &jerr);
        if (s != NATS_OK && jerr == JSStreamNameExistErr)
            s = js_GetStreamInfo(&si, br->js, sp->stream, NULL, &jerr);
        if (s == NATS_OK)
            break;
        sleep_ms(500);
    }
    if (s != NATS_OK) {
        bridge_error(br, "queue '%s': stream %s: %s (JetStream error %d)", sp->name, sp->stream,
                     nats_err(s),
                     (int)jerr);
        return -1;
    }
    /* The stream that exists decides: another machine may have made it. */
    sp->maxsize = si->Config->MaxMsgs;
    jsStreamInfo_Destroy(si);
    return 0;
}

#define DURABLE "xichan"

static int consumer_setup(struct bridge *br, struct span *sp)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s = NATS_ERR;

    /* Made explicitly (a consumer made by a subscribe call would go with
     * that subscription), shared by every bridge of the queue; a second
     * bridge's add finds it there, and binds to it as it is. */
    jsConsumerConfig_Init(&cc);
    cc.Durable = DURABLE;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = br->ack_wait_ms * 1000000;
    cc.MaxAckPending = -1;
    cc.MaxWaiting = 512;
    jsSubOptions_Init(&so);
    so.Stream = sp->stream;
    so.Consumer = DURABLE;
    so.ManualAck = true;
    /* As for the stream: a cluster electing leaders says "temporarily
     * unavailable" for a while; bounded retries. */
    for (int i = 0; i < 60 && !br->stop; i++) {
        s = js_AddConsumer(&ci, br->js, sp->stream, &cc, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        s = js_PullSubscribe(&sp->sub, br->js, sp->subject, DURABLE, NULL, &so, &jerr);
        if (s == NATS_OK)
            return 0;
        sleep_ms(500);
    }
    bridge_error(br, "queue '%s': consumer on %s: %s (JetStream error %d)", sp->name, sp->stream,
                 nats_err(s),
                 (int)jerr);
    return -1;
}

static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure);

/* Open, or create: an unbounded queue that the namespace keeps, with the
 * defaults of Python's queues.create() (items pickled when needed). */
static int open_queue(struct bridge *br, const char *name, xichan_queue_id *q)
{
    xichan_queue_opts qo = {0};
    int err = xichan_queue_open(br->cl, name, q);

    if (err == XICHAN_ENOTFOUND) {
        qo.name = name;
        qo.fmt = XICHAN_FMT_PICKLE;
        err = xichan_queue_create(br->cl, &qo, q);
        if (err == XICHAN_EEXIST)
            err = xichan_queue_open(br->cl, name, q);
    }
    return err;
}

/* The queue was destroyed under the bridge (xichanctl destroy): the name
 * now means a new queue, made again if nobody did; the stream stays. */
static void reopen(struct span *sp)
{
    xichan_queue_id q;
    int err = open_queue(sp->br, sp->name, &q);

    if (err) {
        bridge_error(sp->br, "queue '%s': destroyed, and cannot be made again: %s", sp->name,
                     xichan_strerror(err));
        sleep_ms(BACKOFF_MAX_MS);
        return;
    }
    if (q.id != sp->q.id)
        bridge_log("queue '%s' was destroyed; spanning its new queue (id %llu)", sp->name,
                   (unsigned long long)q.id);
    __atomic_store_n(&sp->q.id, q.id, __ATOMIC_RELAXED); /* both threads read it (span_q) */
}

int span_setup(struct bridge *br, struct span *sp, const char *name)
{
    jsOptions jo;
    natsStatus s;
    char esc[80];
    int err;

    sp->br = br;
    if (strlen(name) >= sizeof(sp->name) || !name[0]) {
        bridge_error(br, "--span '%s': a queue name is 1 to 63 bytes", name);
        return -1;
    }
    strcpy(sp->name, name);
    escape(esc, sizeof(esc), name);
    snprintf(sp->stream, sizeof(sp->stream), "XQ_%s", esc);
    snprintf(sp->subject, sizeof(sp->subject), "xichan.q.%s", esc);
    err = open_queue(br, name, &sp->q);
    if (err == 0)
        err = xichan_queue_defaults(br->cl, sp->q, &sp->maxsize, NULL, NULL);
    if (err) {
        bridge_error(br, "queue '%s': %s", name, xichan_strerror(err));
        return -1;
    }
    if (stream_setup(br, sp) || consumer_setup(br, sp))
        return -1;
    /* A bounded stream gets a window no larger than its bound, which keeps
     * the overshoot of maxsize at one window (xichan-bridge(8)). */
    sp->window = br->window;
    if (sp->maxsize > 0 && sp->maxsize < sp->window)
        sp->window = (int)sp->maxsize;
    if (!(sp->win = calloc((size_t)sp->window, sizeof(*sp->win))) ||
        !(sp->win_id = calloc((size_t)sp->window, sizeof(*sp->win_id))) ||
        !(sp->win_state = calloc((size_t)sp->window, sizeof(*sp->win_state))) ||
        !(sp->win_seq = calloc((size_t)sp->window, sizeof(*sp->win_seq)))) {
        bridge_error(br, "out of memory");
        return -1;
    }
    pthread_mutex_init(&sp->win_lock, NULL);
    jsOptions_Init(&jo);
    jo.Wait = br->pub_wait_ms;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = sp;
    jo.PublishAsync.MaxPending = sp->window;
    if ((s = natsConnection_JetStream(&sp->js, br->nc, &jo)) != NATS_OK) {
        bridge_error(br, "queue '%s': JetStream context: %s", name, nats_err(s));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- out */

/* An item that cannot cross goes to <name>.refused on this machine. */
static void refuse(struct span *sp, xichan_item *it, const char *why)
{
    struct bridge *br = sp->br;
    char rname[80];
    xichan_queue_id rq;
    xichan_queue_opts qo = {0};
    int err;

    snprintf(rname, sizeof(rname), "%s.refused", sp->name);
    err = xichan_queue_open(br->cl, rname, &rq);
    if (err == XICHAN_ENOTFOUND) {
        qo.name = rname;
        err = xichan_queue_create(br->cl, &qo, &rq);
        if (err == XICHAN_EEXIST)
            err = xichan_queue_open(br->cl, rname, &rq);
    }
    if (err == 0)
        err = xichan_queue_put(br->cl, rq, it->fmt, it->data, it->len, 0, xichan_deadline(5.0));
    if (err) {
        /* Nowhere to keep it: back into the queue, and the error says why. */
        bridge_error(br, "queue '%s': an item cannot span (%s) and cannot be set aside: %s",
                     sp->name, why, xichan_strerror(err));
        (void)xichan_queue_lease_abort(it);
        sleep_ms(BACKOFF_MAX_MS);
        return;
    }
    bridge_error(br, "queue '%s': item of producer session %u refused (%s); kept in queue '%s'",
                 sp->name, it->producer, why, rname);
    atomic_fetch_add(&sp->refused, 1);
    (void)xichan_queue_lease_commit(it);
}

/*
 * machine:boot:session:seq.  seq is the queue's id (never reused in a
 * namespace) above the item's ticket (its place in the queue, kept when a
 * lease gives it back), so a copy published again after a crash has the
 * same id, and no two items of one segment ("boot") ever share one.
 */
static void msg_id(struct span *sp, const xichan_item *it, char *buf, size_t cap)
{
    struct xichan_blk *b = xichan__blk(sp->br->cl->shm, (uint32_t)it->blk_);
    uint64_t seq = span_q(sp).id << 32 | (b ? xichan__item(b)->ticket : 0);

    snprintf(buf, cap, "%s:%s:%u:%llu", sp->br->machine, sp->br->boot, it->producer,
             (unsigned long long)seq);
}

/* The message of a leased item: its payload, its format, its id (the
 * consuming side's recent-id table reads it), and for an asynchronous
 * publish its place in the window (slot, else NULL). */
static natsStatus new_msg(struct span *sp, const xichan_item *it, const char *id,
                          const char *slot, natsMsg **out)
{
    char fmt[12];
    natsStatus s = natsMsg_Create(out, sp->subject, NULL, it->data, (int)it->len);

    snprintf(fmt, sizeof(fmt), "%d", it->fmt);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, FMT_HEADER, fmt);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, ID_HEADER, id);
    if (s == NATS_OK && slot)
        s = natsMsgHeader_Set(*out, SLOT_HEADER, slot);
    if (s != NATS_OK) {
        natsMsg_Destroy(*out);
        *out = NULL;
    }
    return s;
}

/* Publishes one leased item until JetStream has it or the bridge stops.
 * 0: stored; -1: stopping, not stored. */
static int publish(struct span *sp, const xichan_item *it, const char *id, uint64_t *seq)
{
    struct bridge *br = sp->br;
    int64_t backoff = BACKOFF_MIN_MS;

    while (!br->stop) {
        jsPubOptions po;
        jsPubAck *ack = NULL;
        jsErrCode jerr = 0;
        natsMsg *m = NULL;
        natsStatus s;

        jsPubOptions_Init(&po);
        po.MaxWait = br->pub_wait_ms;
        s = new_msg(sp, it, id, NULL, &m);
        if (s == NATS_OK)
            s = js_PublishMsg(&ack, sp->js, m, &po, &jerr);
        natsMsg_Destroy(m);
        if (s == NATS_OK) {
            if (ack->Duplicate)
                atomic_fetch_add(&sp->dups_out, 1);
            if (seq)
                *seq = ack->Sequence | (ack->Duplicate ? 1ull << 63 : 0);
            jsPubAck_Destroy(ack);
            return 0;
        }
        if (jerr == JSStreamStoreFailedErr) {
            /* max_msgs reached (discard new): wait for room, keep the item. */
            atomic_fetch_add(&sp->full_waits, 1);
        } else {
            bridge_error(br, "queue '%s': publish: %s (JetStream error %d); retrying", sp->name,
                         nats_err(s),
                         (int)jerr);
        }
        sleep_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return -1;
}

/* The Python package's msgpack ext types for a queue or channel handle and
 * for a SharedBuffer (pyext/_xichan/xichan_py.h): ids of this machine. */
#define EXT_HANDLE 1
#define EXT_BUFFER 2

static int names_local(const msgpack_object *o, int depth)
{
    if (depth > 64)
        return 1; /* deeper than the codec writes: not ours to pass on */
    switch (o->type) {
    case MSGPACK_OBJECT_EXT:
        return o->via.ext.type == EXT_HANDLE || o->via.ext.type == EXT_BUFFER;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (names_local(&o->via.array.ptr[i], depth + 1))
                return 1;
        return 0;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (names_local(&o->via.map.ptr[i].key, depth + 1) ||
                names_local(&o->via.map.ptr[i].val, depth + 1))
                return 1;
        return 0;
    default:
        return 0;
    }
}

/* 1 if a msgpack item holds a handle or buffer that only means something here. */
static int msgpack_names_local(const xichan_item *it)
{
    msgpack_unpacked u;
    int r;

    msgpack_unpacked_init(&u);
    r = xichan_item_unpack(it, &u) == 0 ? names_local(&u.data, 0) : 0;
    msgpack_unpacked_destroy(&u);
    return r;
}

/* An item leased and not yet stored, and what JetStream said of it. */
enum { PUB_WAITING, PUB_STORED, PUB_FAILED };

/* The AckHandler of the span's JetStream context (nats.c's thread). */
static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct span *sp = closure;
    const char *slot = NULL;
    unsigned gen;
    int i;

    if (natsMsgHeader_Get(m, SLOT_HEADER, &slot) == NATS_OK && slot &&
        sscanf(slot, "%u.%d", &gen, &i) == 2 && i >= 0) {
        pthread_mutex_lock(&sp->win_lock);
        /* An answer for an earlier batch (one given up on, whose answer was
         * already on its way) must not mark the item in this slot now. */
        if (gen == sp->win_gen && i < sp->win_n) {
            sp->win_state[i] = pae ? PUB_FAILED : PUB_STORED;
            if (pa)
                sp->win_seq[i] = pa->Sequence | (pa->Duplicate ? 1ull << 63 : 0);
            if (pa && pa->Duplicate)
                atomic_fetch_add(&sp->dups_out, 1);
        }
        pthread_mutex_unlock(&sp->win_lock);
    }
    natsMsg_Destroy(m);
}

/* 0 if the item may cross; else it was handled (set aside or dropped). */
static int check_item(struct span *sp, xichan_item *it)
{
    struct bridge *br = sp->br;

    if (it->unbound) {
        /* Its producer (a subinterpreter, or a C client that unbound) ended
         * before the item left: the UNBOUND marker has no data and no
         * meaning on another machine. */
        bridge_error(br, "queue '%s': an UNBOUND item (producer session %u ended) is not "
                     "forwarded", sp->name, it->producer);
        atomic_fetch_add(&sp->unbound, 1);
        (void)xichan_queue_lease_commit(it);
        return -1;
    }
    if (it->fmt == XICHAN_FMT_BUFFER) {
        refuse(sp, it, "a SharedBuffer/buffer item is memory of this machine");
        return -1;
    }
    if ((int64_t)it->len + 512 > br->max_payload) {
        char why[96];
        snprintf(why, sizeof(why), "%zu bytes, over the server's max payload of %lld", it->len,
                 (long long)br->max_payload);
        refuse(sp, it, why);
        return -1;
    }
    if (it->fmt == XICHAN_FMT_MSGPACK && msgpack_names_local(it)) {
        refuse(sp, it, "it holds a queue, channel or SharedBuffer of this machine");
        return -1;
    }
    return 0;
}

/* Leases up to max items: waits for the first, takes the rest if there. */
static int lease_batch(struct span *sp, int max)
{
    struct bridge *br = sp->br;
    int n = 0;

    while (n < max && !br->stop) {
        xichan_item *it = &sp->win[n];
        int err = xichan_queue_lease(br->cl, span_q(sp), it,
                                     n ? XICHAN_NOWAIT : xichan_deadline(WAIT_S));

        if (err == XICHAN_EEMPTY || err == XICHAN_ETIMEDOUT || err == XICHAN_EINTR)
            break;
        if (err == XICHAN_EUNBOUND)
            continue; /* an UNBOUND_ERROR item: consumed with its error, as by a get */
        if (err == XICHAN_ENOTFOUND) {
            reopen(sp);
            break;
        }
        if (err) {
            bridge_error(br, "queue '%s': lease: %s", sp->name, xichan_strerror(err));
            sleep_ms(BACKOFF_MAX_MS);
            break;
        }
        if (check_item(sp, it))
            continue;
        msg_id(sp, it, sp->win_id[n], sizeof(sp->win_id[n]));
        n++;
    }
    return n;
}

/*
 * One batch: lease up to the window, publish all asynchronously, wait for
 * the acknowledgements, then publish again, one by one and in order, what
 * was not stored (same message ids: JetStream drops a copy it has).  Each
 * lease is committed once its item is stored, or given back at a stop.
 */
static void out_batch(struct span *sp)
{
    struct bridge *br = sp->br;
    int n = lease_batch(sp, sp->window), i;
    jsPubOptions po;
    natsStatus s;
    char slot[24];
    unsigned gen;

    if (!n)
        return;
    atomic_store(&sp->held, n);
    pthread_mutex_lock(&sp->win_lock);
    sp->win_n = n;
    sp->win_gen++;
    gen = sp->win_gen;
    for (i = 0; i < n; i++) {
        sp->win_state[i] = PUB_WAITING;
        sp->win_seq[i] = 0;
    }
    pthread_mutex_unlock(&sp->win_lock);
    for (i = 0; i < n && n > 1; i++) {
        natsMsg *m = NULL;

        jsPubOptions_Init(&po);
        snprintf(slot, sizeof(slot), "%u.%d", gen, i);
        s = new_msg(sp, &sp->win[i], sp->win_id[i], slot, &m);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(sp->js, &m, &po);
        natsMsg_Destroy(m); /* NULL once the library took it */
        if (s != NATS_OK)
            break; /* the rest go one by one below */
    }
    if (n > 1) {
        natsMsgList pending = {0};

        jsPubOptions_Init(&po);
        po.MaxWait = br->pub_wait_ms;
        if (js_PublishAsyncComplete(sp->js, &po) != NATS_OK &&
            js_PublishAsyncGetPendingList(&pending, sp->js) == NATS_OK)
            natsMsgList_Destroy(&pending); /* unanswered: published again below */
    }
    for (i = 0; i < n; i++) {
        int state;

        pthread_mutex_lock(&sp->win_lock);
        state = sp->win_state[i];
        pthread_mutex_unlock(&sp->win_lock);
        if (state != PUB_STORED && publish(sp, &sp->win[i], sp->win_id[i], &sp->win_seq[i]) != 0)
            break; /* stopping */
        if (br->trace)
            trace_item(sp, "out", sp->win_id[i], sp->win_seq[i] & ~(1ull << 63),
                       sp->win_seq[i] >> 63 ? "duplicate" : state == PUB_STORED ? "stored"
                                                                               : "stored-again",
                       sp->win[i].data, sp->win[i].len);
        (void)xichan_queue_lease_commit(&sp->win[i]);
        atomic_fetch_add(&sp->out, 1);
    }
    for (; i < n; i++) /* a stop: the rest go back, in order */
        (void)xichan_queue_lease_abort(&sp->win[i]);
    pthread_mutex_lock(&sp->win_lock);
    sp->win_n = 0;
    pthread_mutex_unlock(&sp->win_lock);
    atomic_store(&sp->held, 0);
}

static void *out_main(void *arg)
{
    struct span *sp = arg;

    while (!sp->br->stop)
        out_batch(sp);
    return NULL;
}

/* ----------------------------------------------------------------- in */

/* Puts one fetched message into the local queue and acknowledges it. */
static void import(struct span *sp, natsMsg *m)
{
    struct bridge *br = sp->br;
    const char *id = NULL, *fmts = NULL;
    int fmt = XICHAN_FMT_RAW, err, seen;
    natsStatus s;
    unsigned long long sseq = 0, ndeliv = 0;

    /* Nats-Msg-Id: what bridges before Xichan-Id sent. */
    if (natsMsgHeader_Get(m, ID_HEADER, &id) != NATS_OK || !id)
        (void)natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
    if (natsMsgHeader_Get(m, FMT_HEADER, &fmts) == NATS_OK && fmts)
        fmt = atoi(fmts);
    pthread_mutex_lock(&br->ids_lock);
    seen = id && ids_seen(br->ids, id);
    pthread_mutex_unlock(&br->ids_lock);
    if (br->trace) {
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
            sseq = md->Sequence.Stream;
            ndeliv = md->NumDelivered;
            jsMsgMetaData_Destroy(md);
        }
    }
    if (seen) {
        if (br->trace)
            trace_item(sp, "in", id, sseq, ndeliv > 1 ? "seen-redelivered" : "seen",
                       natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        atomic_fetch_add(&sp->dups_in, 1);
        natsMsg_Ack(m, NULL);
        return;
    }
    atomic_fetch_add(&sp->pending_acks, 1);
    err = xichan_queue_put(br->cl, span_q(sp), fmt, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                           0, xichan_deadline(WAIT_S));
    if (err) {
        /* Not put: JetStream delivers it again (to this machine or another). */
        bridge_error(br, "queue '%s': local put of a remote item: %s; left to JetStream",
                     sp->name, xichan_strerror(err));
        if (br->trace)
            trace_item(sp, "in", id, sseq, "nak", natsMsg_GetData(m),
                       (size_t)natsMsg_GetDataLength(m));
        natsMsg_Nak(m, NULL);
        atomic_fetch_sub(&sp->pending_acks, 1);
        return;
    }
    if (id) {
        pthread_mutex_lock(&br->ids_lock);
        ids_add(br->ids, id);
        pthread_mutex_unlock(&br->ids_lock);
    }
    s = natsMsg_Ack(m, NULL);
    if (br->trace) {
        char what[48];
        snprintf(what, sizeof(what), "put%s%s%s", ndeliv > 1 ? "-redelivered" : "",
                 s == NATS_OK ? "" : " ack-failed:", s == NATS_OK ? "" : natsStatus_GetText(s));
        trace_item(sp, "in", id, sseq, what, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    }
    atomic_fetch_sub(&sp->pending_acks, 1);
    atomic_fetch_add(&sp->in, 1);
}

static void *in_main(void *arg)
{
    struct span *sp = arg;
    struct bridge *br = sp->br;

    while (!br->stop) {
        natsMsgList list = {0};
        natsStatus s;
        int n = xichan_queue_wait_getters(br->cl, span_q(sp), xichan_deadline(WAIT_S));

        if (n == XICHAN_ENOTFOUND) {
            reopen(sp);
            continue;
        }
        if (n <= 0) {
            if (n != XICHAN_ETIMEDOUT && n != XICHAN_EINTR) {
                bridge_error(br, "queue '%s': waiting for getters: %s", sp->name,
                             xichan_strerror(n));
                sleep_ms(BACKOFF_MAX_MS);
            }
            continue;
        }
        /* One per waiting getter, plus what --prefetch allows ahead. */
        n += br->prefetch;
        s = natsSubscription_Fetch(&list, sp->sub, n > 256 ? 256 : n, FETCH_MS, NULL);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            bridge_error(br, "queue '%s': fetch: %s", sp->name,
                         nats_err(s));
            sleep_ms(BACKOFF_MIN_MS * 10);
            continue;
        }
        for (int i = 0; i < list.Count; i++)
            import(sp, list.Msgs[i]);
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

int span_start(struct span *sp)
{
    if (pthread_create(&sp->out_thread, NULL, out_main, sp))
        return -1;
    sp->threads = 1;
    if (pthread_create(&sp->in_thread, NULL, in_main, sp))
        return -1;
    sp->threads = 2;
    return 0;
}

void span_join(struct span *sp)
{
    if (sp->threads > 0)
        pthread_join(sp->out_thread, NULL);
    if (sp->threads > 1)
        pthread_join(sp->in_thread, NULL);
    sp->threads = 0;
    if (sp->sub) {
        natsSubscription_Destroy(sp->sub); /* no unsubscribe: the durable stays for the others */
        sp->sub = NULL;
    }
    if (sp->js) {
        jsCtx_Destroy(sp->js);
        sp->js = NULL;
    }
    free(sp->win);
    free(sp->win_id);
    free(sp->win_state);
    free(sp->win_seq);
    sp->win_seq = NULL;
    sp->win = NULL;
    sp->win_id = NULL;
    sp->win_state = NULL;
}
