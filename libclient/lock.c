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
 * The daemon passes a deadline so that a live client that holds a lock for
 * long cannot stall it forever; clients wait forever (the holder is either
 * alive and will finish its short critical section, or dead and the kernel
 * hands the mutex over).
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

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

static int lock_raw(struct xichan_lock *l, int64_t deadline_ns)
{
    struct timespec ts;
    int rc;

    if (deadline_ns == XICHAN_FOREVER)
        return pthread_mutex_lock(&l->mutex);
    if (deadline_ns <= xichan_now_ns()) {
        /* A past deadline tries once (a negative timespec would be EINVAL). */
        rc = pthread_mutex_trylock(&l->mutex);
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

int xichan__lock(struct xichan_shm *shm, struct xichan_lock *l, xichan_repair_fn repair, void *arg,
                 uint32_t sid, int64_t deadline_ns)
{
    int rc;

    /* A relaxed read is enough: a stale 0 only means we find out below. */
    if (xa_load_relaxed(&l->broken))
        return XICHAN_EBROKEN;
    if (deadline_ns != XICHAN_FOREVER && xichan__fault_fail(XICHAN_FAULT_FAIL_LOCK))
        return XICHAN_ETIMEDOUT;
    rc = lock_raw(l, deadline_ns);
    if (rc == 0) {
        l->holder_sid = sid;
        return 0;
    }
    if (rc == ETIMEDOUT)
        return XICHAN_ETIMEDOUT;
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
    /* ENOTRECOVERABLE, or EINVAL from a scribbled mutex. */
    xa_store_relaxed(&l->broken, 1);
    return XICHAN_EBROKEN;
}

void xichan__unlock(struct xichan_lock *l)
{
    l->holder_sid = 0;
    pthread_mutex_unlock(&l->mutex);
}
