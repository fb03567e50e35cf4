/*
 * fuzz_segment.c -- libFuzzer target: a segment image is untrusted input.
 *
 * xichan(7) TRUST MODEL: the daemon "treats every byte of the segment as untrusted input
 * (bounds-checked offsets, capped walks): a corrupt segment may make an
 * operation fail, never the daemon crash".  This target checks that promise
 * for everything that reads a segment it did not write itself.
 *
 * Once per process a small valid segment is built (a real xichan__shm_create,
 * unlinked at once) and populated through the API: four sessions, two queues
 * (REPLACE and REMOVE), a channel and a shared buffer, items of each unbound
 * op, a buffer item, a leased and a reserved block of a session, free holes
 * in the heap, and a wait set of session B watching both queues and the
 * channel (registrations chained from those objects).  Its bytes are kept as the template.  Then, per input:
 *
 *   1. copy the template and overwrite one region with the input's data:
 *
 *        byte 0      region: 0 header, 1 sessions, 2 objects, 3 bindings,
 *                    4..6 heap, 7 the wait-set tables (low 3 bits)
 *        byte 1      what runs (MODE_* bits below)
 *        byte 2      locks whose holder "died": bit 0 table_lock, bit 1
 *                    heap_lock, bits 2..7 the locks of objects 0..5
 *        bytes 3..6  offset into the region (little-endian, modulo its size)
 *        rest        the bytes written there (cut at the region's end)
 *
 *   2. the pthread_mutex_t words of every lock are put back as the template
 *      had them: a scribbled lock word is indistinguishable from a lock some
 *      live process holds, which the lock protocol answers with deadlines,
 *      not with parsing.  A lock selected by byte 2 gets the word the kernel
 *      leaves when a holder dies (FUTEX_OWNER_DIED), so the next locker runs
 *      the real repair path (lock.c) on the corrupt data;
 *   3. the image goes into a fresh POSIX shm object, which xichan__shm_open
 *      maps and validates (shm.c), and which is unlinked at once;
 *   4. in the order MODE_REPAIR_FIRST picks, either what a daemon adopting
 *      the segment does (session cleanup of every session whose process is
 *      gone: here, all of them), then the repairs; or the repairs first
 *      (xichan__heap_check, xichan__heap_repair, xichan__table_repair,
 *      xichan__fifo_repair of each live object under its lock), then the
 *      cleanups;
 *   5. reads through an in-process client made as tests/unit/unit.h's
 *      ut_client does: xichan_list, xichan_info of each object,
 *      xichan_stats_get, xichan_obj_sessions, xichan_chan_info_get,
 *      xichan_buf_map; with MODE_DATA, also a put and a get on each queue, a
 *      send_nowait and recv on each channel, and (MODE_DESTROY) destroy;
 *      with MODE_DATA_EARLY the same before step 4, on the raw image.
 *
 * Oracles besides ASan/UBSan and libFuzzer's timeout: a heap repair that
 * succeeded is followed by a heap check that passes; no lock is left held by
 * this thread at the end.
 *
 * Minimized inputs that once crashed it live in tests/fuzz/repro/ (`make
 * fuzz-repro` replays them and fails if any still crashes): segment-bins
 * (a scribbled free-list head), segment-bins-clz0 (a free neighbour of size
 * 0 reaching __builtin_clz(0)), segment-interior (a free-list link into a
 * forged block inside another block) and segment-tail (a fifo.tail outside
 * the heap); tests/integ/corrupt_*.c cover the same ground as plain tests.
 *
 * Single-threaded and no other process: every lock taken with
 * XICHAN_FOREVER is free or owner-dead, so nothing legitimate can block.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

extern pid_t xichan__pid_cache;

enum {
    MODE_REPAIR_FIRST = 1u << 0, /* repairs, then cleanups (else the daemon's adopt order) */
    MODE_DATA = 1u << 1,         /* put/get/send/recv on each object */
    MODE_DESTROY = 1u << 2,      /* destroy each queue and channel at the end */
    MODE_NO_CLEANUP = 1u << 3,   /* skip session cleanups */
    MODE_DATA_EARLY = 1u << 4,   /* data operations first, on the image as it is */
};

#define FUTEX_OWNER_DIED_ 0x40000000
#define FUTEX_TID_MASK_ 0x3fffffff

static uint8_t *tmpl;             /* the valid segment's bytes */
static size_t tmpl_size;
static struct xichan_shm_hdr tmpl_hdr;
static char seg_name[64];
static pid_t my_tid;

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "fuzz_segment: " __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ----------------------------------------------------------- template */

static xichan_client *mkclient(struct xichan_shm *shm)
{
    xichan_client *cl = calloc(1, sizeof(*cl));

    if (!cl || xichan__session_new(shm, getpid(), getuid(), "fuzz", &cl->slot, &cl->sid))
        DIE("session_new for the template failed");
    cl->shm = shm;
    cl->fd = -1;
    cl->pid = getpid();
    return cl;
}

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ < 0)                                                                               \
            DIE("template: %s: %s", #expr, xichan_err_name(rc_));                                  \
    } while (0)

static void build_template(void)
{
    struct xichan_shm_geometry g = {8192 + 64 * 1024, 4, 8, 16};
    struct xichan_shm *shm;
    xichan_client *a, *b, *c;
    xichan_queue_id q1, q2, q3;
    xichan_chan_id ch;
    xichan_buf_id buf;
    xichan_waitset *ws;
    xichan_item it;
    uint32_t off;
    char name[64];
    void *p;
    size_t n;

    snprintf(name, sizeof(name), "/xichan-fuzzt-%d", (int)getpid());
    if (xichan__shm_create(name, &g, &shm))
        DIE("cannot create the template segment");
    xichan__shm_unlink(name);
    a = mkclient(shm);
    b = mkclient(shm);
    c = mkclient(shm); /* the fourth slot stays free for the fuzzing client */

    OK(xichan_queue_create(a, &(xichan_queue_opts){.name = "q1"}, &q1));
    OK(xichan_queue_create(a, &(xichan_queue_opts){.maxsize = 4, .unboundop = XICHAN_UNBOUND_REMOVE}, &q2));
    OK(xichan_queue_create(a, &(xichan_queue_opts){.unboundop = XICHAN_UNBOUND_ERROR}, &q3));
    OK(xichan_chan_create(a, NULL, &ch));
    OK(xichan_buf_create(a, 200, &buf));
    OK(xichan_queue_bind(b, q1));
    OK(xichan_queue_bind(b, q2));
    OK(xichan_chan_bind(b, ch));
    OK(xichan_buf_bind(c, buf));

    /* A hole at the start of the heap: put three, take the first. */
    OK(xichan_queue_put(a, q3, 0, "hole-1", 6, 0, XICHAN_NOWAIT));
    OK(xichan_queue_put(b, q3, 0, "kept-2-by-b", 11, 0, XICHAN_NOWAIT));
    OK(xichan_queue_put(a, q3, 0, "kept-3", 6, 0, XICHAN_NOWAIT));
    OK(xichan_queue_get(a, q3, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);

    OK(xichan_queue_put(a, q1, 0, "a1", 2, 0, XICHAN_NOWAIT));
    OK(xichan_queue_put(b, q1, 1, "b-replace", 9, XICHAN_UNBOUND_REPLACE, XICHAN_NOWAIT));
    OK(xichan_queue_put(b, q1, 2, "b-error", 7, XICHAN_UNBOUND_ERROR, XICHAN_NOWAIT));
    OK(xichan_queue_put(b, q1, 0, "b-remove", 8, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    OK(xichan_queue_put(c, q1, 0, "c1", 2, 0, XICHAN_NOWAIT));
    OK(xichan_queue_put(b, q2, 0, "b-q2-1", 6, 0, XICHAN_NOWAIT));
    OK(xichan_queue_put(b, q2, 0, "b-q2-2", 6, 0, XICHAN_NOWAIT));
    OK(xichan_chan_send_nowait(b, ch, 0, "b-ch-1", 6, 0));
    OK(xichan_chan_send_nowait(b, ch, 0, "b-ch-2", 6, XICHAN_UNBOUND_REMOVE));
    OK(xichan_chan_recv(c, ch, &it, XICHAN_NOWAIT)); /* C associates the recv end */
    xichan_item_release(&it);
    OK(xichan_chan_send_nowait(a, ch, 0, "a-ch", 4, 0));
    {
        int64_t shape[1] = {8};
        xichan_bufdesc d = {.mode = XICHAN_BUF_SHARED, .format = "h", .itemsize = 2, .ndim = 1,
                            .shape = shape, .nbytes = 16, .buf = buf, .offset = 8};
        OK(xichan_queue_put_buffer(a, q1, &d, 0, XICHAN_NOWAIT));
    }
    OK(xichan_buf_map(a, buf, &p, &n));
    memset(p, 0x5a, n);
    /* B's wait set watches q1, q2 and ch (destroyed once the template is
     * copied, so only its process-local memory goes). */
    {
        OK(xichan_waitset_create(b, &ws));
        if (xichan_waitset_add_queue(ws, q1, XICHAN_EV_READABLE, 1) < 0 ||
            xichan_waitset_add_queue(ws, q2, XICHAN_EV_WRITABLE, 2) < 0 ||
            xichan_waitset_add_chan(ws, ch, XICHAN_EV_READABLE, 3) < 0)
            DIE("template: waitset add failed");
    }
    /* B holds a leased item (taken, not released) and a reserved block. */
    OK(xichan_queue_get(b, q2, &it, XICHAN_NOWAIT));
    OK(xichan__heap_alloc(shm, b->sid, 40, &off));

    tmpl_size = shm->size;
    tmpl = malloc(tmpl_size);
    if (!tmpl)
        DIE("out of memory");
    memcpy(tmpl, shm->base, tmpl_size);
    memcpy(&tmpl_hdr, shm->hdr, sizeof(tmpl_hdr));
    /* The template's sessions never end: its mapping just goes. */
    xichan_waitset_destroy(ws);
    free(a);
    free(b);
    free(c);
    xichan__shm_unmap(shm);
}

/* ------------------------------------------------------------- image */

struct region {
    uint64_t off, len;
};

static struct region region_of(unsigned r)
{
    const struct xichan_shm_hdr *h = &tmpl_hdr;

    switch (r) {
    case 0: return (struct region){0, sizeof(struct xichan_shm_hdr)};
    case 1: return (struct region){h->sessions_off, (uint64_t)h->nsessions * sizeof(struct xichan_session)};
    case 2: return (struct region){h->objects_off, (uint64_t)h->nobjects * sizeof(struct xichan_obj)};
    case 3: return (struct region){h->bindings_off, (uint64_t)h->nbindings * sizeof(struct xichan_binding)};
    case 7: /* wsets then wregs, between the bindings and the heap */
        return (struct region){h->bindings_off + (uint64_t)h->nbindings * sizeof(struct xichan_binding),
                               (uint64_t)h->nsessions * sizeof(struct xichan_wset) +
                                   (uint64_t)h->nobjects * sizeof(struct xichan_wreg) + 64};
    default: return (struct region){h->heap_off, h->heap_size};
    }
}

/* Offsets (in the image) of every lock's pthread_mutex_t: table, heap, objects. */
static size_t lock_offsets(uint64_t *offs, size_t cap)
{
    size_t n = 0;

    offs[n++] = offsetof(struct xichan_shm_hdr, table_lock) + offsetof(struct xichan_lock, mutex);
    offs[n++] = offsetof(struct xichan_shm_hdr, heap_lock) + offsetof(struct xichan_lock, mutex);
    for (uint32_t i = 0; i < tmpl_hdr.nobjects && n < cap; i++)
        offs[n++] = tmpl_hdr.objects_off + (uint64_t)i * sizeof(struct xichan_obj) +
                    offsetof(struct xichan_obj, lock) + offsetof(struct xichan_lock, mutex);
    return n;
}

/* Writes the image into a fresh shm object and maps it through xichan__shm_open. */
static int map_image(const uint8_t *img, struct xichan_shm **out)
{
    int fd, err;

    fd = shm_open(seg_name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        DIE("shm_open %s: %s", seg_name, strerror(errno));
    if (ftruncate(fd, (off_t)tmpl_size) < 0 || pwrite(fd, img, tmpl_size, 0) != (ssize_t)tmpl_size)
        DIE("writing the image: %s", strerror(errno));
    close(fd);
    err = xichan__shm_open(seg_name, out);
    shm_unlink(seg_name);
    return err;
}

/* -------------------------------------------------------------- steps */

static void cleanup_sessions(struct xichan_shm *shm, uint32_t skip_slot)
{
    for (uint32_t i = 0; i < shm->nsessions; i++) {
        uint32_t st = xa_load_acquire(&shm->sessions[i].state);

        if (i == skip_slot || (st != XICHAN_SESS_LIVE && !xichan__sess_ending(st)))
            continue;
        /* As xd_adopt and end_session do: mark, then clean (odd slots
         * unbind, even ones end as processes do). */
        (void)xichan__session_ending(shm, i, shm->sessions[i].sid,
                                     (i & 1) ? XICHAN_ENDED_UNBIND : XICHAN_ENDED_KEEP);
        (void)xichan__session_cleanup(shm, i, 0);
    }
}

static void repairs(struct xichan_shm *shm)
{
    struct xichan_heap_report r;
    int err;

    (void)xichan__heap_check(shm, &r);
    if (xichan__heap_lock(shm, 0, XICHAN_FOREVER) == 0) {
        err = xichan__heap_repair(shm, NULL);
        xichan__heap_unlock(shm);
        if (err == 0 && xichan__heap_check(shm, &r) == 0 && !r.ok)
            DIE("heap_repair succeeded but heap_check fails: %s", r.why);
    }
    if (xichan__table_lock(shm, 0, XICHAN_FOREVER) == 0) {
        (void)xichan__table_repair(shm, NULL);
        xichan__table_unlock(shm);
    }
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];
        struct xichan_objref ref = {o, i, xa_load_acquire(&o->gen)};

        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE || !xichan__obj_has_fifo(o))
            continue;
        if (xichan__obj_lock(shm, &ref, 0) == 0) {
            (void)xichan__fifo_repair(shm, o);
            xichan__obj_unlock(o);
        }
    }
}

static void reads(xichan_client *cl)
{
    struct xichan_shm *shm = cl->shm;
    xichan_obj_info infos[16], info;
    xichan_stats st;
    uint32_t sids[8];

    (void)xichan_list(cl, infos, sizeof(infos) / sizeof(infos[0]));
    (void)xichan_stats_get(cl, &st);
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];
        uint64_t id = o->id;
        int kind = o->kind;

        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE)
            continue;
        (void)xichan_info(cl, kind, id, &info);
        (void)xichan_obj_sessions(cl, kind, id, sids, sizeof(sids) / sizeof(sids[0]));
        if (kind == XICHAN_KIND_CHANNEL) {
            xichan_chan_info ci;
            (void)xichan_chan_info_get(cl, (xichan_chan_id){id}, &ci);
            (void)xichan_chan_sessions(cl, (xichan_chan_id){id}, XICHAN_END_RECV, sids, 8);
            (void)xichan_chan_count(cl, (xichan_chan_id){id});
        } else if (kind == XICHAN_KIND_QUEUE) {
            (void)xichan_queue_count(cl, (xichan_queue_id){id});
            (void)xichan_queue_full(cl, (xichan_queue_id){id});
        } else if (kind == XICHAN_KIND_BUFFER) {
            void *p;
            size_t n;
            if (xichan_buf_map(cl, (xichan_buf_id){id}, &p, &n) == 0 && n)
                ((volatile uint8_t *)p)[n - 1] ^= 0; /* the memory must be inside the segment */
        }
    }
}

static void consume(xichan_client *cl, xichan_item *it)
{
    int64_t shapebuf[XICHAN_BUF_MAXDIM];
    char fmtbuf[256];
    xichan_bufdesc d;
    void *ptr;

    if (it->data && it->len)
        (void)((volatile const uint8_t *)it->data)[it->len - 1]; /* inside the segment */
    if (it->fmt == XICHAN_FMT_BUFFER && !it->unbound &&
        xichan_item_buffer(cl, it, &d, fmtbuf, shapebuf, &ptr) == 0 && d.mode == XICHAN_BUF_SHARED)
        (void)xichan_buf_unbind(cl, d.buf);
    xichan_item_release(it);
}

static void data_ops(xichan_client *cl, unsigned mode)
{
    struct xichan_shm *shm = cl->shm;
    xichan_item it;

    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];
        uint64_t id = o->id;
        int kind = o->kind;

        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE)
            continue;
        if (kind == XICHAN_KIND_QUEUE) {
            xichan_queue_id q = {id};
            xichan_iov v[2] = {{"m1", 2, 0}, {"m2", 2, 0}};
            (void)xichan_queue_put(cl, q, 0, "fuzz", 4, 0, XICHAN_NOWAIT);
            (void)xichan_queue_put_many(cl, q, v, 2, 0, XICHAN_NOWAIT);
            for (int k = 0; k < 12; k++) {
                int err = xichan_queue_get(cl, q, &it, XICHAN_NOWAIT);
                if (err == 0)
                    consume(cl, &it);
                else if (err != XICHAN_EUNBOUND)
                    break;
            }
        } else if (kind == XICHAN_KIND_CHANNEL) {
            xichan_chan_id c = {id};
            (void)xichan_chan_send_nowait(cl, c, 0, "fuzz", 4, 0);
            (void)xichan_chan_send(cl, c, 0, "rdv", 3, 0, XICHAN_NOWAIT);
            for (int k = 0; k < 12; k++) {
                int err = xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT);
                if (err == 0)
                    consume(cl, &it);
                else if (err != XICHAN_EUNBOUND)
                    break;
            }
            (void)xichan_chan_close(cl, c, XICHAN_END_SEND);
        }
        if (mode & MODE_DESTROY) {
            if (kind == XICHAN_KIND_QUEUE)
                (void)xichan_queue_destroy(cl, (xichan_queue_id){id});
            else if (kind == XICHAN_KIND_CHANNEL)
                (void)xichan_chan_destroy(cl, (xichan_chan_id){id});
            else if (kind == XICHAN_KIND_BUFFER)
                (void)xichan_buf_unbind(cl, (xichan_buf_id){id});
        }
    }
}

/* No lock of the image may still be held by this thread. */
static void check_no_lock_held(struct xichan_shm *shm)
{
    uint64_t offs[64];
    size_t n = lock_offsets(offs, 64);

    for (size_t i = 0; i < n; i++) {
        const pthread_mutex_t *m = (const pthread_mutex_t *)(shm->base + offs[i]);
        if ((m->__data.__lock & FUTEX_TID_MASK_) == my_tid)
            DIE("lock %zu (image offset %llu) is still held after the run", i,
                (unsigned long long)offs[i]);
    }
}

/* ------------------------------------------------------------ libFuzzer */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    xichan__pid_cache = getpid();
    my_tid = (pid_t)syscall(SYS_gettid);
    snprintf(seg_name, sizeof(seg_name), "/xichan-fuzz-%d", (int)getpid());
    build_template();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *img;
    uint64_t offs[64], where;
    struct xichan_shm *shm;
    struct region reg;
    xichan_client *cl;
    unsigned mode, dead;
    size_t nlocks, len;
    int err;

    if (size < 7)
        return 0;
    if (!img && !(img = malloc(tmpl_size)))
        DIE("out of memory");
    if (xichan__pid_cache != getpid()) /* libFuzzer's fork mode */
        LLVMFuzzerInitialize(NULL, NULL);
    memcpy(img, tmpl, tmpl_size);
    reg = region_of(data[0] & 7u);
    mode = data[1];
    dead = data[2];
    where = (uint64_t)data[3] | (uint64_t)data[4] << 8 | (uint64_t)data[5] << 16 |
            (uint64_t)data[6] << 24;
    where %= reg.len;
    len = size - 7;
    if (len > reg.len - where)
        len = (size_t)(reg.len - where);
    memcpy(img + reg.off + where, data + 7, len);

    /* Locks: the template's words, or the one a dead holder leaves. */
    nlocks = lock_offsets(offs, 64);
    for (size_t i = 0; i < nlocks; i++) {
        pthread_mutex_t *m = (pthread_mutex_t *)(img + offs[i]);
        memcpy(m, tmpl + offs[i], sizeof(*m));
        if (i < 8 && (dead & (1u << i)))
            m->__data.__lock = FUTEX_OWNER_DIED_;
    }

    if ((err = map_image(img, &shm)) != 0)
        return 0; /* refused at validation: fine */

    cl = calloc(1, sizeof(*cl));
    if (!cl)
        DIE("out of memory");
    cl->shm = shm;
    cl->fd = -1;
    cl->pid = getpid();
    if (xichan__session_new(shm, getpid(), getuid(), "fuzz", &cl->slot, &cl->sid) != 0) {
        cl->slot = UINT32_MAX; /* table full: a session that is in no slot */
        cl->sid = XICHAN_SID_MAX;
    }

    if (mode & MODE_DATA_EARLY)
        data_ops(cl, mode & ~MODE_DESTROY);
    if (mode & MODE_REPAIR_FIRST)
        repairs(shm);
    if (!(mode & MODE_NO_CLEANUP))
        cleanup_sessions(shm, cl->slot);
    if (!(mode & MODE_REPAIR_FIRST))
        repairs(shm);
    reads(cl);
    if (mode & MODE_DATA)
        data_ops(cl, mode);
    /* The fuzzing client ends too, as at process death. */
    if (cl->slot != UINT32_MAX) {
        (void)xichan__session_ending(shm, cl->slot, cl->sid, XICHAN_ENDED_KEEP);
        (void)xichan__session_cleanup(shm, cl->slot, 0);
    }
    check_no_lock_held(shm);
    free(cl);
    xichan__shm_unmap(shm);
    return 0;
}
