/*
 * test_wait.c -- futex waits and wakes (wait.c), deadlines and error names
 * (errors.c).
 *
 * Timing bounds are loose on the "not too late" side (a loaded CI machine)
 * and exact on the "not too early" side (a futex timeout never fires early).
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"

#define MS 1000000ll

static int64_t ms_since(int64_t t0)
{
    return (xichan_now_ns() - t0) / MS;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ------------------------------------------------------------- timing */

static void test_wait_word_already_changed_returns_zero_at_once(void **state)
{
    xichan_atomic_u32 word = 5;
    int64_t t0 = xichan_now_ns();

    ut_ok(xichan__wait(&word, 4, xichan_now_ns() + 5000 * MS, NULL));
    ut_ok(xichan__wait(&word, 4, XICHAN_FOREVER, NULL));
    assert_true(ms_since(t0) < UT_HANG_MS);
    assert_int_equal(word, 5);
}

static void test_wait_deadline_50ms_times_out_after_it(void **state)
{
    xichan_atomic_u32 word = 1;
    int64_t t0 = xichan_now_ns(), ms;

    ut_err(xichan__wait(&word, 1, t0 + 50 * MS, NULL), XICHAN_ETIMEDOUT);
    ms = ms_since(t0);
    assert_true(ms >= 50);
    assert_true(ms < 50 + UT_HANG_MS);
}

static void test_wait_nowait_times_out_at_once(void **state)
{
    xichan_atomic_u32 word = 1;
    int64_t t0 = xichan_now_ns();

    ut_err(xichan__wait(&word, 1, XICHAN_NOWAIT, NULL), XICHAN_ETIMEDOUT);
    ut_err(xichan__wait(&word, 1, t0 - 1000 * MS, NULL), XICHAN_ETIMEDOUT);
    ut_err(xichan__wait(&word, 1, INT64_MIN, NULL), XICHAN_ETIMEDOUT);
    assert_true(ms_since(t0) < UT_HANG_MS);
}

/* ------------------------------------------------------ thread wakeups */

struct bumper {
    xichan_atomic_u32 *seq, *waiters;
    int delay_ms;
    int wake_only; /* 1: FUTEX_WAKE without changing the word */
};

static void *bump_later(void *arg)
{
    struct bumper *b = arg;

    sleep_ms(b->delay_ms);
    if (b->wake_only)
        xichan__wake(b->seq, INT32_MAX);
    else
        xichan__notify(b->seq, b->waiters, 1);
    return NULL;
}

static void test_wait_thread_notify_wakes_the_waiter(void **state)
{
    xichan_atomic_u32 seq = 7, waiters = 1;
    struct bumper b = {&seq, &waiters, 20, 0};
    pthread_t t;
    int64_t t0 = xichan_now_ns(), ms;

    assert_int_equal(pthread_create(&t, NULL, bump_later, &b), 0);
    ut_ok(xichan__wait(&seq, 7, t0 + 5000 * MS, NULL));
    ms = ms_since(t0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(seq, 8);
    assert_true(ms >= 15); /* it did wait for the bump */
    assert_true(ms < 2000);
}

static void test_wait_forever_is_woken_by_notify(void **state)
{
    xichan_atomic_u32 seq = UINT32_MAX, waiters = 1; /* the bump wraps to 0 */
    struct bumper b = {&seq, &waiters, 20, 0};
    pthread_t t;
    int64_t t0 = xichan_now_ns();

    assert_int_equal(pthread_create(&t, NULL, bump_later, &b), 0);
    ut_ok(xichan__wait(&seq, UINT32_MAX, XICHAN_FOREVER, NULL));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(seq, 0);
    assert_true(ms_since(t0) < 2000);
}

static void test_wait_plain_wake_returns_zero_for_a_recheck(void **state)
{
    xichan_atomic_u32 seq = 3, waiters = 0;
    struct bumper b = {&seq, &waiters, 20, 1};
    pthread_t t;
    int64_t t0 = xichan_now_ns();

    assert_int_equal(pthread_create(&t, NULL, bump_later, &b), 0);
    ut_ok(xichan__wait(&seq, 3, t0 + 5000 * MS, NULL));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(seq, 3);
    assert_true(ms_since(t0) < 2000);
}

static void test_notify_bumps_the_word_even_without_waiters(void **state)
{
    xichan_atomic_u32 seq = 10, waiters = 0;

    xichan__notify(&seq, &waiters, 1);
    assert_int_equal(seq, 11);
    xichan__notify(&seq, &waiters, INT32_MAX);
    assert_int_equal(seq, 12);
    assert_int_equal(waiters, 0);
}

/* ----------------------------------------------------- process wakeups */

static void test_wait_child_process_is_woken_by_the_parent(void **state)
{
    struct xichan_obj *o = &shm->objects[0];
    uint32_t v = xa_load_relaxed(&o->put_seq);
    int64_t t0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int64_t c0 = xichan_now_ns();
        int rc;

        alarm(10);
        xa_add_relaxed(&o->getters, 1);
        rc = xichan__wait(&o->put_seq, v, c0 + 5000 * MS, NULL);
        xa_sub_relaxed(&o->getters, 1);
        if (rc != 0)
            _exit(2);
        if (xa_load_relaxed(&o->put_seq) == v)
            _exit(3); /* returned without a change */
        _exit(ms_since(c0) < 4000 ? 0 : 4);
    }
    /* Wait until the child raised its hint, then give it time to sleep. */
    t0 = xichan_now_ns();
    while (xa_load_relaxed(&o->getters) == 0) {
        assert_true(ms_since(t0) < 5000);
        sleep_ms(1);
    }
    sleep_ms(50);
    xichan__notify(&o->put_seq, &o->getters, 1);
    ut_child_exit(pid, 0);
    assert_int_equal(xa_load_relaxed(&o->getters), 0);
    assert_int_equal(xa_load_relaxed(&o->put_seq), v + 1);
}

/* ----------------------------------------------------------- interrupt */

struct checker {
    int calls;
    int stop_at; /* returns 1 on this call; 0 never */
};

static int check_cb(void *arg)
{
    struct checker *c = arg;

    c->calls++;
    return c->stop_at && c->calls >= c->stop_at;
}

static void test_wait_interrupt_check_stops_the_wait_with_eintr(void **state)
{
    xichan_atomic_u32 word = 1;
    struct checker c = {0, 3};
    struct xichan_waiter w = {check_cb, &c, 10};
    int64_t t0 = xichan_now_ns(), ms;

    ut_err(xichan__wait(&word, 1, t0 + 5000 * MS, &w), XICHAN_EINTR);
    ms = ms_since(t0);
    assert_int_equal(c.calls, 3);
    assert_true(ms >= 30);
    assert_true(ms < 30 + UT_HANG_MS);
}

static void test_wait_interrupt_check_that_never_stops_times_out(void **state)
{
    xichan_atomic_u32 word = 1;
    struct checker c = {0, 0};
    struct xichan_waiter w = {check_cb, &c, 10};
    int64_t t0 = xichan_now_ns(), ms;

    ut_err(xichan__wait(&word, 1, t0 + 100 * MS, &w), XICHAN_ETIMEDOUT);
    ms = ms_since(t0);
    assert_true(ms >= 100);
    assert_true(ms < 100 + UT_HANG_MS);
    assert_true(c.calls >= 1);
    assert_true(c.calls <= 10);
}

static void test_wait_interrupt_check_is_not_called_when_woken(void **state)
{
    xichan_atomic_u32 seq = 0, waiters = 1;
    struct bumper b = {&seq, &waiters, 5, 0};
    struct checker c = {0, 1};
    struct xichan_waiter w = {check_cb, &c, 1000};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, bump_later, &b), 0);
    ut_ok(xichan__wait(&seq, 0, xichan_now_ns() + 5000 * MS, &w));
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.calls, 0);
}

static void test_wait_waiter_without_check_ignores_period(void **state)
{
    xichan_atomic_u32 word = 1;
    struct xichan_waiter w = {NULL, NULL, 1};
    int64_t t0 = xichan_now_ns();

    ut_err(xichan__wait(&word, 1, t0 + 30 * MS, &w), XICHAN_ETIMEDOUT);
    assert_true(ms_since(t0) >= 30);
}

/* ----------------------------------------------------------- deadlines */

static void test_deadline_zero_negative_and_nan_are_nowait(void **state)
{
    assert_int_equal(xichan_deadline(0), XICHAN_NOWAIT);
    assert_int_equal(xichan_deadline(-0.0), XICHAN_NOWAIT);
    assert_int_equal(xichan_deadline(-1), XICHAN_NOWAIT);
    assert_int_equal(xichan_deadline(-INFINITY), XICHAN_NOWAIT);
    assert_int_equal(xichan_deadline(NAN), XICHAN_NOWAIT);
}

static void test_deadline_infinity_and_huge_are_forever(void **state)
{
    assert_int_equal(xichan_deadline(INFINITY), XICHAN_FOREVER);
    assert_int_equal(xichan_deadline(1e30), XICHAN_FOREVER);
    assert_int_equal(xichan_deadline(9.3e9), XICHAN_FOREVER); /* > INT64_MAX ns */
}

static void test_deadline_seconds_from_now(void **state)
{
    int64_t before = xichan_now_ns(), d = xichan_deadline(1.5), after = xichan_now_ns();

    assert_true(d >= before + 1500 * MS);
    assert_true(d <= after + 1500 * MS);
    assert_true(d < before + 1600 * MS);
    d = xichan_deadline(1e-9);
    assert_true(d > 0 && d != XICHAN_FOREVER);
}

static void test_now_is_monotonic(void **state)
{
    int64_t a = xichan_now_ns(), b = xichan_now_ns();

    assert_true(a > 0);
    assert_true(b >= a);
}

/* -------------------------------------------------------------- errors */

static void test_every_error_code_has_a_message_and_name(void **state)
{
    static const struct {
        int code;
        const char *name;
    } codes[] = {
#define XX(name, value, msg) {value, "XICHAN_" #name},
        XICHAN_ERRNO_MAP(XX)
#undef XX
    };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *msg = xichan_strerror(codes[i].code);
        const char *name = xichan_err_name(codes[i].code);

        assert_true(codes[i].code < 0);
        assert_non_null(msg);
        assert_true(msg[0] != 0);
        assert_string_not_equal(msg, xichan_strerror(-999999));
        assert_non_null(name);
        assert_true(strncmp(name, "XICHAN_E", 8) == 0);
        assert_string_equal(name, codes[i].name);
        assert_string_not_equal(name, "XICHAN_E?");
        /* Codes are distinct. */
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(codes[i].code, codes[j].code);
    }
}

static void test_unknown_error_code_gets_generic_name_and_message(void **state)
{
    static const int unknown[] = {1, 42, -2, -1015, -999999, INT32_MIN, INT32_MAX};

    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_string_equal(xichan_err_name(unknown[i]), "XICHAN_E?");
        assert_non_null(xichan_strerror(unknown[i]));
        assert_true(xichan_strerror(unknown[i])[0] != 0);
    }
    assert_non_null(xichan_strerror(0));
    assert_string_equal(xichan_err_name(0), "0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_word_already_changed_returns_zero_at_once),
        cmocka_unit_test(test_wait_deadline_50ms_times_out_after_it),
        cmocka_unit_test(test_wait_nowait_times_out_at_once),
        cmocka_unit_test(test_wait_thread_notify_wakes_the_waiter),
        cmocka_unit_test(test_wait_forever_is_woken_by_notify),
        cmocka_unit_test(test_wait_plain_wake_returns_zero_for_a_recheck),
        cmocka_unit_test(test_notify_bumps_the_word_even_without_waiters),
        cmocka_unit_test_setup_teardown(test_wait_child_process_is_woken_by_the_parent, ut_seg_setup,
                                        ut_seg_teardown),
        cmocka_unit_test(test_wait_interrupt_check_stops_the_wait_with_eintr),
        cmocka_unit_test(test_wait_interrupt_check_that_never_stops_times_out),
        cmocka_unit_test(test_wait_interrupt_check_is_not_called_when_woken),
        cmocka_unit_test(test_wait_waiter_without_check_ignores_period),
        cmocka_unit_test(test_deadline_zero_negative_and_nan_are_nowait),
        cmocka_unit_test(test_deadline_infinity_and_huge_are_forever),
        cmocka_unit_test(test_deadline_seconds_from_now),
        cmocka_unit_test(test_now_is_monotonic),
        cmocka_unit_test(test_every_error_code_has_a_message_and_name),
        cmocka_unit_test(test_unknown_error_code_gets_generic_name_and_message),
    };

    alarm(30);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
