/*
 * waitset.c -- wait sets across processes: readiness is level-triggered and
 * never consumes; the fd polls readable when a put in another process makes
 * a member ready; queues, bounded queues and channels; a destroyed object
 * reports CLOSED; the two-step channel send; 1000 members; and crash
 * safety: a process killed -9 while registered (repeatedly), and one
 * killed between claiming a registration and linking it (fault point
 * WSET_CLAIMED), leave no registration or wait set behind once the daemon
 * has cleaned up, and the objects they watched work as before.
 */
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define NQ 1000

static xichan_queue_id q[NQ];
static xt_pipe_t ready_p, go_p;

static int regs_of(xichan_client *cl, uint32_t sid)
{
    int n = 0;

    for (uint32_t i = 0; i < cl->shm->nwregs; i++)
        if (sid ? xa_load_relaxed(&cl->shm->wregs[i].sid) == sid
                : xa_load_relaxed(&cl->shm->wregs[i].sid) != 0)
            n++;
    return n;
}

static int wsets_in_use(xichan_client *cl)
{
    int n = 0;

    for (uint32_t i = 0; i < cl->shm->nwsets; i++)
        n += xa_load_relaxed(&cl->shm->wsets[i].owner) != 0;
    return n;
}

/* Waits (bounded) until the daemon has cleaned up every other session's
 * registrations and wait sets. */
static void await_clean(xichan_client *cl, int own_regs, int own_sets)
{
    double t0 = xt_now();

    while (regs_of(cl, 0) != own_regs || wsets_in_use(cl) != own_sets) {
        if (xt_now() - t0 > 10)
            xt__fail(__FILE__, __LINE__, "left behind: %d registrations, %d wait sets",
                     regs_of(cl, 0) - own_regs, wsets_in_use(cl) - own_sets);
        xt_sleep_ms(5);
    }
}

static void put_one(void *arg)
{
    xichan_client *cl;
    int k = (int)(long)arg;

    XT_OK(xichan_client_open(&cl, NULL));
    xt_await(&go_p, 10000);
    XT_OK(xichan_queue_put(cl, q[k], 0, "x", 1, 0, XICHAN_NOWAIT));
    xichan_client_close(cl);
}

static xichan_waitset *stale_ws;

static void stale_child(void *arg)
{
    xichan_ready r[1];

    XT_ERR(xichan_waitset_wait(stale_ws, r, 1, XICHAN_NOWAIT), XICHAN_ESTALE);
    XT_ERR(xichan_waitset_add_queue(stale_ws, q[0], XICHAN_EV_READABLE, 0), XICHAN_ESTALE);
    XT_ERR(xichan_waitset_fd(stale_ws), XICHAN_ESTALE);
    xichan_waitset_destroy(stale_ws);
}

static void test_level_triggered_across_processes(xichan_client *cl)
{
    xichan_waitset *ws;
    xichan_ready r[4];
    xichan_item it;
    struct pollfd p;
    pid_t pid;
    int m[3], fd;

    XT_OK(xichan_waitset_create(cl, &ws));
    for (int i = 0; i < 3; i++)
        XT_CHECK((m[i] = xichan_waitset_add_queue(ws, q[i], XICHAN_EV_READABLE, 100 + i)) >= 0);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 0);
    XT_ERR(xichan_waitset_wait(ws, r, 4, xichan_now_ns() + 20000000), XICHAN_ETIMEDOUT);
    XT_CHECK((fd = xichan_waitset_fd(ws)) >= 0);
    p = (struct pollfd){.fd = fd, .events = POLLIN};
    XT_EQ_INT(poll(&p, 1, 0), 0);

    /* A put in another process makes the fd readable. */
    pid = xt_fork(put_one, (void *)1L);
    xt_signal(&go_p);
    XT_EQ_INT(poll(&p, 1, 10000), 1);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_EQ_INT(r[0].member, m[1]);
    XT_EQ_INT(r[0].events, XICHAN_EV_READABLE);
    XT_EQ_INT(r[0].user, 101);
    /* Level-triggered: still there, still reported, fd still readable. */
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_FOREVER), 1);
    XT_EQ_INT(poll(&p, 1, 0), 1);
    XT_OK(xichan_queue_get(cl, q[1], &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 0);
    XT_EQ_INT(poll(&p, 1, 0), 0);

    /* A blocking wait is woken by another process's put. */
    pid = xt_fork(put_one, (void *)2L);
    xt_signal(&go_p);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, xichan_now_ns() + 10000000000ll), 1);
    XT_EQ_INT(r[0].member, m[2]);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    XT_OK(xichan_queue_get(cl, q[2], &it, XICHAN_NOWAIT));
    xichan_item_release(&it);

    /* A removed member is not reported. */
    XT_OK(xichan_waitset_remove(ws, m[0]));
    XT_ERR(xichan_waitset_remove(ws, m[0]), XICHAN_ENOTFOUND);
    XT_OK(xichan_queue_put(cl, q[0], 0, "y", 1, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 0);
    XT_OK(xichan_queue_get(cl, q[0], &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    /* A forked child cannot use the parent's set; destroying its copy
     * leaves the parent's registrations alone. */
    stale_ws = ws;
    pid = xt_fork(stale_child, NULL);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    XT_EQ_INT(regs_of(cl, cl->sid), 2);
    xichan_waitset_destroy(ws);
    XT_EQ_INT(regs_of(cl, cl->sid), 0);
    printf("level-triggered across processes, fd and blocking wait, fork: ok\n");
}

static void test_writable_closed_and_channels(xichan_client *cl)
{
    xichan_queue_opts qo = {.maxsize = 1};
    xichan_waitset *ws;
    xichan_queue_id bq, gone;
    xichan_chan_id c;
    xichan_ready r[4];
    xichan_item it;
    uint64_t ticket;
    int mw, mg, mr, ms;

    XT_OK(xichan_waitset_create(cl, &ws));
    XT_OK(xichan_queue_create(cl, &qo, &bq));
    XT_CHECK((mw = xichan_waitset_add_queue(ws, bq, XICHAN_EV_WRITABLE, 0)) >= 0);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_EQ_INT(r[0].events, XICHAN_EV_WRITABLE);
    XT_OK(xichan_queue_put(cl, bq, 0, "a", 1, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 0);
    XT_OK(xichan_queue_get(cl, bq, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_OK(xichan_waitset_remove(ws, mw));

    /* Destroyed: CLOSED, asked or not. */
    XT_OK(xichan_queue_create(cl, NULL, &gone));
    XT_CHECK((mg = xichan_waitset_add_queue(ws, gone, XICHAN_EV_READABLE, 7)) >= 0);
    XT_OK(xichan_queue_destroy(cl, gone));
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_EQ_INT(r[0].events, XICHAN_EV_CLOSED);
    XT_OK(xichan_waitset_remove(ws, mg));
    XT_ERR(xichan_waitset_add_queue(ws, gone, XICHAN_EV_READABLE, 0), XICHAN_ENOTFOUND);
    XT_ERR(xichan_waitset_add_queue(ws, bq, 0, 0), XICHAN_EINVAL);
    XT_ERR(xichan_waitset_add_queue(ws, bq, 64, 0), XICHAN_EINVAL);

    /* Channels: readable with an item; the two-step send. */
    XT_OK(xichan_chan_create(cl, NULL, &c));
    XT_CHECK((mr = xichan_waitset_add_chan(ws, c, XICHAN_EV_READABLE, 1)) >= 0);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 0);
    XT_EQ_INT(xichan_chan_send_start(cl, c, 0, "s", 1, 0, &ticket), 0);
    XT_EQ_INT(xichan_chan_send_check(cl, c, ticket), XICHAN_EEMPTY);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_EQ_INT(r[0].member, mr);
    XT_OK(xichan_waitset_remove(ws, mr));
    XT_CHECK((ms = xichan_waitset_add_chan(ws, c, XICHAN_EV_WRITABLE, 2)) >= 0);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 0);
    XT_OK(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_EQ_INT(r[0].member, ms);
    XT_EQ_INT(xichan_chan_send_check(cl, c, ticket), 0);
    XT_EQ_INT(xichan_chan_send_cancel(cl, c, ticket), 1);
    /* Cancelled before a receiver came: withdrawn, nobody sees it. */
    XT_EQ_INT(xichan_chan_send_start(cl, c, 0, "t", 1, 0, &ticket), 0);
    XT_EQ_INT(xichan_chan_send_cancel(cl, c, ticket), 0);
    XT_ERR(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    /* Closed: reported CLOSED. */
    XT_OK(xichan_chan_close(cl, c, 0));
    XT_EQ_INT(xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT), 1);
    XT_CHECK(r[0].events & XICHAN_EV_CLOSED);
    xichan_waitset_destroy(ws);
    XT_OK(xichan_queue_destroy(cl, bq));
    printf("writable, closed, channels and the two-step send: ok\n");
}

static void test_thousand_members(xichan_client *cl)
{
    xichan_waitset *ws;
    xichan_ready r[8];
    xichan_item it;

    XT_OK(xichan_waitset_create(cl, &ws));
    for (int i = 0; i < NQ; i++)
        XT_EQ_INT(xichan_waitset_add_queue(ws, q[i], XICHAN_EV_READABLE, (uint64_t)i), i);
    for (int k = 0; k < 50; k++) {
        int i = (k * 397) % NQ;
        XT_OK(xichan_queue_put(cl, q[i], 0, "z", 1, 0, XICHAN_NOWAIT));
        XT_EQ_INT(xichan_waitset_wait(ws, r, 8, XICHAN_FOREVER), 1);
        XT_EQ_INT(r[0].user, i);
        XT_OK(xichan_queue_get(cl, q[i], &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
        XT_EQ_INT(xichan_waitset_wait(ws, r, 8, XICHAN_NOWAIT), 0);
    }
    xichan_waitset_destroy(ws);
    printf("1000 members: the one made ready, each time: ok\n");
}

#define PP_ROUNDS 20000

/* Echoes q[3] -> q[4], waiting in poll() on a wait set's fd. */
static void fd_echo(void *arg)
{
    xichan_client *cl;
    xichan_waitset *ws;
    xichan_ready r[2];
    xichan_item it;
    struct pollfd p;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_waitset_create(cl, &ws));
    XT_EQ_INT(xichan_waitset_add_queue(ws, q[3], XICHAN_EV_READABLE, 0), 0);
    p = (struct pollfd){.fd = xichan_waitset_fd(ws), .events = POLLIN};
    XT_CHECK(p.fd >= 0);
    for (int i = 0; i < PP_ROUNDS;) {
        XT_CHECK(poll(&p, 1, 10000) == 1); /* a lost wake fails here, not in the timeout */
        XT_CHECK(xichan_waitset_wait(ws, r, 2, XICHAN_NOWAIT) >= 0);
        while (xichan_queue_get(cl, q[3], &it, XICHAN_NOWAIT) == 0) {
            XT_OK(xichan_queue_put(cl, q[4], 0, it.data, it.len, 0, XICHAN_NOWAIT));
            xichan_item_release(&it);
            i++;
        }
    }
    xichan_waitset_destroy(ws);
    xichan_client_close(cl);
}

/* The event-loop path under a storm: every wake through the eventfd. */
static void test_fd_ping_pong(xichan_client *cl)
{
    xichan_item it;
    pid_t pid = xt_fork(fd_echo, NULL);

    for (int i = 0; i < PP_ROUNDS; i++) {
        XT_OK(xichan_queue_put(cl, q[3], 0, &i, sizeof(i), 0, XICHAN_NOWAIT));
        XT_OK(xichan_queue_get(cl, q[4], &it, xichan_now_ns() + 10000000000ll));
        XT_CHECK(it.len == sizeof(i) && memcmp(it.data, &i, sizeof(i)) == 0);
        xichan_item_release(&it);
    }
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    printf("%d round trips through a wait set's fd: ok\n", PP_ROUNDS);
}

/* Registers on q[0] and waits until killed. */
static void registered_waiter(void *arg)
{
    xichan_client *cl;
    xichan_waitset *ws;
    xichan_ready r[1];

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_waitset_create(cl, &ws));
    XT_CHECK(xichan_waitset_add_queue(ws, q[0], XICHAN_EV_READABLE, 0) >= 0);
    XT_CHECK(xichan_waitset_add_queue(ws, q[1], XICHAN_EV_READABLE | XICHAN_EV_WRITABLE, 0) >= 0);
    if (arg)
        XT_CHECK(xichan_waitset_fd(ws) >= 0);
    xt_signal(&ready_p);
    for (;;)
        xichan_waitset_wait(ws, r, 1, XICHAN_FOREVER);
}

/* Dies at the fault point, between claiming a registration and linking it. */
static void dies_claiming(void *arg)
{
    xichan_client *cl;
    xichan_waitset *ws;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_waitset_create(cl, &ws));
    xichan__fault_set(XICHAN_FAULT_WSET_CLAIMED, 1);
    xichan_waitset_add_queue(ws, q[0], XICHAN_EV_READABLE, 0);
    _exit(3); /* not reached when the point fires */
}

static void test_killed_waiters_leave_nothing(xichan_client *cl)
{
    xichan_item it;
    pid_t pid;
    int rounds = 20;

    for (int k = 0; k < rounds; k++) {
        pid = xt_fork(registered_waiter, (void *)(long)(k & 1));
        XT_EQ_INT(xt_await(&ready_p, 10000), 0);
        XT_EQ_INT(regs_of(cl, 0), 2);
        XT_OK(xichan_queue_put(cl, q[0], 0, "k", 1, 0, XICHAN_NOWAIT));
        xt_kill9(pid);
        await_clean(cl, 0, 0);
        XT_OK(xichan_queue_get(cl, q[0], &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
    }
    pid = xt_fork(dies_claiming, NULL);
    XT_EQ_INT(xt_wait(pid, 10000), 128 + SIGKILL);
    await_clean(cl, 0, 0);
    /* The watched queues carry no chain any more: a put costs what it did. */
    for (int i = 0; i < 2; i++) {
        struct xichan_objref ref;
        XT_OK(xichan__resolve(cl, XICHAN_KIND_QUEUE, q[i].id, &ref));
        XT_EQ_INT(xa_load_relaxed(&ref.o->whead), 0);
    }
    printf("%d waiters killed -9 while registered, one killed claiming: nothing left\n", rounds);
}

int main(void)
{
    xichan_client *cl;

    alarm(120);
    xt_pipe_init(&ready_p);
    xt_pipe_init(&go_p);
    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    for (int i = 0; i < NQ; i++)
        XT_OK(xichan_queue_create(cl, NULL, &q[i]));
    test_level_triggered_across_processes(cl);
    test_writable_closed_and_channels(cl);
    test_thousand_members(cl);
    test_fd_ping_pong(cl);
    test_killed_waiters_leave_nothing(cl);
    xichan_client_close(cl);
    return 0;
}
