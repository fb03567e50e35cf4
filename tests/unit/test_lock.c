/*
 * test_lock.c -- the robust-mutex wrapper (lock.c): repair after a dead
 * holder, broken locks, deadlines, stopped holders (a real SIGSTOPped
 * child), a scribbled mutex word, and the holder_sid diagnosis field.
 *
 * The other process is a forked child that takes a lock in the segment; the
 * parent and child synchronise over pipes, and every child has an alarm so a
 * failing test cannot leave it behind.
 */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "unit.h"

/* ----------------------------------------------------------- helpers */

struct repair_log {
    int calls;
    int result;
    struct xichan_shm *shm_seen;
};

static int count_repair(struct xichan_shm *s, void *arg)
{
    struct repair_log *log = arg;

    log->calls++;
    log->shm_seen = s;
    return log->result;
}

static int64_t ms_since(int64_t t0)
{
    return (xichan_now_ns() - t0) / 1000000;
}

/* A child that takes l as session sid and exits without unlocking. */
static void child_dies_holding(struct xichan_lock *l, uint32_t sid)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        if (xichan__lock(shm, l, NULL, NULL, sid, XICHAN_FOREVER, NULL))
            _exit(2);
        _exit(0);
    }
    ut_child_exit(pid, 0);
    assert_int_equal(l->holder_sid, sid); /* left behind by the dead holder */
}

/* A live child that holds l until it reads from release_fd. */
struct holder {
    pid_t pid;
    int release_fd; /* parent's write end: close it to let the child unlock */
};

static struct holder child_holds(struct xichan_lock *l, uint32_t sid)
{
    int ready[2], release[2];
    struct holder h;
    char c;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(release), 0);
    fflush(NULL);
    h.pid = fork();
    assert_true(h.pid >= 0);
    if (h.pid == 0) {
        alarm(10);
        close(ready[0]);
        close(release[1]);
        if (xichan__lock(shm, l, NULL, NULL, sid, XICHAN_FOREVER, NULL))
            _exit(2);
        if (write(ready[1], "k", 1) != 1)
            _exit(3);
        while (read(release[0], &c, 1) < 0 && errno == EINTR)
            ;
        xichan__unlock(l);
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    h.release_fd = release[1];
    return h;
}

static void holder_release(struct holder *h)
{
    close(h->release_fd);
    ut_child_exit(h->pid, 0);
}

/* ------------------------------------------------------------- basics */

static void test_lock_init_leaves_it_free_and_unbroken(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;

    assert_int_equal(xa_load_relaxed(&l->broken), 0);
    assert_int_equal(l->holder_sid, 0);
    ut_ok(xichan__lock_init(l)); /* re-initialising a free lock is harmless */
    ut_ok(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, NULL));
    xichan__unlock(l);
}

static void test_lock_unlock_basic(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;
    struct repair_log log = {0, 0, NULL};

    for (int i = 0; i < 3; i++) {
        ut_ok(xichan__lock(shm, l, count_repair, &log, 3, XICHAN_FOREVER, NULL));
        xichan__unlock(l);
    }
    ut_ok(xichan__lock(shm, l, count_repair, &log, 3, XICHAN_NOWAIT, NULL)); /* free: no wait */
    xichan__unlock(l);
    ut_ok(xichan__lock(shm, l, count_repair, &log, 3, xichan_now_ns() + 1000000000, NULL));
    xichan__unlock(l);
    assert_int_equal(log.calls, 0);
}

static void test_lock_sets_holder_sid_while_held(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;

    ut_ok(xichan__lock(shm, l, NULL, NULL, 42, XICHAN_FOREVER, NULL));
    assert_int_equal(l->holder_sid, 42);
    xichan__unlock(l);
    assert_int_equal(l->holder_sid, 0);
}

static void test_lock_holder_sid_shows_another_process(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;
    struct holder h = child_holds(l, 17);

    assert_int_equal(l->holder_sid, 17);
    holder_release(&h);
    assert_int_equal(l->holder_sid, 0);
}

/* -------------------------------------------------------- dead holder */

static void test_lock_dead_holder_runs_repair_once(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;
    struct repair_log log = {0, 0, NULL};

    child_dies_holding(l, 9);
    ut_ok(xichan__lock(shm, l, count_repair, &log, 1, XICHAN_FOREVER, NULL));
    assert_int_equal(log.calls, 1);
    assert_ptr_equal(log.shm_seen, shm);
    assert_int_equal(l->holder_sid, 1);
    xichan__unlock(l);
    /* Marked consistent: the next lock is an ordinary one. */
    ut_ok(xichan__lock(shm, l, count_repair, &log, 1, XICHAN_FOREVER, NULL));
    xichan__unlock(l);
    assert_int_equal(log.calls, 1);
    assert_int_equal(xa_load_relaxed(&l->broken), 0);
}

static void test_lock_dead_holder_with_deadline_runs_repair(void **state)
{
    struct xichan_lock *l = &shm->objects[2].lock;
    struct repair_log log = {0, 0, NULL};

    child_dies_holding(l, 9);
    ut_ok(xichan__lock(shm, l, count_repair, &log, 1, xichan_now_ns() + 1000000000, NULL));
    assert_int_equal(log.calls, 1);
    xichan__unlock(l);
}

static void test_lock_dead_holder_without_repair_fn_recovers(void **state)
{
    struct xichan_lock *l = &shm->objects[3].lock;

    child_dies_holding(l, 9);
    ut_ok(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, NULL));
    xichan__unlock(l);
    ut_ok(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, NULL));
    xichan__unlock(l);
}

static void test_lock_failed_repair_breaks_the_lock(void **state)
{
    struct xichan_lock *l = &shm->objects[1].lock;
    struct repair_log bad = {0, XICHAN_ECORRUPT, NULL}, good = {0, 0, NULL};
    int64_t t0;

    child_dies_holding(l, 9);
    ut_err(xichan__lock(shm, l, count_repair, &bad, 1, XICHAN_FOREVER, NULL), XICHAN_EBROKEN);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(xa_load_relaxed(&l->broken), 1);
    /* Every later call fails at once, without another repair. */
    t0 = xichan_now_ns();
    for (int i = 0; i < 5; i++) {
        ut_err(xichan__lock(shm, l, count_repair, &good, 1, XICHAN_FOREVER, NULL), XICHAN_EBROKEN);
        ut_err(xichan__lock(shm, l, count_repair, &good, 1, XICHAN_NOWAIT, NULL), XICHAN_EBROKEN);
    }
    assert_true(ms_since(t0) < UT_HANG_MS);
    assert_int_equal(good.calls, 0);
    assert_int_equal(bad.calls, 1);
    /* Unlocked without consistent(): the mutex itself is unrecoverable. */
    assert_int_equal(pthread_mutex_trylock(&l->mutex), ENOTRECOVERABLE);
    /* Other locks are unaffected. */
    ut_ok(xichan__lock(shm, &shm->objects[0].lock, NULL, NULL, 1, XICHAN_FOREVER, NULL));
    xichan__unlock(&shm->objects[0].lock);
}

static void test_lock_unrecoverable_mutex_is_ebroken(void **state)
{
    struct xichan_lock *l = &shm->objects[4].lock;

    child_dies_holding(l, 9);
    /* Someone took it and unlocked without consistent(): ENOTRECOVERABLE. */
    assert_int_equal(pthread_mutex_lock(&l->mutex), EOWNERDEAD);
    pthread_mutex_unlock(&l->mutex);
    assert_int_equal(xa_load_relaxed(&l->broken), 0);
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, NULL), XICHAN_EBROKEN);
    assert_int_equal(xa_load_relaxed(&l->broken), 1);
}

/* A repairer that dies mid-repair leaves the lock to be repaired again. */
static int die_in_repair(struct xichan_shm *s, void *arg)
{
    _exit(5);
}

static void test_lock_repairer_that_dies_leaves_it_for_the_next(void **state)
{
    struct xichan_lock *l = &shm->objects[5].lock;
    struct repair_log log = {0, 0, NULL};
    pid_t pid;

    child_dies_holding(l, 9);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        xichan__lock(shm, l, die_in_repair, NULL, 10, XICHAN_FOREVER, NULL);
        _exit(0); /* repair was not called */
    }
    ut_child_exit(pid, 5);
    assert_int_equal(l->holder_sid, 10);
    ut_ok(xichan__lock(shm, l, count_repair, &log, 1, XICHAN_FOREVER, NULL));
    assert_int_equal(log.calls, 1);
    xichan__unlock(l);
    assert_int_equal(xa_load_relaxed(&l->broken), 0);
}

/* ----------------------------------------------------------- deadlines */

static void test_lock_past_deadline_on_sleeping_holder_gives_up_with_elocked(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;
    struct repair_log log = {0, 0, NULL};
    struct holder h = child_holds(l, 9);

    /* The holder sleeps (in read) with the lock held: each waits the grace, then ELOCKED. */
    ut_err(xichan__lock(shm, l, count_repair, &log, 1, xichan_now_ns() - 1000000, NULL),
           XICHAN_ELOCKED);
    ut_err(xichan__lock(shm, l, count_repair, &log, 1, XICHAN_NOWAIT, NULL), XICHAN_ELOCKED);
    ut_err(xichan__lock(shm, l, count_repair, &log, 1, 1, NULL), XICHAN_ELOCKED);
    assert_int_equal(l->holder_sid, 9); /* a failed attempt changes nothing */
    assert_int_equal(log.calls, 0);
    holder_release(&h);
    /* A clean unlock by the holder: no repair. */
    ut_ok(xichan__lock(shm, l, count_repair, &log, 1, XICHAN_NOWAIT, NULL));
    xichan__unlock(l);
    assert_int_equal(log.calls, 0);
}

/* A holder that runs (spins) with the lock held gets the slow bound, not the grace. */
static void test_lock_running_holder_gets_the_slow_bound(void **state)
{
    struct xichan_lock *l = &shm->objects[4].lock;
    volatile int *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int ready[2];
    int64_t t0;
    pid_t pid;
    char c;

    assert_true(go != MAP_FAILED);
    assert_int_equal(pipe(ready), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        if (xichan__lock(shm, l, NULL, NULL, 9, XICHAN_FOREVER, NULL))
            _exit(2);
        if (write(ready[1], "k", 1) != 1)
            _exit(3);
        while (!*go)
            ; /* running, in its section */
        xichan__unlock(l);
        _exit(0);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);
    t0 = xichan_now_ns();
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_NOWAIT, NULL), XICHAN_ELOCKED);
    assert_true(ms_since(t0) >= XICHAN_LOCK_SLOW_MS); /* never gives up before */
    assert_non_null(strstr(xichan_strerror(XICHAN_ELOCKED), "too long"));
    *go = 1;
    ut_child_exit(pid, 0);
    close(ready[0]);
    close(ready[1]);
    munmap((void *)go, 4096);
}

static void test_lock_future_deadline_on_held_lock_gives_up_after_it(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;
    struct holder h = child_holds(l, 9);
    int64_t t0 = xichan_now_ns();

    ut_err(xichan__lock(shm, l, NULL, NULL, 1, t0 + 50 * 1000000, NULL), XICHAN_ELOCKED);
    assert_true(ms_since(t0) >= 50); /* never before the deadline */
    holder_release(&h);
}

/*
 * A deadline before the epoch of CLOCK_MONOTONIC is still "in the past": the
 * attempt must give up and leave the lock as healthy as it found it.
 */
static void test_lock_negative_deadline_on_held_lock_gives_up_without_breaking(void **state)
{
    struct xichan_lock *l = &shm->objects[6].lock;
    struct holder h = child_holds(l, 9);
    int rc = xichan__lock(shm, l, NULL, NULL, 1, -1, NULL);

    holder_release(&h);
    if (rc == 0)
        xichan__unlock(l);
    ut_err(rc, XICHAN_ELOCKED);
    assert_int_equal(xa_load_relaxed(&l->broken), 0);
    ut_ok(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, NULL));
    xichan__unlock(l);
}

/* ------------------------------------------------- stopped holders */

static void test_lock_stopped_holder_fails_nowait_naming_its_pid(void **state)
{
    struct xichan_lock *l = &shm->objects[1].lock;
    struct holder h = child_holds(l, 9);
    struct xichan_lock_holder who;
    char want[32];
    int64_t t0;

    assert_int_equal(kill(h.pid, SIGSTOP), 0);
    /* Wait until /proc says stopped (the signal is asynchronous). */
    for (int i = 0; i < 5000; i++) {
        ut_ok(xichan__lock_holder(l, &who));
        if (who.stopped)
            break;
        usleep(1000);
    }
    assert_true(who.stopped);
    assert_int_equal(who.pid, h.pid);
    t0 = xichan_now_ns();
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_NOWAIT, NULL), XICHAN_ELOCKED);
    snprintf(want, sizeof(want), "process %d,", (int)h.pid);
    assert_non_null(strstr(xichan_strerror(XICHAN_ELOCKED), want));
    assert_non_null(strstr(xichan_strerror(XICHAN_ELOCKED), "stopped"));
    /* A deadline 100 ms out is kept, and not stretched to the slow bound. */
    t0 = xichan_now_ns();
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, t0 + 100 * 1000000, NULL), XICHAN_ELOCKED);
    assert_true(ms_since(t0) >= 100);
    assert_true(ms_since(t0) < 5000); /* hang bound */
    assert_int_equal(kill(h.pid, SIGCONT), 0);
    holder_release(&h);
    ut_ok(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_NOWAIT, NULL));
    xichan__unlock(l);
}

static int stop_after_three(void *arg)
{
    return ++*(int *)arg >= 3;
}

static void test_lock_forever_wait_on_stopped_holder_ends_on_interrupt(void **state)
{
    struct xichan_lock *l = &shm->objects[2].lock;
    struct holder h = child_holds(l, 9);
    int calls = 0;
    struct xichan_waiter w = {stop_after_three, &calls, 5};

    assert_int_equal(kill(h.pid, SIGSTOP), 0);
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, &w), XICHAN_EINTR);
    assert_int_equal(calls, 3);
    assert_int_equal(kill(h.pid, SIGCONT), 0);
    holder_release(&h);
}

/* A pid that no process has now: a child's, reaped. */
static pid_t vanished_pid(void)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return pid;
}

static void test_lock_word_naming_no_thread_is_ecorrupt_not_a_hang(void **state)
{
    struct xichan_lock *l = &shm->objects[3].lock;
    struct xichan_lock_holder who;
    int calls = 0;
    struct xichan_waiter w = {stop_after_three, &calls, 1000};

    /* A scribble: the word says "held by thread N", and N does not exist. */
    l->mutex.__data.__lock = (int)vanished_pid();
    ut_err(xichan__lock_holder(l, &who), XICHAN_ECORRUPT);
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_FOREVER, &w), XICHAN_ECORRUPT);
    assert_non_null(strstr(xichan_strerror(XICHAN_ECORRUPT), "does not exist"));
    assert_int_equal(xa_load_relaxed(&l->broken), 0); /* a call fails, not the object */
    /* Held with no owner at all is no mutex state either. */
    l->mutex.__data.__lock = (int)0x80000000u; /* FUTEX_WAITERS alone */
    ut_err(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_NOWAIT, NULL), XICHAN_ECORRUPT);
    l->mutex.__data.__lock = 0;
    ut_ok(xichan__lock(shm, l, NULL, NULL, 1, XICHAN_NOWAIT, NULL));
    xichan__unlock(l);
}

static void test_lock_waits_for_a_live_holder_to_unlock(void **state)
{
    struct xichan_lock *l = &shm->objects[0].lock;
    struct repair_log log = {0, 0, NULL};
    struct holder h = child_holds(l, 9);

    /* Let the child go; our lock waits for its unlock, not a timeout. */
    close(h.release_fd);
    ut_ok(xichan__lock(shm, l, count_repair, &log, 1, xichan_now_ns() + 5000000000ll, NULL));
    assert_int_equal(l->holder_sid, 1);
    xichan__unlock(l);
    ut_child_exit(h.pid, 0);
    assert_int_equal(log.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, ut_seg_setup, ut_seg_teardown)
        T(test_lock_init_leaves_it_free_and_unbroken),
        T(test_lock_unlock_basic),
        T(test_lock_sets_holder_sid_while_held),
        T(test_lock_holder_sid_shows_another_process),
        T(test_lock_dead_holder_runs_repair_once),
        T(test_lock_dead_holder_with_deadline_runs_repair),
        T(test_lock_dead_holder_without_repair_fn_recovers),
        T(test_lock_failed_repair_breaks_the_lock),
        T(test_lock_unrecoverable_mutex_is_ebroken),
        T(test_lock_repairer_that_dies_leaves_it_for_the_next),
        T(test_lock_past_deadline_on_sleeping_holder_gives_up_with_elocked),
        T(test_lock_running_holder_gets_the_slow_bound),
        T(test_lock_future_deadline_on_held_lock_gives_up_after_it),
        T(test_lock_negative_deadline_on_held_lock_gives_up_without_breaking),
        T(test_lock_stopped_holder_fails_nowait_naming_its_pid),
        T(test_lock_forever_wait_on_stopped_holder_ends_on_interrupt),
        T(test_lock_word_naming_no_thread_is_ecorrupt_not_a_hang),
        T(test_lock_waits_for_a_live_holder_to_unlock),
#undef T
    };

    alarm(30);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
