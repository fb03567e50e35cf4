/*
 * test_channel.c -- channels through the public API, in one process, with
 * in-process sessions standing in for interpreters (unit.h).  The numbers in
 * comments are tests/python/CHECKLIST.md items.
 */
#include <pthread.h>
#include <time.h>

#include "unit.h"

static xichan_chan_id mkc(int op)
{
    xichan_chan_opts o = {.unboundop = op};
    xichan_chan_id c;

    ut_ok(xichan_chan_create(cl, &o, &c));
    return c;
}

static void send_int(xichan_client *c, xichan_chan_id ch, int v, int op)
{
    int rc = xichan_chan_send_nowait(c, ch, XICHAN_FMT_RAW, &v, sizeof(v), op);

    if (rc < 0)
        fail_msg("send_nowait: %s", xichan_err_name(rc));
}

static int recv_int(xichan_client *c, xichan_chan_id ch)
{
    xichan_item it;
    int v;

    ut_ok(xichan_chan_recv(c, ch, &it, XICHAN_NOWAIT));
    memcpy(&v, it.data, sizeof(v));
    xichan_item_release(&it);
    return v;
}

static int64_t ms_since(int64_t t0)
{
    return (xichan_now_ns() - t0) / 1000000;
}

/* ----------------------------------------------------------- basics */

/* 3 */
static void test_chan_ids_start_at_zero_and_are_never_reused(void **state)
{
    xichan_chan_id a = mkc(0), b = mkc(0), c;

    assert_int_equal(a.id, 0);
    assert_int_equal(b.id, 1);
    ut_ok(xichan_chan_destroy(cl, b));
    c = mkc(0);
    assert_int_equal(c.id, 2);
}

/* 28, 29, 39 */
static void test_chan_send_nowait_is_fifo_and_counts(void **state)
{
    xichan_client *s2 = ut_client(shm);
    xichan_chan_id c = mkc(0);

    send_int(cl, c, 1, 0);
    send_int(s2, c, 2, 0);
    send_int(cl, c, 3, 0);
    assert_int_equal(xichan_chan_count(cl, c), 3);
    assert_int_equal(recv_int(cl, c), 1);
    assert_int_equal(recv_int(cl, c), 2);
    assert_int_equal(recv_int(cl, c), 3);
    ut_client_end(s2);
}

/* 30 */
static void test_chan_recv_empty_returns_eempty(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_item it;

    ut_err(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
}

/* 33, 34 */
static void test_chan_send_timeout_withdraws_item(void **state)
{
    xichan_chan_id c = mkc(0);
    int v = 5;
    int64_t t0 = xichan_now_ns();

    ut_err(xichan_chan_send(cl, c, 0, &v, sizeof(v), 0, xichan_deadline(0.2)), XICHAN_ETIMEDOUT);
    assert_true(ms_since(t0) >= 200 && ms_since(t0) < 1500);
    assert_int_equal(xichan_chan_count(cl, c), 0);
    t0 = xichan_now_ns();
    ut_err(xichan_chan_send(cl, c, 0, &v, sizeof(v), 0, XICHAN_NOWAIT), XICHAN_ETIMEDOUT);
    assert_true(ms_since(t0) < UT_HANG_MS);
    assert_int_equal(xichan_chan_count(cl, c), 0);
}

/* 37 */
static void test_chan_recv_timeout(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_item it;
    int64_t t0 = xichan_now_ns();

    ut_err(xichan_chan_recv(cl, c, &it, xichan_deadline(0.2)), XICHAN_EEMPTY);
    assert_true(ms_since(t0) >= 200 && ms_since(t0) < 1500);
}

struct peer {
    xichan_client *c;
    xichan_chan_id ch;
    int delay_ms;
    int what; /* 0 recv, 1 send, 2 force close, 3 close, 4 destroy */
    int rc;
    int value;
    int64_t done_ns;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    struct timespec ts = {0, p->delay_ms * 1000000L};
    xichan_item it;

    nanosleep(&ts, NULL);
    switch (p->what) {
    case 0:
        p->rc = xichan_chan_recv(p->c, p->ch, &it, xichan_deadline(5));
        if (!p->rc) {
            memcpy(&p->value, it.data, sizeof(int));
            xichan_item_release(&it);
        }
        break;
    case 1:
        p->rc = xichan_chan_send(p->c, p->ch, 0, &p->value, sizeof(int), 0, xichan_deadline(5));
        break;
    case 2:
        p->rc = xichan_chan_close(p->c, p->ch, XICHAN_CLOSE_FORCE);
        break;
    case 3:
        p->rc = xichan_chan_close(p->c, p->ch, 0);
        break;
    case 4:
        p->rc = xichan_chan_destroy(p->c, p->ch);
        break;
    }
    p->done_ns = xichan_now_ns();
    return NULL;
}

/* Waits for the peer's thread, whose call must have succeeded, and ends
 * its session. */
static void peer_end(struct peer *p, pthread_t t)
{
    pthread_join(t, NULL);
    ut_ok(p->rc);
    ut_client_end(p->c);
}

/* 32: send blocks until its item is received, then returns promptly. */
static void test_chan_send_is_a_rendezvous(void **state)
{
    xichan_client *r = ut_client(shm);
    xichan_chan_id c = mkc(0);
    struct peer p = {r, c, 100, 0, 0, 0, 0};
    pthread_t t;
    int v = 77;
    int64_t t0 = xichan_now_ns();

    pthread_create(&t, NULL, peer_main, &p);
    ut_ok(xichan_chan_send(cl, c, 0, &v, sizeof(v), 0, xichan_deadline(5)));
    assert_true(ms_since(t0) >= 90);
    peer_end(&p, t);
    assert_int_equal(p.value, 77);
    assert_int_equal(xichan_chan_count(cl, c), 0);
}

/* 40: a blocked recv gets an item sent by another session. */
static void test_chan_blocked_recv_wakes_on_send(void **state)
{
    xichan_client *s = ut_client(shm);
    xichan_chan_id c = mkc(0);
    struct peer p = {s, c, 50, 1, 0, 9, 0};
    pthread_t t;
    xichan_item it;

    pthread_create(&t, NULL, peer_main, &p);
    ut_ok(xichan_chan_recv(cl, c, &it, xichan_deadline(5)));
    assert_int_equal(*(const int *)it.data, 9);
    xichan_item_release(&it);
    peer_end(&p, t);
}

/* §0.6: send_nowait returns 1 when a receiver was already blocked. */
static void test_chan_send_nowait_reports_a_waiting_receiver(void **state)
{
    xichan_client *r = ut_client(shm);
    xichan_chan_id c = mkc(0);
    struct peer p = {r, c, 0, 0, 0, 0, 0};
    pthread_t t;
    int v = 3;

    assert_int_equal(xichan_chan_send_nowait(cl, c, 0, &v, sizeof(v), 0), 0);
    assert_int_equal(recv_int(cl, c), 3);
    pthread_create(&t, NULL, peer_main, &p);
    for (int i = 0; i < 500 && xa_load_relaxed(&shm->objects[0].receivers) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(xichan_chan_send_nowait(cl, c, 0, &v, sizeof(v), 0), 1);
    peer_end(&p, t);
}

/* A send (recv with recv) blocks on a new channel; a peer session does
 * what (peer_main's 2 force close, 3 close, 4 destroy) 80 ms later, and the
 * blocked call fails with ECLOSED. */
static void blocked_then_closed(int what, int recv)
{
    xichan_client *o = ut_client(shm);
    xichan_chan_id c = mkc(0);
    struct peer p = {o, c, 80, what, 0, 0, 0};
    pthread_t t;
    xichan_item it;
    int v = 1;

    pthread_create(&t, NULL, peer_main, &p);
    if (recv)
        ut_err(xichan_chan_recv(cl, c, &it, xichan_deadline(5)), XICHAN_ECLOSED);
    else
        ut_err(xichan_chan_send(cl, c, 0, &v, sizeof(v), 0, xichan_deadline(5)), XICHAN_ECLOSED);
    peer_end(&p, t);
}

/* 41: a blocked send fails with ECLOSED when the channel is force-closed. */
static void test_chan_force_close_wakes_blocked_sender(void **state)
{
    blocked_then_closed(2, 0);
}

/* 41 (destroy): a blocked send fails with ECLOSED when the channel is destroyed. */
static void test_chan_destroy_wakes_blocked_sender(void **state)
{
    blocked_then_closed(4, 0);
}

/* 42: a blocked recv fails with ECLOSED when the channel is closed. */
static void test_chan_close_wakes_blocked_receiver(void **state)
{
    blocked_then_closed(3, 1);
}

static int stop_now(void *arg)
{
    return 1;
}

/* 36: an interrupted send takes its item back out. */
static void test_chan_interrupted_send_withdraws_item(void **state)
{
    xichan_chan_id c = mkc(0);
    int v = 1;

    xichan_client_set_interrupt(cl, stop_now, NULL, 20);
    ut_err(xichan_chan_send(cl, c, 0, &v, sizeof(v), 0, xichan_deadline(5)), XICHAN_EINTR);
    xichan_client_set_interrupt(cl, NULL, NULL, 0);
    assert_int_equal(xichan_chan_count(cl, c), 0);
}

/* ---------------------------------------------------- close matrix */

/* 48, 49 */
static void test_chan_close_empty_closes_everything(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;
    xichan_item it;
    int v = 1;

    ut_ok(xichan_chan_close(cl, c, XICHAN_END_RECV));
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(info.closed && !info.open && !info.closing);
    ut_err(xichan_chan_send_nowait(cl, c, 0, &v, sizeof(v), 0), XICHAN_ECLOSED);
    ut_err(xichan_chan_send(cl, c, 0, &v, sizeof(v), 0, XICHAN_NOWAIT), XICHAN_ECLOSED);
    ut_err(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_ECLOSED);
    ut_err((int)xichan_chan_count(cl, c), XICHAN_ECLOSED);
    ut_err(xichan_chan_close(cl, c, 0), XICHAN_ECLOSED);
    ut_err(xichan_chan_sessions(cl, c, XICHAN_END_SEND, NULL, 0), XICHAN_ECLOSED);
}

/* 50, 51 */
static void test_chan_recv_close_of_nonempty_is_enotempty(void **state)
{
    xichan_chan_id c = mkc(0);

    send_int(cl, c, 1, 0);
    ut_err(xichan_chan_close(cl, c, XICHAN_END_RECV), XICHAN_ENOTEMPTY);
    ut_err(xichan_chan_close(cl, c, 0), XICHAN_ENOTEMPTY);
    ut_err(xichan_chan_close(cl, c, XICHAN_END_RECV | XICHAN_END_SEND), XICHAN_ENOTEMPTY);
    assert_int_equal(xichan_chan_count(cl, c), 1);
    assert_int_equal(recv_int(cl, c), 1);
}

/* 52, 53 */
static void test_chan_send_close_of_nonempty_drains_then_closes(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;
    xichan_item it;
    int v = 1;

    send_int(cl, c, 1, 0);
    send_int(cl, c, 2, 0);
    ut_ok(xichan_chan_close(cl, c, XICHAN_END_SEND));
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(!info.open && info.closing && !info.closed);
    ut_err(xichan_chan_send_nowait(cl, c, 0, &v, sizeof(v), 0), XICHAN_ECLOSED);
    ut_err(xichan_chan_close(cl, c, XICHAN_END_SEND), XICHAN_ECLOSED);
    assert_int_equal(recv_int(cl, c), 1);
    assert_int_equal(recv_int(cl, c), 2);
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(info.closed);
    ut_err(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_ECLOSED);
}

/* 54, 55 */
static void test_chan_force_close_drops_items(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;

    send_int(cl, c, 1, 0);
    send_int(cl, c, 2, 0);
    ut_ok(xichan_chan_close(cl, c, XICHAN_CLOSE_FORCE));
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(info.closed);
    assert_int_equal(info.count, 0);
    ut_heap_ok(shm);
    ut_ok(xichan_chan_destroy(cl, c));
    ut_err(xichan_chan_info_get(cl, c, &info), XICHAN_ENOTFOUND);
    ut_err(xichan_chan_close(cl, c, 0), XICHAN_ENOTFOUND);
}

/* 56 [F]: listing works while a closed channel exists. */
static void test_chan_list_with_closed_channel(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_obj_info info[4];

    mkc(0);
    ut_ok(xichan_chan_close(cl, c, 0));
    assert_int_equal(xichan_list(cl, info, 4), 2);
    assert_int_equal(info[0].state, XICHAN_STATE_CLOSED);
    assert_int_equal(info[0].kind, XICHAN_KIND_CHANNEL);
    assert_int_equal(info[1].state, XICHAN_STATE_OPEN);
}

/* ------------------------------------------------ release, association */

/* 57: the only associated session releasing its send end closes the channel. */
static void test_chan_release_by_only_sender_autocloses(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;

    send_int(cl, c, 1, 0);
    ut_ok(xichan_chan_release(cl, c, XICHAN_END_SEND));
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(info.closed);
}

/* 58 */
static void test_chan_released_recv_end_fails_but_can_send(void **state)
{
    xichan_client *other = ut_client(shm);
    xichan_chan_id c = mkc(0);
    xichan_item it;

    send_int(other, c, 1, 0); /* keeps an open association */
    ut_err(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), 0);
    xichan_item_release(&it);
    ut_ok(xichan_chan_release(cl, c, XICHAN_END_RECV));
    ut_err(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_ECLOSED);
    send_int(cl, c, 2, 0);
    assert_int_equal(recv_int(other, c), 2);
    ut_client_end(other);
}

/* 59 */
static void test_chan_release_of_missing_channel(void **state)
{
    xichan_chan_id c = {12345};

    ut_err(xichan_chan_release(cl, c, 0), XICHAN_ENOTFOUND);
    ut_err(xichan_chan_close(cl, c, 0), XICHAN_ENOTFOUND);
    ut_err(xichan_chan_release(cl, mkc(0), 8), XICHAN_EINVAL);
}

/* 60 */
static void test_chan_last_unbind_destroys_with_items(void **state)
{
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;

    send_int(cl, c, 1, 0);
    ut_ok(xichan_chan_unbind(cl, c));
    ut_err(xichan_chan_info_get(cl, c, &info), XICHAN_ENOTFOUND);
    ut_heap_ok(shm);
}

/* 62, 63 */
static void test_chan_association_is_lazy(void **state)
{
    xichan_client *r = ut_client(shm);
    xichan_chan_id c = mkc(0);
    xichan_item it;
    uint32_t sids[4];

    assert_int_equal(xichan_chan_sessions(cl, c, XICHAN_END_SEND, sids, 4), 0);
    assert_int_equal(xichan_chan_sessions(cl, c, XICHAN_END_RECV, sids, 4), 0);
    send_int(cl, c, 1, 0);
    assert_int_equal(xichan_chan_sessions(cl, c, XICHAN_END_SEND, sids, 4), 1);
    assert_int_equal(sids[0], xichan_client_session(cl));
    ut_ok(xichan_chan_recv(r, c, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    ut_err(xichan_chan_recv(r, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    assert_int_equal(xichan_chan_sessions(cl, c, XICHAN_END_RECV, sids, 4), 1);
    assert_int_equal(sids[0], xichan_client_session(r));
    ut_err(xichan_chan_sessions(cl, c, 3, sids, 4), XICHAN_EINVAL);
    ut_client_end(r);
}

/* 64, 66: a dead session drops out, and the channel auto-closes. */
/* CPython's auto-close, for an unbind (a destroyed subinterpreter). */
static void test_chan_unbound_producer_drops_out_and_autocloses(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;
    uint32_t sids[4];

    send_int(p, c, 1, 0);
    assert_int_equal(xichan_chan_sessions(cl, c, XICHAN_END_SEND, sids, 4), 1);
    ut_client_unbind(p);
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(info.closed);
    assert_int_equal(info.num_send, 0);
}

/*
 * The sole sender's process ends before anyone received: it drops out of
 * the association lists, but the channel stays open and its items stay.
 */
static void test_chan_ended_sole_sender_keeps_channel_and_items(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_chan_id c = mkc(XICHAN_UNBOUND_REMOVE);
    xichan_chan_info info;
    uint32_t sids[4];
    xichan_item it;

    send_int(p, c, 1, 0);
    send_int(p, c, 2, XICHAN_UNBOUND_ERROR);
    ut_client_end(p);
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_false(info.closed);
    assert_int_equal(info.count, 2);
    assert_int_equal(xichan_chan_sessions(cl, c, XICHAN_END_SEND, sids, 4), 0);
    for (int v = 1; v <= 2; v++) {
        ut_ok(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
        assert_false(it.unbound);
        assert_int_equal(*(const int *)it.data, v);
        xichan_item_release(&it);
    }
    /* Still open: another send and recv work. */
    send_int(cl, c, 3, 0);
    ut_ok(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
}

/* Auto-close needs an association that once existed. */
static void test_chan_unused_channel_does_not_autoclose(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_chan_id c;
    xichan_chan_info info;

    ut_ok(xichan_chan_create(p, NULL, &c));
    ut_ok(xichan_chan_bind(cl, c));
    ut_client_end(p);
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_true(info.open);
}

static void test_chan_info_counts_ends(void **state)
{
    xichan_client *r = ut_client(shm);
    xichan_chan_id c = mkc(0);
    xichan_chan_info info;
    xichan_item it;

    send_int(cl, c, 1, 0);
    ut_ok(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    ut_err(xichan_chan_recv(r, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    ut_ok(xichan_chan_release(r, c, XICHAN_END_RECV));
    ut_ok(xichan_chan_info_get(cl, c, &info));
    assert_int_equal(info.num_send, 1);
    assert_int_equal(info.num_recv, 1);
    assert_int_equal(info.num_recv_released, 1);
    assert_int_equal(info.num_both, 1);
    assert_true(info.send_associated && info.recv_associated);
    assert_false(info.send_released || info.recv_released);
    ut_client_end(r);
}

/* ----------------------------------------------------------- unbound */

/* 47, 102 */
static void test_chan_unbound_ops_apply_to_channel_items(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_chan_id c = mkc(XICHAN_UNBOUND_REPLACE);
    xichan_item it;

    ut_ok(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT) == XICHAN_EEMPTY ? 0 : -1);
    send_int(p, c, 1, 0);
    send_int(p, c, 2, XICHAN_UNBOUND_ERROR);
    send_int(p, c, 3, XICHAN_UNBOUND_REMOVE);
    ut_client_unbind(p); /* cl keeps the recv end open: no auto-close */
    assert_int_equal(xichan_chan_count(cl, c), 2);
    ut_ok(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
    assert_true(it.unbound);
    xichan_item_release(&it);
    assert_int_equal(xichan_chan_count(cl, c), 1);
    ut_err(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EUNBOUND);
    assert_int_equal(xichan_chan_count(cl, c), 0);
}

static void test_chan_named_open(void **state)
{
    xichan_chan_opts o = {.name = "events"};
    xichan_chan_id c, f;
    int op;

    ut_ok(xichan_chan_create(cl, &o, &c));
    ut_ok(xichan_chan_open(cl, "events", &f));
    assert_int_equal(c.id, f.id);
    ut_ok(xichan_chan_defaults(cl, c, &op));
    assert_int_equal(op, XICHAN_UNBOUND_REPLACE);
    ut_err(xichan_chan_open(cl, "nope", &f), XICHAN_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, ut_client_setup, ut_client_teardown)
        T(test_chan_ids_start_at_zero_and_are_never_reused),
        T(test_chan_send_nowait_is_fifo_and_counts),
        T(test_chan_recv_empty_returns_eempty),
        T(test_chan_send_timeout_withdraws_item),
        T(test_chan_recv_timeout),
        T(test_chan_send_is_a_rendezvous),
        T(test_chan_blocked_recv_wakes_on_send),
        T(test_chan_send_nowait_reports_a_waiting_receiver),
        T(test_chan_force_close_wakes_blocked_sender),
        T(test_chan_destroy_wakes_blocked_sender),
        T(test_chan_close_wakes_blocked_receiver),
        T(test_chan_interrupted_send_withdraws_item),
        T(test_chan_close_empty_closes_everything),
        T(test_chan_recv_close_of_nonempty_is_enotempty),
        T(test_chan_send_close_of_nonempty_drains_then_closes),
        T(test_chan_force_close_drops_items),
        T(test_chan_list_with_closed_channel),
        T(test_chan_release_by_only_sender_autocloses),
        T(test_chan_released_recv_end_fails_but_can_send),
        T(test_chan_release_of_missing_channel),
        T(test_chan_last_unbind_destroys_with_items),
        T(test_chan_association_is_lazy),
        T(test_chan_unbound_producer_drops_out_and_autocloses),
        T(test_chan_ended_sole_sender_keeps_channel_and_items),
        T(test_chan_unused_channel_does_not_autoclose),
        T(test_chan_info_counts_ends),
        T(test_chan_unbound_ops_apply_to_channel_items),
        T(test_chan_named_open),
#undef T
    };

    alarm(60);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
