/*
 * wait.c -- blocking and waking, on 32-bit futex words in the segment.
 *
 * Decision: wakeups go through futex sequence words in shared
 * memory, not an eventfd per client.  A futex needs no daemon round trip and
 * no registration, and a waiter that dies leaves nothing behind.
 *
 * Signalling (tag-obj-signal).  Code that changes an object says so with
 * one call, xichan__obj_signal(shm, o, XICHAN__EV_*, n), which knows the
 * object and what became true of it (readable, writable, anything); it is
 * the only caller of xichan__notify and xichan__wake.  So a second way of
 * waiting (a wait set, an fd) is a change to this function and its own
 * file, not to the two dozen places that change objects.
 *
 * Protocol (tag-wait-protocol).  A waiter reads the sequence word and
 * checks its condition under the object's lock, unlocks, spins a little,
 * then raises the waiter hint and sleeps only while the word still holds
 * the value it read.
 * A notifier changes the state under the lock, then bumps the word and
 * calls FUTEX_WAKE if the hint is nonzero.  Either the waiter's FUTEX_WAIT
 * sees the bumped word (EAGAIN, it rechecks) or the notifier sees the hint
 * (it wakes).  The hint is a count that a killed waiter leaves too high:
 * that costs a spurious FUTEX_WAKE, never a lost one.
 *
 * Yielding: a waiter on an object's put_seq or get_seq whose last notifier
 * ran on the waiter's CPU (the object's put_cpu / get_cpu, which
 * xichan__obj_signal keeps) does not spin: it calls sched_yield once
 * before it raises the hint and sleeps, and returns at once if the word
 * moved meanwhile.  That peer is then most likely runnable
 * and waiting for this very CPU (both pinned to one CPU, a one-CPU
 * machine, or two processes the scheduler placed together), so the yield
 * hands the CPU over directly: the peer's notify finds no sleeper and makes
 * no system call, and neither does this wait.  Measured on one CPU, a C
 * queue round trip went from 4.2 to 2.8 us, below a pipe's 4.1, and a
 * Python one-way stream of 64-byte items from ~0.7 M/s (a sleep and a wake
 * every 8 items) to ~2.3 M/s.  A notifier on another CPU means no yield:
 * a yield there would hand the CPU to whatever unrelated process shares it
 * for a whole time slice, where a sleeping waiter is woken (and preempts
 * it) as soon as the item comes.  And one such wait in YIELD_SLEEP_EVERY
 * sleeps all the same: two unpinned processes that the scheduler placed on
 * one CPU would otherwise never wake each other, and a wake is when the
 * scheduler moves the woken one to an idle CPU -- after which they spin,
 * each on its own (a Python round trip unpinned: 4.2 us kept together,
 * 0.8 us apart).  The CPU words are hints (a stale one
 * costs a yield or a missed one), written without the lock; nothing else
 * reads them, so the crash argument is unchanged: a waiter is only ever in
 * the kernel's run queue or on the futex, and a notifier that finds no hint
 * has nothing to wake (the waiter rereads the word before it raises the
 * hint).
 *
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds, passed to
 * FUTEX_WAIT_BITSET (absolute, monotonic by default); the loop recomputes
 * nothing, so EINTR and spurious wakeups cannot stretch a timeout.
 *
 * Spinning: on a machine with more than one CPU, a waiter spins for a short,
 * adaptive time before sleeping, because a sleeping CPU on a VM takes tens
 * of microseconds to wake.  The budget doubles when a spin succeeds and
 * halves when it fails, so when both parties share one CPU (where spinning
 * only burns the other's time slice) it decays to nothing.
 *
 * Recovery: a decayed waiter only probes (every 64th wait, briefly), and
 * two peers that both decayed -- a long first wait while the other process
 * starts -- stayed asleep for good, since each probe ran while the other
 * slept (a Python round trip across CPUs stuck at ~35 us instead of ~4).
 * So a decayed waiter that a wake ends within SPIN_MAX_NS of the wait's
 * start goes back to the full budget: its peer answers that fast.  On one
 * CPU that is also true but the next spin fails (the peer cannot run); a
 * raise followed by a failure doubles the number of such quick wakes needed
 * before the next raise, so there it backs off to nothing again.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SPIN_MAX_NS 40000
#define SPIN_MIN_NS 1000

static int ncpus_cached;
static _Thread_local int64_t spin_budget_ns = SPIN_MAX_NS / 4;
static _Thread_local unsigned spin_skipped;
static _Thread_local int spin_raised;       /* the budget came from a quick wake */
static _Thread_local unsigned spin_futile;  /* raises that failed in a row (back-off) */
static _Thread_local unsigned quick_wakes;
static _Thread_local unsigned yields;        /* waits that met their notifier's CPU */

#define YIELD_SLEEP_EVERY 128

static int ncpus(void)
{
    int n = __atomic_load_n(&ncpus_cached, __ATOMIC_RELAXED);

    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (int)v : 1;
        __atomic_store_n(&ncpus_cached, n, __ATOMIC_RELAXED);
    }
    return n;
}

static int futex_wait_abs(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;

    if (deadline_ns != XICHAN_FOREVER) {
        ts.tv_sec = deadline_ns / 1000000000;
        ts.tv_nsec = deadline_ns % 1000000000;
        tsp = &ts;
    }
    /* No FUTEX_PRIVATE_FLAG: the word is shared between processes. */
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, expect, tsp, NULL,
                FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    return -errno;
}

/* Spins while *word == expect, up to the adaptive budget; 1 if it changed. */
static int spin(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns)
{
    int64_t start, limit;

    if (ncpus() < 2)
        return 0;
    if (spin_budget_ns < SPIN_MIN_NS) {
        /* Decayed: probe again now and then, in case the peer moved CPU. */
        if (++spin_skipped < 64)
            return 0;
        spin_skipped = 0;
        spin_budget_ns = 2 * SPIN_MIN_NS;
    }
    start = xichan_now_ns();
    limit = start + spin_budget_ns;
    if (limit > deadline_ns)
        limit = deadline_ns;
    do {
        for (int i = 0; i < 64; i++) {
            /* Pairs with the release bump in xichan__notify. */
            if (xa_load_acquire(word) != expect) {
                spin_budget_ns = spin_budget_ns * 2 > SPIN_MAX_NS ? SPIN_MAX_NS : spin_budget_ns * 2;
                spin_raised = 0;
                spin_futile = 0;
                return 1;
            }
            xichan__cpu_relax();
        }
    } while (xichan_now_ns() < limit);
    spin_budget_ns /= 2;
    if (spin_raised && spin_futile < 16)
        spin_futile++;
    spin_raised = 0;
    return 0;
}

/* CPU + 1 of the caller, 0 if not known. */
static uint32_t cpu_hint(void)
{
    int c = sched_getcpu();

    return c >= 0 && c < UINT16_MAX ? (uint32_t)c + 1 : 0;
}

/* Gives the CPU to the word's notifier, which ran on this CPU, once; 1 if
 * the word changed meanwhile (see Yielding above). */
static int yield_once(xichan_atomic_u32 *word, uint32_t expect)
{
    sched_yield();
    /* Pairs with the release bump in xichan__notify. */
    return xa_load_acquire(word) != expect;
}

/* After a sleep that a wake ended: a decayed waiter whose peer answered
 * within SPIN_MAX_NS spins again (see Recovery above). */
static void woke_after(int64_t start, int err)
{
    if (err || spin_budget_ns >= SPIN_MIN_NS || ncpus() < 2 ||
        xichan_now_ns() - start > SPIN_MAX_NS)
        return;
    if (++quick_wakes < (1u << spin_futile))
        return;
    quick_wakes = 0;
    spin_budget_ns = SPIN_MAX_NS;
    spin_raised = 1;
    spin_skipped = 0;
}

int xichan__wait(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                 const struct xichan_waiter *w)
{
    return xichan__wait_hinted(word, expect, deadline_ns, w, NULL);
}

static int sleep_loop(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                      const struct xichan_waiter *w);

int xichan__wait_hinted(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                        const struct xichan_waiter *w, xichan_atomic_u32 *hint)
{
    return xichan__wait_peer(word, expect, deadline_ns, w, hint, 0);
}

int xichan__wait_peer(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                      const struct xichan_waiter *w, xichan_atomic_u32 *hint, uint32_t peer_cpu)
{
    int64_t start = xichan_now_ns();
    int err;

    /*
     * Spin with the hint down: a notifier that finds no sleeper skips the
     * FUTEX_WAKE system call, which is most of a hand-off's cost when the
     * waiter is spinning on another CPU.  The same holds while it yields
     * to a notifier on its own CPU -- instead of spinning, which that
     * notifier could not end (see Yielding above).
     */
    if (peer_cpu && peer_cpu == cpu_hint()) {
        /* Every YIELD_SLEEP_EVERY-th such wait sleeps instead: the wake
         * lets the scheduler move one of the pair to an idle CPU. */
        if (++yields % YIELD_SLEEP_EVERY != 0 && yield_once(word, expect))
            return 0;
    } else if (spin(word, expect, deadline_ns)) {
        return 0;
    }
    if (!hint) {
        err = sleep_loop(word, expect, deadline_ns, w);
        woke_after(start, err);
        return err;
    }
    /*
     * Raise the hint, then sleep only while the word is unchanged: the
     * seq_cst increment pairs with the fence in xichan__notify, so either
     * the notifier sees the hint and wakes us, or FUTEX_WAIT sees its bump
     * (tag-wait-protocol).
     */
    atomic_fetch_add_explicit(hint, 1, memory_order_seq_cst);
    err = sleep_loop(word, expect, deadline_ns, w);
    xa_sub_relaxed(hint, 1);
    woke_after(start, err);
    return err;
}

static int sleep_loop(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                      const struct xichan_waiter *w)
{
    for (;;) {
        int64_t now = xichan_now_ns(), until = deadline_ns;
        int rc;

        if (now >= deadline_ns)
            return XICHAN_ETIMEDOUT;
        if (xichan__fault_fail(XICHAN_FAULT_FAIL_WAIT))
            return XICHAN_EINTR; /* as if a signal arrived and the check said stop */
        if (w && w->check && w->period_ms > 0) {
            int64_t slice = now + (int64_t)w->period_ms * 1000000;
            if (slice < until)
                until = slice;
        }
        rc = futex_wait_abs(word, expect, until);
        if (rc == 0 || rc == -EAGAIN)
            return 0; /* woken, or the word already moved on: recheck */
        if (rc == -ETIMEDOUT && until == deadline_ns)
            return XICHAN_ETIMEDOUT;
        if (rc != -ETIMEDOUT && rc != -EINTR)
            return XICHAN_EIO;
        /* A slice ended or a signal arrived: let the caller's check run. */
        if (w && w->check && w->check(w->arg))
            return XICHAN_EINTR;
    }
}

void xichan__wake(xichan_atomic_u32 *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

void xichan__notify(xichan_atomic_u32 *seq, xichan_atomic_u32 *waiters, int n)
{
    /* Release: a waiter that sees the new value also sees the state change. */
    xa_add_release(seq, 1);
    /*
     * The full fence orders the bump before the hint load; the waiter raises
     * the hint before its FUTEX_WAIT re-reads the word (tag-wait-protocol).
     */
    xa_fence_seq_cst();
    if (xa_load_relaxed(waiters) > 0)
        xichan__wake(seq, n);
}

/* Records the notifier's CPU for waiters (put_cpu, get_cpu): a relaxed
 * store, only when it changed, to the line the bump just wrote. */
static void note_cpu(xichan_atomic_u16 *cpu)
{
    uint32_t c = cpu_hint();

    if (xa_load_relaxed(cpu) != c)
        xa_store_relaxed(cpu, (uint16_t)c);
}

void xichan__obj_signal(struct xichan_shm *shm, struct xichan_obj *o, unsigned ev, int n)
{
    if (ev & XICHAN__EV_ALL) {
        /* Bump both words so a waiter about to sleep sees the change. */
        xa_add_release(&o->put_seq, 1);
        xa_add_release(&o->get_seq, 1);
        xichan__wake(&o->put_seq, INT32_MAX);
        xichan__wake(&o->get_seq, INT32_MAX);
    } else {
        if (ev & XICHAN__EV_READABLE) {
            xichan__notify(&o->put_seq, &o->getters, n);
            note_cpu(&o->put_cpu);
        }
        if (ev & XICHAN__EV_WRITABLE) {
            xichan__notify(&o->get_seq, &o->putters, n);
            note_cpu(&o->get_cpu);
        }
        if ((ev & XICHAN__EV_MORE) && xa_load_relaxed(&o->getters))
            xichan__wake(&o->put_seq, 1); /* pass the wake on */
    }
    /* The second way of waiting: wait sets that watch o (waitset.c). */
    xichan__waitset_signal(shm, o, ev);
}
