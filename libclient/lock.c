/*
 * lock.c -- the one wrapper around the segment's robust mutexes.
 *
 * Every lock in the segment is a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST
 * mutex.  When its holder dies the kernel marks it, and the next locker gets
 * EOWNERDEAD: it owns the mutex but the data it guards may be half-updated.
 * xichan__lock then runs the object's repair function, which brings the
 * guarded state back to one of the states a crash argument allows (see the
 * top of alloc.c, fifo.c and objects.c), and only then calls
 * pthread_mutex_consistent.  Calling consistent first would turn a crash into
 * silent corruption.
 *
 * If repair fails, the mutex is unlocked without consistent: glibc then makes
 * it ENOTRECOVERABLE for good.  The lock's `broken` word is set so that every
 * later caller gets XICHAN_EBROKEN at once, and nothing else in the segment
 * is affected.
 *
 * A repairer that itself dies mid-repair leaves the mutex in EOWNERDEAD
 * again; the next locker simply repairs again.  Repairs are therefore written
 * to be idempotent.
 *
 * Bounded waits (tag-lock-bound).  Every holder runs a short critical
 * section -- unless its process is stopped (SIGSTOP, Ctrl-Z, `docker pause`,
 * a debugger), or the mutex word was scribbled.  Neither may hang anyone
 * else, so no wait for a lock is unbounded:
 *   - A waiter waits until its caller's deadline, in slices, running the
 *     interrupt callback between them (Ctrl-C ends any wait).
 *   - A deadline that is already past (a nowait call, a call whose time ran
 *     out in a sleep) or nearer than XICHAN_LOCK_GRACE_MS is moved out to
 *     now + XICHAN_LOCK_GRACE_MS: a holder that is merely running finishes
 *     in microseconds, and a nowait call must not fail for that.
 *   - From then on the holder is looked at (every LOCK_SLICE_NS), through
 *     the owner thread id glibc keeps in the mutex word and /proc: a holder
 *     that is stopped -- or asleep, which with a lock held XICHAN_LOCK_GRACE_MS
 *     long means it waits for something itself, such as a nested lock a
 *     stopped process holds -- ends the wait at the (moved) deadline with
 *     XICHAN_ELOCKED, its pid in the message; one that runs (or cannot be
 *     seen) is given up to XICHAN_LOCK_SLOW_MS from the start of the wait:
 *     on a loaded machine a holder may be preempted in its section.
 *   - A word naming a thread that does not exist, seen twice unchanged,
 *     is not a mutex state any process can leave (the kernel marks a dead
 *     owner's robust mutexes OWNER_DIED before its thread id goes away):
 *     XICHAN_ECORRUPT at once, whatever the deadline.  The lock is not
 *     marked broken: all clients of a namespace share one pid namespace,
 *     but if one did not, this check would only fail a call, never an
 *     object.
 * XICHAN_FOREVER still waits forever for a live or stopped holder (only the
 * interrupt callback and a corrupt word end it).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_GRACE_NS ((int64_t)XICHAN_LOCK_GRACE_MS * 1000000)
#define LOCK_SLOW_NS ((int64_t)XICHAN_LOCK_SLOW_MS * 1000000)
#define LOCK_SLICE_NS (10 * 1000000ll)
#define FUTEX_TID_BITS 0x3fffffffu /* linux/futex.h FUTEX_TID_MASK */

int xichan__lock_init(struct xichan_lock *l)
{
    pthread_mutexattr_t a;
    int err = XICHAN_EIO;

    if (pthread_mutexattr_init(&a))
        return XICHAN_EIO;
    if (pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) ||
        pthread_mutex_init(&l->mutex, &a))
        goto out;
    xa_store_relaxed(&l->broken, 0);
    l->holder_sid = 0;
    err = 0;
out:
    pthread_mutexattr_destroy(&a);
    return err;
}

/* One clocked attempt until deadline_ns (a pthread error number). */
static int lock_until(struct xichan_lock *l, int64_t deadline_ns)
{
    struct timespec ts;

    if (deadline_ns <= xichan_now_ns()) {
        /* A past deadline tries once (a negative timespec would be EINVAL). */
        int rc = pthread_mutex_trylock(&l->mutex);
        return rc == EBUSY ? ETIMEDOUT : rc;
    }
#if defined(__SANITIZE_THREAD__)
    {
        /* TSan does not intercept clocklock; timedlock on the wall clock is
         * close enough for the sanitizer build. */
        struct timespec now;
        int64_t rt;
        clock_gettime(CLOCK_REALTIME, &now);
        rt = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + (deadline_ns - xichan_now_ns());
        ts.tv_sec = rt / 1000000000;
        ts.tv_nsec = rt % 1000000000;
        return pthread_mutex_timedlock(&l->mutex, &ts);
    }
#else
    ts.tv_sec = deadline_ns / 1000000000;
    ts.tv_nsec = deadline_ns % 1000000000;
    return pthread_mutex_clocklock(&l->mutex, CLOCK_MONOTONIC, &ts);
#endif
}

/* The mutex word: owner thread id | FUTEX_WAITERS | FUTEX_OWNER_DIED (glibc). */
static uint32_t lock_word(struct xichan_lock *l)
{
    return __atomic_load_n((const uint32_t *)&l->mutex.__data.__lock, __ATOMIC_RELAXED);
}

int xichan__lock_holder(struct xichan_lock *l, struct xichan_lock_holder *h)
{
    uint32_t word = lock_word(l);
    char path[64], buf[1024], *p;
    ssize_t n;
    int fd;

    memset(h, 0, sizeof(*h));
    h->tid = (pid_t)(word & FUTEX_TID_BITS);
    if (word == 0)
        return 0; /* free */
    if (h->tid == 0)
        return XICHAN_ECORRUPT; /* a held robust mutex always names its owner */
    snprintf(path, sizeof(path), "/proc/%d/status", (int)h->tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* No /proc entry: ask the kernel whether the thread exists at all. */
        if (kill(h->tid, 0) < 0 && errno == ESRCH)
            return XICHAN_ECORRUPT;
        h->state = '?';
        h->pid = h->tid;
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    h->state = '?';
    h->pid = h->tid;
    if ((p = strstr(buf, "\nState:")))
        h->state = p[strspn(p + 7, " \t") + 7];
    if ((p = strstr(buf, "\nTgid:")))
        h->pid = (pid_t)strtol(p + 6, NULL, 10);
    h->stopped = h->state == 'T' || h->state == 't';
    /* Asleep or in the kernel while it holds a lock: waiting for something
     * itself (a nested lock a stopped process holds), not running its section. */
    h->stuck = h->stopped || h->state == 'S' || h->state == 'D' || h->state == 'Z';
    return 0;
}

/*
 * Waits for a lock another thread holds (tag-lock-bound).  Returns a
 * pthread error number (0, EOWNERDEAD, ...), or XICHAN_ELOCKED,
 * XICHAN_ECORRUPT or XICHAN_EINTR.
 */
static int lock_wait(struct xichan_lock *l, int64_t deadline_ns, const struct xichan_waiter *w)
{
    int64_t start = xichan_now_ns(), grace = start + LOCK_GRACE_NS;
    int64_t give_up = deadline_ns > grace ? deadline_ns : grace;
    int64_t slow = start + LOCK_SLOW_NS > give_up ? start + LOCK_SLOW_NS : give_up;
    uint32_t suspect = 0;

    for (;;) {
        int64_t t = xichan_now_ns(), until = grace;
        struct xichan_lock_holder h;
        int rc;

        if (t >= grace) {
            uint32_t word = lock_word(l);
            if (xichan__lock_holder(l, &h) == XICHAN_ECORRUPT) {
                if (suspect == word && word == lock_word(l)) {
                    xichan__set_refusal(XICHAN_ECORRUPT,
                                        "shared segment is corrupt: a lock's word (0x%08x) names "
                                        "thread %d, which does not exist",
                                        (unsigned)word, (int)h.tid);
                    return XICHAN_ECORRUPT;
                }
                suspect = word;
            } else {
                suspect = 0;
            }
            if (t >= (h.stuck ? give_up : slow)) {
                xichan__set_refusal(XICHAN_ELOCKED,
                                    "object locked by process %d, which %s (gave up after %lld ms)",
                                    (int)h.pid,
                                    h.stopped ? "is stopped (SIGSTOP, Ctrl-Z or a debugger)"
                                    : h.stuck ? "is itself waiting with it held"
                                              : "holds it for too long",
                                    (long long)((t - start) / 1000000));
                return XICHAN_ELOCKED;
            }
            until = t + LOCK_SLICE_NS;
            if (until > slow)
                until = slow;
        }
        if (w && w->check && w->period_ms > 0 && t + (int64_t)w->period_ms * 1000000 < until)
            until = t + (int64_t)w->period_ms * 1000000;
        rc = lock_until(l, until);
        if (rc != ETIMEDOUT)
            return rc;
        if (w && w->check && w->check(w->arg))
            return XICHAN_EINTR;
    }
}

int xichan__lock(struct xichan_shm *shm, struct xichan_lock *l, xichan_repair_fn repair, void *arg,
                 uint32_t sid, int64_t deadline_ns, const struct xichan_waiter *w)
{
    int rc;

    /* A relaxed read is enough: a stale 0 only means we find out below. */
    if (xa_load_relaxed(&l->broken))
        return XICHAN_EBROKEN;
    if (deadline_ns != XICHAN_FOREVER && deadline_ns != XICHAN__LOCK_BOUNDED &&
        xichan__fault_fail(XICHAN_FAULT_FAIL_LOCK)) {
        xichan__set_refusal(XICHAN_ELOCKED, "object locked (fault point)");
        return XICHAN_ELOCKED;
    }
    rc = pthread_mutex_trylock(&l->mutex);
    if (rc == EBUSY)
        rc = lock_wait(l, deadline_ns, w);
    if (rc == 0) {
        l->holder_sid = sid;
        return 0;
    }
    if (rc < 0)
        return rc; /* ELOCKED, ECORRUPT or EINTR: not held */
    if (rc == EOWNERDEAD) {
        l->holder_sid = sid;
        if (repair && repair(shm, arg) != 0) {
            xa_store_relaxed(&l->broken, 1);
            /* No consistent(): the mutex becomes ENOTRECOVERABLE. */
            pthread_mutex_unlock(&l->mutex);
            return XICHAN_EBROKEN;
        }
        xichan__fault(XICHAN_FAULT_REPAIR_DONE);
        pthread_mutex_consistent(&l->mutex);
        return 0;
    }
    /* ENOTRECOVERABLE, or EINVAL/EDEADLK from a scribbled mutex. */
    xa_store_relaxed(&l->broken, 1);
    return XICHAN_EBROKEN;
}

void xichan__unlock(struct xichan_lock *l)
{
    l->holder_sid = 0;
    pthread_mutex_unlock(&l->mutex);
}
