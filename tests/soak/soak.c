/*
 * soak.c -- many producers and consumers on several queues and channels
 * while a killer SIGKILLs random clients, and the daemon, at random times;
 * then a drain and an exact account of every item.
 *
 *   soak [--seconds S] [--kills N] [--interval-ms MS] [--daemon-every N]
 *        [--stops N [--stop-ms MS]]
 *        [--producers P] [--consumers C] [--rate ITEMS_PER_S] [--size BYTES]
 *        [--python PY [--py-producers N] [--py-consumers N] [--py-worker FILE]]
 *        [--min-kills N] [--min-items N] [--seed N] [--json FILE] [-v]
 *
 * The run ends after S seconds (default 20) or N kills (0: no limit),
 * whichever comes first.  Output: one summary line,
 *     soak: kills=N items=N lost=N duplicated=N hangs=N unbound=N excused=N
 *           bad_excuses=N planted=N
 * (one line), then one JSON line with every counter (also written to FILE
 * with --json).  Exit status 0 only if every committed item was delivered
 * exactly once (see the verdict), nothing was invented or corrupted,
 * nothing hung, no worker met an unexpected error, the heap is back to
 * empty at the end, and the run reached its floors: at least --min-kills
 * kills (default: half of what S and MS allow, or of N) and --min-items
 * committed items (default: a twentieth of P * rate * the seconds the run
 * should last: S, or less if N kills end it first).  scripts/soak
 * wraps it; `make soak-smoke` runs a short one (mk/soak.mk).
 *
 * XICHAN_SOAK_PLANT_LOSS=N in the environment makes C consumers drop N
 * committed items they took, unrecorded and with no excuse: the run must
 * then fail with lost >= N (`make soak-plant` checks it does).
 *
 * Setup.  A daemon (tests/integ/harness.c starts it, with --log-level warn)
 * and five objects created by this process, which keeps them bound for the
 * whole run:
 *   q0  unbounded queue, unbound op REPLACE  (put_many / get_many too)
 *   q1  queue of maxsize 32, REPLACE         (putters wait for room)
 *   q2  unbounded queue, REMOVE
 *   c0  channel, REPLACE                      (send_nowait)
 *   c1  channel, REPLACE                      (rendezvous send and send_nowait)
 * This process also associates itself with both ends of each channel, so
 * that the deaths of every worker at once never auto-close one.  The unbound
 * ops apply to a destroyed subinterpreter or an explicit unbind, neither of
 * which happens here: a producer process that dies or exits leaves its items
 * intact and deliverable, so no marker and no removal is expected.
 *
 * Workers, forked; each opens its own client (retrying while the daemon is
 * down) and beats a heartbeat in shared memory at every step.  Producer slot
 * i feeds target i % 5, consumer slot j drains target j % 5.  Each forked
 * worker is one "incarnation" with a number; a killed worker is respawned
 * at once as a new incarnation, and a producer also ends by itself (a clean
 * close) after SEQ_MAX items.  Items carry (incarnation, seq) and a payload
 * derived from them (16 B .. 256 KiB), checked by the consumer.  Consumers
 * sometimes pause between taking items and recording them, so that kills
 * find them holding items.
 *
 * Python workers.  With --python, the last N producer slots (default 3)
 * and N extra consumer slots (default 1) exec tests/soak/pyworker.py
 * instead, which speaks the same ledger protocol through the public Python
 * API: its producers put bytes with syncobj=True (a msgpack bin, unwrapped
 * by unwrap() below wherever a payload is checked), its consumers drain q2.
 *
 * The ledger (two memfds, so that exec'd Python workers map them too) has
 * one byte per (incarnation, seq) in each of four arrays:
 *   st    the producer's: 1 before the call (in flight), 2 once put/send
 *         returned success (committed), 3 if it failed (not queued);
 *   rx    items received with their data, counted by consumers;
 *   mk    UNBOUND markers received: a marker's payload is still in its
 *         block, so the consumer reads (incarnation, seq) from there
 *         (internal.h: the test links the static library);
 *   dead  the excuses: items a consumer had taken when it was killed, and
 *         not recorded, one by one.  A consumer is stopped (SIGSTOP) before
 *         the SIGKILL and what it holds is read while it is stopped:
 *           C       the blocks LEASED to its session, under heap_lock (a
 *                   block still linked in its fifo was not taken);
 *           Python  its get frees the block before it returns, so the
 *                   worker names the item itself ("holding", written
 *                   before it records it; pyworker.py).
 *         A victim stopped where that cannot be known -- a C consumer
 *         holding heap_lock, a Python one inside its get call -- runs on
 *         for a moment and is stopped again; one never caught at a known
 *         point is not killed (a deferred kill, which is no kill).  Only an
 *         item of the victim's own target, not recorded, committed or in
 *         flight, and no more than the victim asked for, is excused; any
 *         other is a bad excuse and fails the run.  No count of deaths
 *         excuses anything.
 *
 * Verdict, per item:
 *   committed: received or excused exactly once; never: lost; as a marker:
 *   unbound; more than once: duplicated.  In flight: at most once.  Failed
 *   or never attempted but received: "phantom".
 * Hangs: a worker whose heartbeat stops for HANG_S (every blocking call it
 * makes has a deadline of at most a second; opening a client waits at most
 * 10 s for the daemon's answer), a drain that does not finish, or a daemon
 * that does not get back to one session, no object and an empty heap
 * within 30 s at the end.
 *
 * Stops (--stops N): the first N ticks SIGSTOP a random worker instead of
 * killing it, for a random 1..MS ms (--stop-ms, default 100), then SIGCONT
 * it: a worker stopped inside a critical section holds its lock all that
 * time.  Every call of a C worker measures how long after its deadline it
 * returned (a nowait call's deadline is its start); calls during which the
 * worker itself was stopped are left out (slot.stopgen is odd while it is,
 * and changes at every stop).  Reported: max_overrun_ms and the calls over
 * 50 ms (lock waits are bounded: xichan.h, XICHAN_LOCK_GRACE_MS), with the
 * same exact account of every item.  Beside them, a control process that
 * only sleeps to 2 ms deadlines (clock_nanosleep, TIMER_ABSTIME) reports
 * how late the scheduler woke it (max_sleep_late_ms): on a loaded machine
 * a call's overrun up to that much is the scheduler's, not a wait of ours.  A call that meets a stopped holder
 * fails with XICHAN_ELOCKED and changed nothing -- except a rendezvous send,
 * whose item may stay queued: it stays "in flight" in the ledger.
 *
 * The end: producers stop and wait; consumers drain until every object is
 * empty; consumers exit, then producers close; this process drains what is
 * left, destroys the objects and closes; a fresh client then checks that
 * the heap is empty (xichan_stats_get heap_used == 0, and
 * xichan__heap_check).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "../integ/harness.h"

#define NTARGETS 5
#define INC_MAX 16384      /* incarnations in one run */
#define SEQ_MAX 8192       /* items per producer incarnation */
#define SID_MAP 1048576    /* session id -> incarnation */
#define SLOTS_MAX 64
#define HANG_S 20
#define BATCH 4            /* put_many / get_many on q0 */
#define MAGIC 0x4b414f53u  /* "SOAK" */

enum { ST_NONE, ST_INFLIGHT, ST_COMMITTED, ST_FAILED };
enum { ROLE_PRODUCER = 1, ROLE_CONSUMER = 2 };
enum { END_ALIVE, END_KILLED, END_CLOSED, END_FINAL };

/* A Python consumer's phase (struct slot.phase; pyworker.py). */
enum { PH_IDLE, PH_GETTING, PH_HOLDING };

struct slot {
    int role, target, python;   /* python: the slot runs tests/soak/pyworker.py */
    pid_t pid;
    uint32_t inc;
    _Atomic int64_t heartbeat;  /* CLOCK_MONOTONIC ns */
    _Atomic int in_get;         /* C consumer: items asked for and not recorded yet */
    _Atomic int stopped;        /* producer: stopped, waiting for release */
    _Atomic uint32_t stopgen;   /* --stops: odd while SIGSTOPped, bumped at each stop and cont */
    /* Python consumer: PH_GETTING around its get call; PH_HOLDING once
     * holding names the item the call returned, (inc << 32 | seq) + 1,
     * written before the item is recorded (0: none, or not intact). */
    _Atomic int phase;
    _Atomic uint64_t holding;
    /* A Python worker's own counters (it cannot do the shared atomic adds). */
    uint64_t py_received, py_corrupt, py_errors;
};

struct increc {
    uint32_t sid;
    uint8_t role, target, ended;
    uint32_t nseq;              /* producer: seqs attempted */
};

struct ledger {
    /* control, written by the orchestrator */
    uint64_t ids[NTARGETS];
    _Atomic int stop_producers, stop_consumers, release_producers;
    /* XICHAN_SOAK_PLANT_LOSS: committed items C consumers are still to drop */
    _Atomic int plant_left;
    /* counters */
    _Atomic uint64_t unbound_errors, corrupt, worker_errors, received, markers, planted;
    struct slot slots[SLOTS_MAX];
    /* --stops: the longest a C worker's call ran past its deadline, calls over 50 ms */
    _Atomic int64_t max_overrun_ns;
    _Atomic uint64_t overruns_50ms, timed_calls, locked_errors;
    _Atomic uint64_t overrun_hist[6];   /* <1, <10, <20, <50, <250, >=250 ms */
    _Atomic uint64_t over_50ms_elocked; /* of overruns_50ms, calls that failed with ELOCKED */
    _Atomic int64_t max_overrun_elocked_ns; /* the longest of the calls that failed with ELOCKED */
    _Atomic int64_t max_overrun_stopped_ns; /* ... of those whose holder was seen stopped */
    _Atomic int64_t max_sleep_late_ns;      /* the control sleeper: the scheduler's lateness */
    _Atomic uint64_t sleep_late_hist[6], sleeps; /* same buckets as overrun_hist */
    struct increc inc[INC_MAX];
    _Atomic uint32_t sid2inc[SID_MAP];
};

static struct ledger *L;
static uint8_t *st, *rx, *mk, *deadtk; /* [INC_MAX][SEQ_MAX] each */
static const int target_op[NTARGETS] = {XICHAN_UNBOUND_REPLACE, XICHAN_UNBOUND_REPLACE,
                                        XICHAN_UNBOUND_REMOVE, XICHAN_UNBOUND_REPLACE,
                                        XICHAN_UNBOUND_REPLACE};
static const char *const target_name[NTARGETS] = {"q0", "q1", "q2", "c0", "c1"};

static struct {
    double seconds;
    long kills, stops;
    int stop_ms;
    int interval_ms, daemon_every, producers, consumers, rate, verbose;
    const char *size, *json;
    unsigned seed;
    const char *python, *py_worker; /* --python: the interpreter for Python slots */
    int py_producers, py_consumers;
    long min_kills, min_items; /* floors; -1: derived from the run's length (parse) */
    long plant;                /* XICHAN_SOAK_PLANT_LOSS */
} opt = {.seconds = 20, .kills = 0, .stops = 0, .stop_ms = 100, .interval_ms = 100,
       .daemon_every = 20, .producers = 10, .consumers = 5, .rate = 1000, .verbose = 0,
       .size = "64M", .json = NULL, .seed = 0, .python = NULL,
       .py_worker = "tests/soak/pyworker.py", .py_producers = 3, .py_consumers = 1,
       .min_kills = -1, .min_items = -1, .plant = 0};

static int ledger_fd = -1, arrays_fd = -1; /* memfds behind L and st, for Python workers */

static int is_chan(int t)
{
    return t >= 3;
}

static uint64_t idx(uint32_t inc, uint32_t seq)
{
    return (uint64_t)inc * SEQ_MAX + seq;
}

static int64_t now_ns(void)
{
    return xichan_now_ns();
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};

    if (ns > 0)
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
}

/* xorshift, per process */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    if (!opt.verbose)
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------- payload */

struct payload_hdr {
    uint32_t magic, inc, seq, len;
    uint64_t sum;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static size_t pick_len(void)
{
    uint64_t r = rnd() % 1000;

    if (r < 900)
        return sizeof(struct payload_hdr) + rnd() % 240;
    if (r < 995)
        return 1024 + rnd() % (8 * 1024);
    return 32 * 1024 + rnd() % (224 * 1024);
}

static void fill(uint8_t *buf, size_t len, uint32_t inc, uint32_t seq)
{
    struct payload_hdr h = {MAGIC, inc, seq, (uint32_t)len, mix((uint64_t)inc << 32 | seq) ^ len};
    uint64_t x = h.sum;

    memcpy(buf, &h, sizeof(h));
    for (size_t i = sizeof(h); i < len; i++) {
        if ((i & 7) == 0)
            x = mix(x + i);
        buf[i] = (uint8_t)(x >> (8 * (i & 7)));
    }
}

/*
 * A Python producer puts its payload as bytes with syncobj=True: a msgpack
 * bin.  Finds the payload inside an item of format fmt; 0 if it has one.
 */
static int unwrap(int fmt, const uint8_t **data, size_t *len)
{
    const uint8_t *p = *data;
    size_t n = *len, hl, bl;

    if (fmt == XICHAN_FMT_RAW)
        return 0;
    if (fmt != XICHAN_FMT_MSGPACK || n < 2)
        return -1;
    switch (p[0]) {
    case 0xc4: hl = 2; bl = p[1]; break;
    case 0xc5: hl = 3; bl = n >= 3 ? (size_t)p[1] << 8 | p[2] : 0; break;
    case 0xc6: hl = 5; bl = n >= 5 ? (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4] : 0; break;
    default: return -1;
    }
    if (n < hl || n - hl != bl)
        return -1;
    *data = p + hl;
    *len = bl;
    return 0;
}

/* 0 and (inc, seq) if data is an intact payload. */
static int check(const uint8_t *data, size_t len, uint32_t *inc, uint32_t *seq)
{
    struct payload_hdr h;
    uint64_t x;

    if (len < sizeof(h))
        return -1;
    memcpy(&h, data, sizeof(h));
    if (h.magic != MAGIC || h.len != len || h.inc >= INC_MAX || h.seq >= SEQ_MAX ||
        h.sum != (mix((uint64_t)h.inc << 32 | h.seq) ^ len))
        return -1;
    x = h.sum;
    for (size_t i = sizeof(h); i < len; i++) {
        if ((i & 7) == 0)
            x = mix(x + i);
        if (data[i] != (uint8_t)(x >> (8 * (i & 7))))
            return -1;
    }
    *inc = h.inc;
    *seq = h.seq;
    return 0;
}

/* -------------------------------------------------------------- workers */

static struct slot *me;
static xichan_client *me_cl; /* the worker's client, for diagnostics */

static void beat(void)
{
    atomic_store(&me->heartbeat, now_ns());
}

/* The bucket of overrun_hist and sleep_late_hist: <1, <10, <20, <50, <250, >=250 ms. */
static int hist_bucket(int64_t ns)
{
    static const int64_t ms[] = {1, 10, 20, 50, 250};
    int i = 0;

    while (i < 5 && ns >= ms[i] * 1000000ll)
        i++;
    return i;
}

/* *max = the larger of *max and v, against other processes' stores. */
static void atomic_max(_Atomic int64_t *max, int64_t v)
{
    int64_t m = atomic_load(max);

    while (v > m && !atomic_compare_exchange_weak(max, &m, v))
        ;
}

/* --stops: a call starts (the worker's stop generation, to leave out
 * calls it was itself stopped in) ... */
static uint32_t call_begin(int64_t *start)
{
    *start = now_ns();
    return atomic_load(&me->stopgen);
}

/* ... and ends: how far past max(deadline, start) it returned. */
static void call_end(int64_t start, int64_t deadline, uint32_t gen, int err)
{
    int64_t over = now_ns() - (deadline > start ? deadline : start);

    if (err == XICHAN_ELOCKED)
        atomic_fetch_add(&L->locked_errors, 1);
    if ((gen & 1) || atomic_load(&me->stopgen) != gen)
        return; /* this worker was stopped meanwhile: its own time, not a wait */
    atomic_fetch_add(&L->timed_calls, 1);
    atomic_fetch_add(&L->overrun_hist[hist_bucket(over)], 1);
    if (over > 50 * 1000000ll) {
        atomic_fetch_add(&L->overruns_50ms, 1);
        if (err == XICHAN_ELOCKED && atomic_fetch_add(&L->over_50ms_elocked, 1) < 3)
            fprintf(stderr, "soak: a call %.1f ms past its deadline: %s (xichand: pid %u)\n",
                    over / 1e6, xichan_strerror(err), /* who held the lock, and how */
                    xa_load_relaxed(&me_cl->shm->hdr->daemon_pid));
    }
    atomic_max(&L->max_overrun_ns, over);
    if (err == XICHAN_ELOCKED)
        atomic_max(&L->max_overrun_elocked_ns, over);
    if (err == XICHAN_ELOCKED && strstr(xichan_strerror(err), "is stopped"))
        atomic_max(&L->max_overrun_stopped_ns, over);
}

/* --stops: the control.  Sleeps to 2 ms deadlines until the consumers stop,
 * recording how late it woke: what the scheduler alone adds to any wait. */
static pid_t start_sleeper(void)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    while (!atomic_load(&L->stop_consumers)) {
        struct timespec ts;
        int64_t target = now_ns() + 2000000, late;

        ts.tv_sec = target / 1000000000;
        ts.tv_nsec = target % 1000000000;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        late = now_ns() - target;
        atomic_fetch_add(&L->sleeps, 1);
        atomic_fetch_add(&L->sleep_late_hist[hist_bucket(late)], 1);
        atomic_max(&L->max_sleep_late_ns, late);
    }
    _exit(0);
}

static void fatal(const char *what, int err)
{
    fprintf(stderr, "soak: worker %d (incarnation %u, %s on %s): %s: %s (%s)\n", (int)getpid(),
            me->inc, me->role == ROLE_PRODUCER ? "producer" : "consumer", target_name[me->target],
            what, xichan_err_name(err), xichan_strerror(err));
    atomic_fetch_add(&L->worker_errors, 1);
    _exit(2);
}

static xichan_client *open_client(void)
{
    xichan_client *cl;
    int err;

    for (;;) {
        beat();
        err = xichan_client_open(&cl, NULL);
        if (err == 0)
            return cl;
        /* The daemon is being killed or restarted: try again. */
        if (err != XICHAN_ENODAEMON && err != XICHAN_EDAEMONLOST && err != XICHAN_EIO)
            fatal("xichan_client_open", err);
        sleep_ns(5 * 1000000);
    }
}

/* check() on the payload an item block holds, whatever its format. */
static int check_block(struct xichan_blk *b, uint32_t *inc, uint32_t *seq)
{
    const uint8_t *d = xichan__item_data(b);
    size_t n = xichan__item(b)->len;

    return unwrap(xichan__item(b)->fmt, &d, &n) == 0 ? check(d, n, inc, seq) : -1;
}

/* Records one received item (normal or marker); n of the consumer's in_get. */
static void record(xichan_client *cl, xichan_item *it)
{
    uint32_t inc, seq;

    if (it->unbound) {
        /* The marker's block still holds the producer's payload. */
        struct xichan_blk *b = xichan__blk(cl->shm, (uint32_t)it->blk_);
        if (!b || check_block(b, &inc, &seq) != 0) {
            atomic_fetch_add(&L->corrupt, 1);
            return;
        }
        __atomic_fetch_add(&mk[idx(inc, seq)], 1, __ATOMIC_RELAXED);
        atomic_fetch_add(&L->markers, 1);
        return;
    }
    {
        const uint8_t *d = it->data;
        size_t n = it->len;
        if (unwrap(it->fmt, &d, &n) != 0 || check(d, n, &inc, &seq) != 0) {
            atomic_fetch_add(&L->corrupt, 1);
            return;
        }
    }
    __atomic_fetch_add(&rx[idx(inc, seq)], 1, __ATOMIC_RELAXED);
    atomic_fetch_add(&L->received, 1);
}

static int tolerated_put_error(int err, int chan)
{
    return err == XICHAN_EFULL || err == XICHAN_ENOSPC || err == XICHAN_ELOCKED ||
           (chan && (err == XICHAN_ETIMEDOUT));
}

static void producer(xichan_client *cl)
{
    uint32_t inc = me->inc, seq = 0;
    int t = me->target;
    uint8_t *buf = malloc(256 * 1024 + 64);
    int64_t next = now_ns(), gap = 1000000000ll / (opt.rate > 0 ? opt.rate : 1);

    if (!buf)
        fatal("malloc", XICHAN_ENOMEM);
    while (seq < SEQ_MAX && !atomic_load(&L->stop_producers)) {
        int err;

        beat();
        if (t == 0 && rnd() % 4 == 0 && seq + BATCH <= SEQ_MAX) {
            /* A batch: all in flight, then the first n committed. */
            static uint8_t bufs[BATCH][1024];
            xichan_iov v[BATCH];
            int k = 1 + (int)(rnd() % BATCH), n;
            for (int i = 0; i < k; i++) {
                size_t len = sizeof(struct payload_hdr) + rnd() % 200;
                fill(bufs[i], len, inc, seq + (uint32_t)i);
                v[i] = (xichan_iov){bufs[i], len, XICHAN_FMT_RAW};
                st[idx(inc, seq + (uint32_t)i)] = ST_INFLIGHT;
            }
            L->inc[inc].nseq = seq + (uint32_t)k;
            {
                int64_t t0, dl = xichan_deadline(1.0);
                uint32_t g = call_begin(&t0);
                n = xichan_queue_put_many(cl, (xichan_queue_id){L->ids[t]}, v, (size_t)k, 0, dl);
                call_end(t0, dl, g, n);
            }
            if (n < 0 && !tolerated_put_error(n, 0))
                fatal("xichan_queue_put_many", n);
            for (int i = 0; i < k; i++)
                st[idx(inc, seq + (uint32_t)i)] = i < n ? ST_COMMITTED : ST_FAILED;
            seq += (uint32_t)k;
        } else {
            size_t len = pick_len();
            int rendezvous = is_chan(t) && t == 4 && (seq & 1);
            int64_t t0, dl;
            uint32_t g;
            fill(buf, len, inc, seq);
            st[idx(inc, seq)] = ST_INFLIGHT;
            L->inc[inc].nseq = seq + 1;
            dl = !is_chan(t) ? xichan_deadline(1.0) : rendezvous ? xichan_deadline(0.5) : 0;
            g = call_begin(&t0);
            if (!is_chan(t)) {
                err = xichan_queue_put(cl, (xichan_queue_id){L->ids[t]}, XICHAN_FMT_RAW, buf, len,
                                       0, dl);
            } else if (rendezvous) {
                err = xichan_chan_send(cl, (xichan_chan_id){L->ids[t]}, XICHAN_FMT_RAW, buf, len,
                                       0, dl);
            } else {
                err = xichan_chan_send_nowait(cl, (xichan_chan_id){L->ids[t]}, XICHAN_FMT_RAW, buf,
                                              len, 0);
                if (err > 0)
                    err = 0;
            }
            call_end(t0, dl, g, err);
            if (err && !tolerated_put_error(err, is_chan(t)))
                fatal(is_chan(t) ? "send" : "xichan_queue_put", err);
            /* A rendezvous send that could not relock may have left its item queued. */
            st[idx(inc, seq)] = !err ? ST_COMMITTED
                                : rendezvous && err == XICHAN_ELOCKED ? ST_INFLIGHT
                                                                      : ST_FAILED;
            seq++;
        }
        next += gap;
        if (next > now_ns())
            sleep_ns(next - now_ns());
        else
            next = now_ns();
    }
    free(buf);
    if (seq >= SEQ_MAX && !atomic_load(&L->stop_producers)) {
        L->inc[inc].ended = END_CLOSED;
        xichan_client_close(cl);
        _exit(0);
    }
    /* The end of the run: stay (so our items stay ours) until released. */
    atomic_store(&me->stopped, 1);
    while (!atomic_load(&L->release_producers)) {
        beat();
        sleep_ns(5 * 1000000);
    }
    L->inc[inc].ended = END_FINAL;
    xichan_client_close(cl);
    _exit(0);
}

/*
 * XICHAN_SOAK_PLANT_LOSS: takes one item with in_get left at 0 (so that
 * this consumer's death excuses nothing) and, if it is committed and the
 * plant is not used up, drops it unrecorded: a loss the verdict must see.
 * Anything else it takes is recorded as usual.  1 if it took an item.
 */
static int plant_one(xichan_client *cl)
{
    int t = me->target, err, left;
    xichan_item it;
    uint32_t inc, seq;
    const uint8_t *d;
    size_t n;

    err = is_chan(t) ? xichan_chan_recv(cl, (xichan_chan_id){L->ids[t]}, &it, xichan_deadline(0.2))
                     : xichan_queue_get(cl, (xichan_queue_id){L->ids[t]}, &it, xichan_deadline(0.2));
    if (err == XICHAN_EEMPTY || err == XICHAN_ELOCKED)
        return 0;
    if (err == XICHAN_EUNBOUND) {
        atomic_fetch_add(&L->unbound_errors, 1);
        return 0;
    }
    if (err)
        fatal("get/recv", err);
    d = it.data;
    n = it.len;
    left = atomic_load(&L->plant_left);
    if (!it.unbound && unwrap(it.fmt, &d, &n) == 0 && check(d, n, &inc, &seq) == 0 &&
        st[idx(inc, seq)] == ST_COMMITTED && left > 0 &&
        atomic_compare_exchange_strong(&L->plant_left, &left, left - 1))
        atomic_fetch_add(&L->planted, 1);
    else
        record(cl, &it);
    xichan_item_release(&it);
    return 1;
}

static void consumer(xichan_client *cl)
{
    int t = me->target;
    xichan_item items[BATCH];

    while (!atomic_load(&L->stop_consumers)) {
        int64_t t0, dl = xichan_deadline(0.2);
        uint32_t g;
        int n, err;

        beat();
        if (atomic_load(&L->plant_left) > 0) {
            n = plant_one(cl);
            goto pause;
        }
        g = call_begin(&t0);
        if (t == 0 && rnd() % 2 == 0) {
            atomic_store(&me->in_get, BATCH);
            n = xichan_queue_get_many(cl, (xichan_queue_id){L->ids[t]}, items, BATCH, dl);
        } else {
            atomic_store(&me->in_get, 1);
            err = is_chan(t) ? xichan_chan_recv(cl, (xichan_chan_id){L->ids[t]}, &items[0], dl)
                             : xichan_queue_get(cl, (xichan_queue_id){L->ids[t]}, &items[0], dl);
            n = err ? err : 1;
        }
        call_end(t0, dl, g, n < 0 ? n : 0);
        if (n == XICHAN_EUNBOUND) {
            atomic_fetch_add(&L->unbound_errors, 1);
        } else if (n < 0 && n != XICHAN_EEMPTY && n != XICHAN_ELOCKED) {
            fatal("get/recv", n);
        }
        /* Sometimes "work" on what it took before recording it, so that
         * kills find consumers holding items (and the excuses get used). */
        if (n > 0 && rnd() % 8 == 0)
            sleep_ns((int64_t)(rnd() % 5000000));
        for (int i = 0; i < n; i++)
            record(cl, &items[i]);
        atomic_store(&me->in_get, 0);
        if (n > 0)
            xichan_items_release(items, (size_t)n);
    pause:
        /* Now and then a pause, so that backlogs build up. */
        if (n > 0 && rnd() % 64 == 0)
            sleep_ns((int64_t)(rnd() % 60) * 1000000);
    }
    atomic_store(&me->in_get, 0);
    xichan_client_close(cl);
    _exit(0);
}

/* A Python slot: exec pyworker.py with the ledger's layout (see its top). */
static void exec_python(struct slot *s)
{
    char arg[1024];
    int t = s->target;

    snprintf(arg, sizeof(arg),
             "role=%s;kind=%s;target=%d;id=%llu;inc=%u;rate=%d;seed=%u;seq_max=%d;sid_map=%d;"
             "ctl_fd=%d;ctl_size=%zu;arr_fd=%d;arr=%zu;slot_off=%zu;hb=%zu;phase=%zu;holding=%zu;"
             "stopped=%zu;received=%zu;corrupt=%zu;errors=%zu;inc_sid=%zu;inc_ended=%zu;"
             "inc_nseq=%zu;sid2inc=%zu;stop_producers=%zu;stop_consumers=%zu;"
             "release_producers=%zu",
             s->role == ROLE_PRODUCER ? "producer" : "consumer", is_chan(t) ? "channel" : "queue",
             t, (unsigned long long)L->ids[t], s->inc, opt.rate, opt.seed, SEQ_MAX, SID_MAP,
             ledger_fd, sizeof(*L), arrays_fd, (size_t)INC_MAX * SEQ_MAX,
             (size_t)((char *)s - (char *)L), offsetof(struct slot, heartbeat),
             offsetof(struct slot, phase), offsetof(struct slot, holding),
             offsetof(struct slot, stopped),
             offsetof(struct slot, py_received), offsetof(struct slot, py_corrupt),
             offsetof(struct slot, py_errors),
             (size_t)((char *)&L->inc[s->inc].sid - (char *)L),
             (size_t)((char *)&L->inc[s->inc].ended - (char *)L),
             (size_t)((char *)&L->inc[s->inc].nseq - (char *)L), offsetof(struct ledger, sid2inc),
             offsetof(struct ledger, stop_producers), offsetof(struct ledger, stop_consumers),
             offsetof(struct ledger, release_producers));
    execl(opt.python, opt.python, opt.py_worker, arg, (char *)NULL);
    fprintf(stderr, "soak: exec %s %s: %s\n", opt.python, opt.py_worker, strerror(errno));
    s->py_errors++;
    _exit(2);
}

static void worker_main(struct slot *s)
{
    xichan_client *cl;
    uint32_t sid;

    me = s;
    rng_state = mix(opt.seed ^ ((uint64_t)s->inc << 20) ^ (uint64_t)getpid()) | 1;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (s->python)
        exec_python(s);
    cl = open_client();
    me_cl = cl;
    sid = xichan_client_session(cl);
    L->inc[s->inc].sid = sid;
    if (sid < SID_MAP)
        atomic_store(&L->sid2inc[sid], s->inc);
    if (s->role == ROLE_PRODUCER)
        producer(cl);
    else
        consumer(cl);
}

/* --------------------------------------------------------- orchestrator */

static xichan_client *boss;
static uint32_t next_inc;
static struct {
    long kills, daemon_kills, producer_kills, consumer_kills, py_consumer_kills, hangs, respawns;
    long dead_taken, bad_excuses, deferred, py_incarnations;
} cnt;
static int running_out; /* incarnations exhausted: end the run */

static void spawn(struct slot *s)
{
    pid_t pid;

    if (next_inc >= INC_MAX) {
        running_out = 1;
        s->pid = 0;
        return;
    }
    s->inc = next_inc++;
    L->inc[s->inc] = (struct increc){0, (uint8_t)s->role, (uint8_t)s->target, END_ALIVE, 0};
    atomic_store(&s->heartbeat, now_ns());
    atomic_store(&s->in_get, 0);
    atomic_store(&s->stopped, 0);
    atomic_store(&s->phase, PH_IDLE);
    atomic_store(&s->holding, 0);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("soak: fork");
        exit(1);
    }
    if (pid == 0)
        worker_main(s);
    s->pid = pid;
    cnt.py_incarnations += s->python;
}

/* Producers (the last py_producers of them Python), C consumers, then the
 * Python consumers, extra ones on q2. */
static int nslots(void)
{
    return opt.producers + opt.consumers + opt.py_consumers;
}

/*
 * 1 if block off is still linked in some fifo.  A pop leases the head and
 * then unlinks it; stopped between the two, the victim holds the object's
 * lock, the next locker's repair re-marks the block QUEUED and the item is
 * delivered again: it was not taken.
 */
static int still_linked(struct xichan_shm *shm, uint32_t off)
{
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];
        uint32_t steps = 0;

        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE || !xichan__obj_has_fifo(o))
            continue;
        for (uint32_t p = o->fifo.head; p && steps++ < shm->heap_units; ) {
            struct xichan_blk *b = xichan__blk(shm, p);
            if (p == off)
                return 1;
            if (!b)
                break;
            p = b->link;
        }
    }
    return 0;
}

/*
 * The excuse of one dead consumer: the item (inc, seq) it had taken and not
 * recorded.  Only an item of the victim's own target, not recorded by
 * anyone, can be excused, and no more than the victim asked for; anything
 * else the victim appears to hold is a bad excuse, which fails the run.
 */
static int excuse(struct slot *s, uint32_t inc, uint32_t seq, int *left)
{
    uint64_t k = idx(inc, seq);

    if (__atomic_load_n(&rx[k], __ATOMIC_RELAXED) || __atomic_load_n(&mk[k], __ATOMIC_RELAXED))
        return 0; /* recorded before the stop */
    if (inc >= next_inc || L->inc[inc].role != ROLE_PRODUCER || L->inc[inc].target != s->target ||
        st[k] < ST_INFLIGHT || st[k] > ST_COMMITTED || deadtk[k] || *left <= 0) {
        fprintf(stderr, "soak: BAD EXCUSE: consumer incarnation %u (%s) holds item %u/%u "
                        "(target %s, state %u) beyond its %d\n",
                s->inc, target_name[s->target], inc, seq,
                inc < next_inc ? target_name[L->inc[inc].target % NTARGETS] : "?", st[k],
                atomic_load(&s->in_get));
        cnt.bad_excuses++;
        return 0;
    }
    deadtk[k] = 1;
    cnt.dead_taken++;
    --*left;
    say("  excused: item %u/%u, taken by consumer incarnation %u\n", inc, seq, s->inc);
    return 1;
}

/*
 * A C consumer, stopped: the blocks LEASED to its session hold what it
 * took and has not recorded yet (a pop leases the head, then unlinks it: a
 * block still linked was not taken -- the repair queues it again).  -1 if
 * heap_lock cannot be had now (the victim may hold it): try again later.
 */
static int credit_c_consumer(struct slot *s)
{
    struct xichan_shm *shm = boss->shm;
    uint32_t sid = L->inc[s->inc].sid;
    int left = atomic_load(&s->in_get);

    if (!left || !sid)
        return 0;
    if (xichan__heap_lock(shm, xichan_client_session(boss), now_ns() + 20 * 1000000ll) != 0)
        return -1;
    for (uint32_t off = 1; off < shm->heap_units;) {
        struct xichan_blk *b = (struct xichan_blk *)(shm->heap + (uint64_t)off * XICHAN_UNIT);
        uint32_t w = xa_load_relaxed(&b->state), inc, seq;

        if (b->size < XICHAN_MIN_BLK_UNITS || b->size > shm->heap_units - off)
            break;
        if (xichan__blk_state(w) == XICHAN_BLK_LEASED && xichan__blk_owner(w) == sid &&
            xichan__item(b)->len <= ((uint64_t)b->size - 2) * XICHAN_UNIT &&
            check_block(b, &inc, &seq) == 0 && !still_linked(shm, off))
            excuse(s, inc, seq, &left);
        off += b->size;
    }
    xichan__heap_unlock(shm);
    return 0;
}

/*
 * A Python consumer, stopped: a Python get copies the item out and frees
 * its block before it returns, so only the worker can say what it took --
 * PH_HOLDING and holding, written before it records the item.  Stopped
 * inside its get call (PH_GETTING) it may have taken an item nobody can
 * name: -1, try again later.
 */
static int credit_py_consumer(struct slot *s)
{
    int left = 1;
    uint64_t h;

    switch (atomic_load(&s->phase)) {
    case PH_IDLE:
        return 0;
    case PH_GETTING:
        return -1;
    default:
        if ((h = atomic_load(&s->holding)) != 0)
            excuse(s, (uint32_t)((h - 1) >> 32), (uint32_t)(h - 1), &left);
        return 0;
    }
}

/* SIGSTOP, and wait until the process is really stopped (or gone). */
static void stop_worker(pid_t pid)
{
    kill(pid, SIGSTOP);
    for (int i = 0; i < 2000; i++) {
        char path[64], buf[512], *p;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (!(f = fopen(path, "r")))
            break;
        p = fgets(buf, sizeof(buf), f);
        fclose(f);
        if (!p || !(p = strrchr(buf, ')')) || p[2] == 'T' || p[2] == 't' || p[2] == 'Z')
            break;
        sleep_ns(50000);
    }
}

static void reap(struct slot *s, int killed)
{
    int status;

    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!killed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
            ; /* fatal() counted it */
        else
            atomic_fetch_add(&L->worker_errors, 1);
        fprintf(stderr, "soak: worker %d (incarnation %u) ended with status 0x%x\n", (int)s->pid,
                s->inc, status);
    }
    if (L->inc[s->inc].ended == END_ALIVE)
        L->inc[s->inc].ended = END_KILLED;
    s->pid = 0;
}

/*
 * Kills a worker.  A consumer is stopped first and what it holds is read
 * (credit_*_consumer); if it is stopped where that cannot be known, it runs
 * on for a moment and is stopped again.  A victim never caught at a known
 * point is left alive (a deferred kill, counted; not a kill) unless force
 * (a hung worker) says otherwise.  1 if it was killed.
 */
static int kill_worker(struct slot *s, int force)
{
    if (!s->pid)
        return 0;
    if (s->role == ROLE_CONSUMER) {
        int tries = 0;
        for (;;) {
            stop_worker(s->pid);
            if ((s->python ? credit_py_consumer(s) : credit_c_consumer(s)) == 0)
                break;
            if (++tries >= 50) {
                if (force)
                    break;
                kill(s->pid, SIGCONT);
                cnt.deferred++;
                return 0;
            }
            kill(s->pid, SIGCONT);
            sleep_ns((int64_t)(rnd() % 3000000) + 200000);
        }
        cnt.consumer_kills++;
        cnt.py_consumer_kills += s->python;
    } else {
        cnt.producer_kills++;
    }
    kill(s->pid, SIGKILL);
    reap(s, 1);
    L->inc[s->inc].ended = END_KILLED;
    return 1;
}

static char daemon_args[128];

static void restart_daemon(void)
{
    xt_kill_daemon();
    cnt.daemon_kills++;
    /* Sometimes leave the clients without a daemon for a moment. */
    if (rnd() % 4 == 0)
        sleep_ns((int64_t)(rnd() % 200) * 1000000);
    xt_start_daemon(daemon_args);
}

/* Reaps workers that ended by themselves and looks for hung ones. */
static void tend(void)
{
    int64_t now = now_ns();

    for (int i = 0; i < nslots(); i++) {
        struct slot *s = &L->slots[i];
        int status;
        pid_t r;

        if (!s->pid) {
            if (!running_out)
                spawn(s);
            continue;
        }
        r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                if (!(WIFEXITED(status) && WEXITSTATUS(status) == 2))
                    atomic_fetch_add(&L->worker_errors, 1);
                fprintf(stderr, "soak: worker %d (incarnation %u) ended with status 0x%x\n",
                        (int)s->pid, s->inc, status);
                L->inc[s->inc].ended = END_KILLED;
            } else if (L->inc[s->inc].ended == END_ALIVE) {
                L->inc[s->inc].ended = END_CLOSED;
            }
            s->pid = 0;
            cnt.respawns++;
            if (!running_out)
                spawn(s);
            continue;
        }
        if (now - atomic_load(&s->heartbeat) > HANG_S * 1000000000ll) {
            fprintf(stderr, "soak: HANG: worker %d (incarnation %u, %s on %s) silent for %d s\n",
                    (int)s->pid, s->inc, s->role == ROLE_PRODUCER ? "producer" : "consumer",
                    target_name[s->target], HANG_S);
            cnt.hangs++;
            if (s->python) { /* pyworker.py dumps its stacks on SIGUSR1 */
                kill(s->pid, SIGUSR1);
                sleep_ns(200 * 1000000);
            }
            kill_worker(s, 1);
            if (!running_out)
                spawn(s);
        }
    }
}

static void kill_one(void)
{
    int n = nslots();

    if (opt.daemon_every > 0 && rnd() % (uint64_t)opt.daemon_every == 0) {
        cnt.kills++;
        say("kill #%ld: xichand\n", cnt.kills);
        restart_daemon();
        return;
    }
    for (int tries = 0; tries < 4 * n; tries++) {
        struct slot *s = &L->slots[rnd() % (uint64_t)n];
        if (!s->pid)
            continue;
        say("kill #%ld: %s %d\n", cnt.kills + 1,
            s->role == ROLE_PRODUCER ? "producer" : "consumer", (int)s->pid);
        if (kill_worker(s, 0)) {
            cnt.kills++;
            if (!running_out)
                spawn(s);
        }
        return;
    }
}

/* --stops: SIGSTOP a random worker for 1..stop_ms ms, then SIGCONT it. */
static long stops_done;
static void stop_one(void)
{
    int n = nslots();

    for (int tries = 0; tries < 4 * n; tries++) {
        struct slot *s = &L->slots[rnd() % (uint64_t)n];
        int64_t ms = 1 + (int64_t)(rnd() % (uint64_t)opt.stop_ms);
        if (!s->pid)
            continue;
        say("stop #%ld: %s %d for %lld ms\n", stops_done + 1,
            s->role == ROLE_PRODUCER ? "producer" : "consumer", (int)s->pid, (long long)ms);
        atomic_fetch_add(&s->stopgen, 1); /* odd: stopped */
        kill(s->pid, SIGSTOP);
        sleep_ns(ms * 1000000);
        kill(s->pid, SIGCONT);
        atomic_fetch_add(&s->stopgen, 1);
        stops_done++;
        return;
    }
}

/* Drains every object into the ledger with this process's client. */
static int drain_all(void)
{
    int got = 0;

    for (int t = 0; t < NTARGETS; t++) {
        for (;;) {
            xichan_item it;
            int err = is_chan(t) ? xichan_chan_recv(boss, (xichan_chan_id){L->ids[t]}, &it, XICHAN_NOWAIT)
                                 : xichan_queue_get(boss, (xichan_queue_id){L->ids[t]}, &it, XICHAN_NOWAIT);
            if (err == XICHAN_EUNBOUND) {
                atomic_fetch_add(&L->unbound_errors, 1);
                continue;
            }
            if (err)
                break;
            record(boss, &it);
            xichan_item_release(&it);
            got++;
        }
    }
    return got;
}

static int64_t target_pending(int t)
{
    int64_t c = is_chan(t) ? xichan_chan_count(boss, (xichan_chan_id){L->ids[t]})
                           : xichan_queue_count(boss, (xichan_queue_id){L->ids[t]});
    return c > 0 ? c : 0;
}

static int64_t pending(void)
{
    int64_t n = 0;

    for (int t = 0; t < NTARGETS; t++)
        n += target_pending(t);
    return n;
}

/* Waits for a condition, tending workers; 0 if it held before the deadline. */
static int wait_until(int (*cond)(void), double seconds)
{
    int64_t end = now_ns() + (int64_t)(seconds * 1e9);

    while (!cond()) {
        if (now_ns() > end)
            return -1;
        sleep_ns(5 * 1000000);
    }
    return 0;
}

/*
 * Waits for the drain.  A backlog that --stops or pauses built up may take
 * a while to drain on a loaded machine; what is a hang is no progress: no
 * item taken in HANG_S seconds.  0 once drained, -1 on a hang.
 */
static int drained(void);

static int drain_wait(void)
{
    int64_t last = pending(), since = now_ns();

    while (!drained()) {
        int64_t n = pending();
        if (n < last) {
            last = n;
            since = now_ns();
        } else if (now_ns() - since > HANG_S * 1000000000ll) {
            return -1;
        }
        sleep_ns(5 * 1000000);
    }
    return 0;
}

static int producers_stopped(void)
{
    for (int i = 0; i < nslots(); i++) {
        struct slot *s = &L->slots[i];
        int status;
        if (s->role != ROLE_PRODUCER || !s->pid)
            continue;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            /* Ended by itself (SEQ_MAX) just now. */
            if (L->inc[s->inc].ended == END_ALIVE)
                L->inc[s->inc].ended = END_CLOSED;
            s->pid = 0;
            continue;
        }
        if (!atomic_load(&s->stopped))
            return 0;
    }
    return 1;
}

static int64_t quiet_since;
static int drained(void)
{
    /* Respawn dead consumers so the drain goes on (none are killed now). */
    for (int i = 0; i < nslots(); i++) {
        struct slot *s = &L->slots[i];
        int status;
        if (s->role == ROLE_CONSUMER && s->pid && waitpid(s->pid, &status, WNOHANG) == s->pid) {
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                atomic_fetch_add(&L->worker_errors, 1);
            L->inc[s->inc].ended = END_KILLED;
            s->pid = 0;
            spawn(s);
        }
    }
    if (pending() != 0) {
        quiet_since = 0;
        return 0;
    }
    if (!quiet_since)
        quiet_since = now_ns();
    return now_ns() - quiet_since > 300 * 1000000ll;
}

static int all_gone(void)
{
    for (int i = 0; i < nslots(); i++) {
        struct slot *s = &L->slots[i];
        int status;
        if (s->pid && waitpid(s->pid, &status, WNOHANG) == s->pid) {
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                atomic_fetch_add(&L->worker_errors, 1);
            s->pid = 0;
        }
        if (s->pid)
            return 0;
    }
    return 1;
}

static void kill_all_left(void)
{
    for (int i = 0; i < nslots(); i++)
        if (L->slots[i].pid) {
            kill(L->slots[i].pid, SIGKILL);
            reap(&L->slots[i], 1);
        }
}

static xichan_client *final_cl;
static xichan_stats final_st;
static int segment_clean(void)
{
    return xichan_stats_get(final_cl, &final_st) == 0 && final_st.sessions == 1 &&
           final_st.objects == 0 && final_st.heap_used == 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: soak [--seconds S] [--kills N] [--interval-ms MS] [--daemon-every N]\n"
            "            [--stops N [--stop-ms MS]]\n"
            "            [--producers P] [--consumers C] [--rate N] [--size BYTES] [--seed N]\n"
            "            [--python PY [--py-producers N] [--py-consumers N] [--py-worker FILE]]\n"
            "            [--min-kills N] [--min-items N] [--json FILE] [-v]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    static const struct option lo[] = {
        {"seconds", 1, 0, 's'},   {"kills", 1, 0, 'k'},     {"interval-ms", 1, 0, 'i'},
        {"daemon-every", 1, 0, 'd'}, {"producers", 1, 0, 'p'}, {"consumers", 1, 0, 'c'},
        {"rate", 1, 0, 'r'},      {"size", 1, 0, 'z'},      {"seed", 1, 0, 'S'},
        {"json", 1, 0, 'j'},      {"verbose", 0, 0, 'v'},   {"python", 1, 0, 'P'},
        {"py-producers", 1, 0, 'X'}, {"py-consumers", 1, 0, 'Y'}, {"py-worker", 1, 0, 'W'},
        {"stops", 1, 0, 'T'},     {"stop-ms", 1, 0, 'M'},
        {"min-kills", 1, 0, 'K'}, {"min-items", 1, 0, 'I'}, {0, 0, 0, 0},
    };
    int c;

    opt.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    while ((c = getopt_long(argc, argv, "v", lo, NULL)) != -1) {
        switch (c) {
        case 's': opt.seconds = atof(optarg); break;
        case 'k': opt.kills = atol(optarg); break;
        case 'i': opt.interval_ms = atoi(optarg); break;
        case 'd': opt.daemon_every = atoi(optarg); break;
        case 'p': opt.producers = atoi(optarg); break;
        case 'c': opt.consumers = atoi(optarg); break;
        case 'r': opt.rate = atoi(optarg); break;
        case 'z': opt.size = optarg; break;
        case 'S': opt.seed = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'j': opt.json = optarg; break;
        case 'T': opt.stops = atol(optarg); break;
        case 'M': opt.stop_ms = atoi(optarg); break;
        case 'v': opt.verbose = 1; break;
        case 'P': opt.python = optarg; break;
        case 'X': opt.py_producers = atoi(optarg); break;
        case 'Y': opt.py_consumers = atoi(optarg); break;
        case 'W': opt.py_worker = optarg; break;
        case 'K': opt.min_kills = atol(optarg); break;
        case 'I': opt.min_items = atol(optarg); break;
        default: usage();
        }
    }
    if (optind < argc || opt.producers < NTARGETS || opt.consumers < NTARGETS ||
        opt.interval_ms < 1 || opt.seconds <= 0 || opt.stops < 0 || opt.stop_ms < 1 || opt.py_producers < 0 || opt.py_consumers < 0 ||
        opt.py_producers > opt.producers)
        usage();
    if (!opt.python)
        opt.py_producers = opt.py_consumers = 0;
    if (nslots() > SLOTS_MAX)
        usage();
    /*
     * Floors: a run that killed or moved much less than its length promises
     * proves little, and fails.  Kills: half of those the interval allows
     * (or of --kills); items: a twentieth of what the producers would put
     * at --rate in the time given (a smoke run on an idle box moves about
     * 85% of it: the Python producers and the bounded queue are slower).
     */
    if (opt.min_kills < 0) {
        double want = opt.seconds * 1000.0 / opt.interval_ms;
        if (opt.kills && opt.kills < want)
            want = (double)opt.kills;
        /* --stops runs stop workers instead, until their count is reached:
         * then the floor is on stops (the same half), not on kills. */
        opt.min_kills = opt.stops ? 0 : (long)(want / 2);
    }
    if (opt.min_items < 0) {
        /* over the time the run is expected to last: S, or less when the
         * kill or stop count ends it first (a tick takes ~MS on average) */
        double secs = opt.seconds;
        if (opt.kills && opt.kills * opt.interval_ms / 1000.0 < secs)
            secs = opt.kills * opt.interval_ms / 1000.0;
        if (opt.stops && opt.stops * (opt.interval_ms + opt.stop_ms / 2.0) / 1000.0 < secs)
            secs = opt.stops * (opt.interval_ms + opt.stop_ms / 2.0) / 1000.0;
        opt.min_items = (long)(opt.producers * (double)opt.rate * secs / 20);
    }
    {
        const char *p = getenv("XICHAN_SOAK_PLANT_LOSS");
        char *end;
        if (p && *p) {
            opt.plant = strtol(p, &end, 10);
            if (*end || opt.plant < 0 || opt.plant > 1000000) {
                fprintf(stderr, "soak: XICHAN_SOAK_PLANT_LOSS=%s: not a count\n", p);
                exit(2);
            }
        }
    }
}

int main(int argc, char **argv)
{
    size_t arr = (size_t)INC_MAX * SEQ_MAX;
    uint64_t items = 0, lost = 0, dup = 0, phantom = 0, unbound = 0, inflight_seen = 0,
             heap_used_end = 0, accounted = 0;
    int64_t t0, t_end, run_ns;
    struct xichan_heap_report hr = {.ok = 1};
    int heap_ok = 1, drain_hang = 0, end_hang = 0, floor_failed = 0;
    uint64_t lost_t[NTARGETS] = {0};
    char lost_by[128];
    FILE *jf;
    pid_t sleeper = 0;

    parse(argc, argv);
    rng_state = mix(opt.seed) | 1;
    /*
     * The ledger is shared memory every worker writes.  memfds rather than
     * anonymous mappings, so that an exec'd Python worker can map them too
     * (the descriptors are inherited: no MFD_CLOEXEC).
     */
    ledger_fd = memfd_create("soak-ledger", 0);
    arrays_fd = memfd_create("soak-arrays", 0);
    if (ledger_fd < 0 || arrays_fd < 0 || ftruncate(ledger_fd, sizeof(*L)) != 0 ||
        ftruncate(arrays_fd, (off_t)(4 * arr)) != 0) {
        perror("soak: memfd");
        return 1;
    }
    L = mmap(NULL, sizeof(*L), PROT_READ | PROT_WRITE, MAP_SHARED, ledger_fd, 0);

    st = mmap(NULL, 4 * arr, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, arrays_fd, 0);
    if (L == MAP_FAILED || st == MAP_FAILED) {
        perror("soak: mmap");
        return 1;
    }
    rx = st + arr;
    mk = rx + arr;
    deadtk = mk + arr;
    atomic_store(&L->plant_left, (int)opt.plant);

    snprintf(daemon_args, sizeof(daemon_args), "--log-level warn --size %s", opt.size);
    xt_start_daemon(daemon_args);
    XT_OK(xichan_client_open(&boss, NULL));
    for (int t = 0; t < NTARGETS; t++) {
        if (is_chan(t)) {
            xichan_chan_id c;
            xichan_item it;
            XT_OK(xichan_chan_create(boss, &(xichan_chan_opts){.unboundop = target_op[t]}, &c));
            /* Associate both ends, so that the channel never closes by itself. */
            XT_CHECK(xichan_chan_send_nowait(boss, c, 0, "keep", 4, 0) >= 0);
            XT_OK(xichan_chan_recv(boss, c, &it, XICHAN_NOWAIT));
            xichan_item_release(&it);
            L->ids[t] = c.id;
        } else {
            xichan_queue_id q;
            XT_OK(xichan_queue_create(boss, &(xichan_queue_opts){.maxsize = t == 1 ? 32 : 0,
                                                                 .unboundop = target_op[t]}, &q));
            L->ids[t] = q.id;
        }
    }
    for (int i = 0; i < nslots(); i++) {
        struct slot *s = &L->slots[i];
        s->role = i < opt.producers ? ROLE_PRODUCER : ROLE_CONSUMER;
        s->target = (i < opt.producers ? i : i - opt.producers) % NTARGETS;
        /* The last producer slots run Python, and so do the extra consumer
         * slots: they drain q2, whose REMOVE op makes no markers (a marker's
         * payload stays in the segment, where only C can read it). */
        if (i < opt.producers)
            s->python = i >= opt.producers - opt.py_producers;
        else if (i >= opt.producers + opt.consumers)
            s->python = 1, s->target = 2;
    }
    printf("soak: seed %u, %d producers, %d consumers (%d of the producers Python, and %d Python consumers), a kill every "
           "~%d ms (xichand 1 in %d), for %.0f s%s\n", opt.seed, opt.producers, opt.consumers,
           opt.py_producers, opt.py_consumers, opt.interval_ms, opt.daemon_every, opt.seconds,
           opt.kills ? " or until the kill count" : "");
    printf("soak: floors: %ld kills, %ld items%s\n", opt.min_kills, opt.min_items,
           opt.plant ? "; XICHAN_SOAK_PLANT_LOSS: consumers drop items unrecorded, this run must fail"
                     : "");
    if (opt.plant)
        printf("soak: planting %ld lost items\n", opt.plant);
    fflush(stdout);

    t0 = now_ns();
    t_end = t0 + (int64_t)(opt.seconds * 1e9);
    if (opt.stops && (sleeper = start_sleeper()) < 0) {
        perror("soak: fork");
        return 1;
    }
    tend(); /* spawns everyone */
    while (now_ns() < t_end && (!opt.kills || cnt.kills < opt.kills) && !running_out &&
           (!opt.stops || stops_done < opt.stops)) {
        int64_t wait = (int64_t)opt.interval_ms * 1000000 / 2 +
                       (int64_t)(rnd() % (uint64_t)(opt.interval_ms * 1000000ll + 1));
        int64_t until = now_ns() + wait;
        while (now_ns() < until) {
            tend();
            sleep_ns(until - now_ns() < 5000000 ? until - now_ns() : 5000000);
        }
        if (stops_done < opt.stops) {
            stop_one();
            continue;
        }
        {
            long before = cnt.kills;
            kill_one();
            if (cnt.kills != before && cnt.kills % 1000 == 0)
                fprintf(stderr, "soak: %ld kills, %.0f s\n", cnt.kills, (now_ns() - t0) / 1e9);
        }
    }
    run_ns = now_ns() - t0;

    /* The end: no more kills.  Producers stop, consumers drain, all close. */
    if (!xt_daemon_pid())
        xt_start_daemon(daemon_args);
    tend();
    atomic_store(&L->stop_producers, 1);
    if (wait_until(producers_stopped, HANG_S) != 0) {
        fprintf(stderr, "soak: HANG: producers did not stop within %d s\n", HANG_S);
        drain_hang = 1;
    }
    if (drain_wait() != 0) {
        fprintf(stderr, "soak: HANG: the drain made no progress for %d s (%lld left:",
                HANG_S, (long long)pending());
        for (int t = 0; t < NTARGETS; t++)
            fprintf(stderr, " %s %lld", target_name[t], (long long)target_pending(t));
        fprintf(stderr, ")\n");
        drain_hang = 1;
    }
    atomic_store(&L->stop_consumers, 1);
    atomic_store(&L->release_producers, 1);
    if (sleeper > 0)
        waitpid(sleeper, NULL, 0); /* it ends within one 2 ms sleep */
    if (wait_until(all_gone, HANG_S) != 0) {
        fprintf(stderr, "soak: HANG: workers did not exit within %d s\n", HANG_S);
        drain_hang = 1;
        kill_all_left();
    }
    drain_all();
    for (int i = 0; i < nslots(); i++) {
        atomic_fetch_add(&L->received, L->slots[i].py_received);
        atomic_fetch_add(&L->corrupt, L->slots[i].py_corrupt);
        atomic_fetch_add(&L->worker_errors, L->slots[i].py_errors);
    }

    /*
     * Verdict, over the seqs each producer attempted (the pages nobody
     * touched stay untouched); anything recorded elsewhere is a phantom.
     * A committed item is delivered exactly once: received intact (rx) or
     * taken by a consumer that was killed holding it (deadtk, written for
     * that one item of that one victim).  No other excuse exists: an item
     * that never arrived is lost, one that arrived as an UNBOUND marker
     * (mk) is "unbound" -- no process here destroys an interpreter or
     * unbinds, so the death of a producer must leave its items intact.
     */
    for (uint32_t i = 0; i < next_inc; i++) {
        const struct increc *r = &L->inc[i];
        if (r->role != ROLE_PRODUCER)
            continue;
        for (uint32_t s = 0; s < r->nseq && s < SEQ_MAX; s++) {
            uint64_t k = idx(i, s);
            unsigned got = (unsigned)rx[k] + deadtk[k], seen = got + mk[k];
            accounted += seen;
            if (st[k] == ST_COMMITTED) {
                items++;
                if (seen > 1)
                    dup += seen - 1;
                else if (mk[k])
                    unbound++;
                else if (!got && (lost_t[r->target]++, lost++ < 10))
                    fprintf(stderr, "soak: LOST: item %u/%u (put on %s by a producer that %s)\n",
                            i, s, target_name[r->target],
                            r->ended == END_KILLED ? "was killed" : r->ended == END_CLOSED
                                ? "ended by itself" : "stayed to the end");
            } else if (st[k] == ST_INFLIGHT) {
                inflight_seen += seen > 0;
                unbound += mk[k] != 0;
                if (seen > 1)
                    dup += seen - 1;
            } else if (seen) {
                phantom += seen;
            }
        }
    }
    if (accounted < atomic_load(&L->received) + atomic_load(&L->markers) + (uint64_t)cnt.dead_taken)
        phantom += atomic_load(&L->received) + atomic_load(&L->markers) + (uint64_t)cnt.dead_taken -
                   accounted;
    if (opt.stops) {
        /* a tick waits ~interval_ms, then the stop lasts ~stop_ms / 2 */
        double want = opt.seconds * 1000.0 / (opt.interval_ms + opt.stop_ms / 2.0);
        if (opt.stops < want)
            want = (double)opt.stops;
        if (stops_done < (long)(want / 2)) {
            fprintf(stderr, "soak: BELOW THE FLOOR: %ld stops (at least %ld wanted)\n",
                    stops_done, (long)(want / 2));
            floor_failed = 1;
        }
    }
    if (cnt.kills < opt.min_kills || (long)items < opt.min_items) {
        fprintf(stderr, "soak: BELOW THE FLOOR: %ld kills (at least %ld wanted), %llu items "
                        "(at least %ld wanted)\n",
                cnt.kills, opt.min_kills, (unsigned long long)items, opt.min_items);
        floor_failed = 1;
    }

    /* Tear down and check the segment is empty again. */
    for (int t = 0; t < NTARGETS; t++) {
        int err = is_chan(t) ? xichan_chan_destroy(boss, (xichan_chan_id){L->ids[t]})
                             : xichan_queue_destroy(boss, (xichan_queue_id){L->ids[t]});
        if (err)
            fprintf(stderr, "soak: destroying %s: %s\n", target_name[t], xichan_err_name(err));
    }
    xichan_client_close(boss);
    XT_OK(xichan_client_open(&final_cl, NULL));
    if (wait_until(segment_clean, 30) != 0) {
        fprintf(stderr, "soak: the segment did not get back to empty within 30 s: %u sessions, "
                        "%u objects, %llu heap bytes used\n",
                final_st.sessions, final_st.objects, (unsigned long long)final_st.heap_used);
        end_hang = 1;
    }
    heap_used_end = final_st.heap_used;
    if (xichan__heap_check(final_cl->shm, &hr) != 0 || !hr.ok) {
        fprintf(stderr, "soak: heap check: %s\n", hr.why);
        heap_ok = 0;
    }
    xichan_client_close(final_cl);
    cnt.hangs += drain_hang + end_hang;

    printf("soak: kills=%ld items=%llu lost=%llu duplicated=%llu hangs=%ld unbound=%llu "
           "excused=%ld bad_excuses=%ld planted=%llu\n",
           cnt.kills, (unsigned long long)items, (unsigned long long)lost, (unsigned long long)dup,
           cnt.hangs, (unsigned long long)unbound, cnt.dead_taken, cnt.bad_excuses,
           (unsigned long long)atomic_load(&L->planted));
    snprintf(lost_by, sizeof(lost_by), "{\"q0\": %llu, \"q1\": %llu, \"q2\": %llu, \"c0\": %llu, "
             "\"c1\": %llu}", (unsigned long long)lost_t[0], (unsigned long long)lost_t[1],
             (unsigned long long)lost_t[2], (unsigned long long)lost_t[3],
             (unsigned long long)lost_t[4]);
    if (opt.stops)
        printf("soak-stops: stops=%ld timed_calls=%llu max_overrun_ms=%.1f over_50ms=%llu "
               "(elocked %llu) elocked=%llu max_elocked_overrun_ms=%.1f max_stopped_holder_overrun_ms=%.1f "
               "overrun_ms[<1,<10,<20,<50,<250,>=250]=%llu,%llu,%llu,"
               "%llu,%llu,%llu\n",
               stops_done, (unsigned long long)atomic_load(&L->timed_calls),
               atomic_load(&L->max_overrun_ns) / 1e6,
               (unsigned long long)atomic_load(&L->overruns_50ms),
               (unsigned long long)atomic_load(&L->over_50ms_elocked),
               (unsigned long long)atomic_load(&L->locked_errors),
               atomic_load(&L->max_overrun_elocked_ns) / 1e6,
               atomic_load(&L->max_overrun_stopped_ns) / 1e6,
               (unsigned long long)L->overrun_hist[0], (unsigned long long)L->overrun_hist[1],
               (unsigned long long)L->overrun_hist[2], (unsigned long long)L->overrun_hist[3],
               (unsigned long long)L->overrun_hist[4], (unsigned long long)L->overrun_hist[5]);
    if (opt.stops)
        printf("soak-stops: control sleeper: sleeps=%llu max_sleep_late_ms=%.1f "
               "late_ms[<1,<10,<20,<50,<250,>=250]=%llu,%llu,%llu,%llu,%llu,%llu\n",
               (unsigned long long)atomic_load(&L->sleeps), atomic_load(&L->max_sleep_late_ns) / 1e6,
               (unsigned long long)L->sleep_late_hist[0], (unsigned long long)L->sleep_late_hist[1],
               (unsigned long long)L->sleep_late_hist[2], (unsigned long long)L->sleep_late_hist[3],
               (unsigned long long)L->sleep_late_hist[4], (unsigned long long)L->sleep_late_hist[5]);
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = pass ? (opt.json ? (jf = fopen(opt.json, "w")) : NULL) : stdout;
        if (!f)
            continue;
        fprintf(f,
                "{\"kills\": %ld, \"daemon_kills\": %ld, \"producer_kills\": %ld, "
                "\"consumer_kills\": %ld, \"python_consumer_kills\": %ld, \"deferred_kills\": %ld, "
                "\"seconds\": %.1f, \"items\": %llu, \"received\": %llu, \"markers\": %llu, "
                "\"excused\": %ld, \"bad_excuses\": %ld, \"inflight_delivered\": %llu, "
                "\"unbound_errors\": %llu, \"lost\": %llu, \"lost_by_target\": %s, \"unbound\": %llu, "
                "\"duplicated\": %llu, \"phantom\": %llu, \"corrupt\": %llu, \"hangs\": %ld, "
                "\"planted\": %llu, \"min_kills\": %ld, \"min_items\": %ld, \"floor_ok\": %s, "
                "\"worker_errors\": %llu, \"incarnations\": %u, \"python_incarnations\": %ld, "
                "\"heap_used_end\": %llu, \"heap_ok\": %s, \"stops\": %ld, "
                "\"max_overrun_ms\": %.1f, \"max_sleep_late_ms\": %.1f, \"seed\": %u}\n",
                cnt.kills, cnt.daemon_kills, cnt.producer_kills, cnt.consumer_kills,
                cnt.py_consumer_kills, cnt.deferred, run_ns / 1e9, (unsigned long long)items,
                (unsigned long long)atomic_load(&L->received),
                (unsigned long long)atomic_load(&L->markers), cnt.dead_taken, cnt.bad_excuses,
                (unsigned long long)inflight_seen,
                (unsigned long long)atomic_load(&L->unbound_errors), (unsigned long long)lost,
                lost_by, (unsigned long long)unbound, (unsigned long long)dup, (unsigned long long)phantom,
                (unsigned long long)atomic_load(&L->corrupt), cnt.hangs,
                (unsigned long long)atomic_load(&L->planted), opt.min_kills, opt.min_items,
                floor_failed ? "false" : "true", (unsigned long long)atomic_load(&L->worker_errors),
                next_inc, cnt.py_incarnations, (unsigned long long)heap_used_end,
                heap_ok ? "true" : "false", stops_done, atomic_load(&L->max_overrun_ns) / 1e6,
                atomic_load(&L->max_sleep_late_ns) / 1e6, opt.seed);
        if (pass)
            fclose(f);
    }
    fflush(stdout);
    return lost || dup || unbound || cnt.hangs || phantom || cnt.bad_excuses || floor_failed ||
                   atomic_load(&L->corrupt) || atomic_load(&L->worker_errors) ||
                   atomic_load(&L->unbound_errors) || heap_used_end || !heap_ok
               ? 1
               : 0;
}
