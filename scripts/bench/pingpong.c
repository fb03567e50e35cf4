/*
 * pingpong.c -- cross-process round trips through xichan and through the
 * physical references, measured in one run.
 *
 *   pingpong [-n ROUNDS] [-s BYTES] [-m MODES] [-a CPU -b CPU] [--json]
 *
 * MODES is a comma list of: queue, channel, futex, spinfutex, pipe,
 * waitset1, waitset1000, waitsetfd1, waitsetfd1000 (default: the first five).  Two processes (a fork) bounce one item back and forth;
 * each round trip is timed on CLOCK_MONOTONIC and the table gives the
 * median, p99, p99.9 and max in microseconds.  -a/-b pin the two processes.
 *
 * queue:     two xichan queues, put/get (blocking get)
 * channel:   two xichan channels, send_nowait/recv (blocking recv)
 * futex:     a raw FUTEX_WAIT/FUTEX_WAKE ping-pong on a shared mapping
 * spinfutex: the same with a short spin before each wait
 * pipe:      two pipes, write/read
 * waitsetN:  the queue ping-pong, but the echoing process waits in a wait
 *            set of N queues (xichan_waitset_wait, then a nowait get)
 * waitsetfdN: the same waiting in poll() on the wait set's fd, then
 *            xichan_waitset_wait(NOWAIT) and a nowait get: the event-loop path
 */
#include <poll.h>
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xichan.h"

static long rounds = 100000;
static size_t size = 64;
static int cpu_a = -1, cpu_b = -1, json;

static void die(const char *what, int err)
{
    fprintf(stderr, "pingpong: %s: %s\n", what, err < 0 ? xichan_strerror(err) : strerror(err));
    exit(1);
}

static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        die("sched_setaffinity", errno);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

struct result {
    const char *mode;
    double p50, p99, p999, max;
};

static struct result summarise(const char *mode, int64_t *ns, long n)
{
    struct result r = {mode, 0, 0, 0, 0};

    qsort(ns, (size_t)n, sizeof(*ns), cmp_i64);
    r.p50 = ns[n / 2] / 1e3;
    r.p99 = ns[(long)(n * 0.99)] / 1e3;
    r.p999 = ns[(long)(n * 0.999)] / 1e3;
    r.max = ns[n - 1] / 1e3;
    return r;
}

/* ------------------------------------------------------------- xichan */

static xichan_client *open_client(void)
{
    xichan_client *cl;
    int err = xichan_client_open(&cl, NULL);

    if (err)
        die("xichan_client_open", err);
    return cl;
}

/* Waits in ws (through its fd if use_fd) until q0 (member 0) is ready. */
static void ws_wait(xichan_waitset *ws, int use_fd)
{
    xichan_ready r[4];
    int n;

    for (;;) {
        if (use_fd) {
            struct pollfd p = {.fd = xichan_waitset_fd(ws), .events = POLLIN};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                die("poll", errno);
            n = xichan_waitset_wait(ws, r, 4, XICHAN_NOWAIT);
        } else {
            n = xichan_waitset_wait(ws, r, 4, XICHAN_FOREVER);
        }
        if (n < 0)
            die("xichan_waitset_wait", n);
        for (int i = 0; i < n; i++)
            if (r[i].member == 0)
                return;
    }
}

/* members: 0 = the echoing process blocks in get; N > 0 = it waits in a
 * wait set of N queues; use_fd: through the set's fd and poll(). */
static struct result run_xichan_ws(int channel, int members, int use_fd, int64_t *ns,
                                   const char *label)
{
    xichan_client *cl = open_client();
    xichan_queue_id q[2];
    xichan_chan_id c[2];
    char *buf = calloc(1, size);
    pid_t pid;
    int err, status;

    for (int i = 0; i < 2; i++) {
        err = channel ? xichan_chan_create(cl, NULL, &c[i]) : xichan_queue_create(cl, NULL, &q[i]);
        if (err)
            die("create", err);
    }
    pid = fork();
    if (pid == 0) {
        /* The parent's session is not ours: open a fresh one. */
        xichan_client *me = open_client();
        xichan_waitset *ws = NULL;
        xichan_queue_id *others = calloc((size_t)members + 1, sizeof(*others));
        xichan_item it;

        pin(cpu_b);
        if (members) {
            if ((err = xichan_waitset_create(me, &ws)) ||
                (err = xichan_waitset_add_queue(ws, q[0], XICHAN_EV_READABLE, 0)) != 0)
                die("waitset", err);
            for (int k = 1; k < members; k++)
                if ((err = xichan_queue_create(me, NULL, &others[k])) ||
                    (err = xichan_waitset_add_queue(ws, others[k], XICHAN_EV_READABLE, 0)) < 0)
                    die("waitset member", err);
            if (use_fd && (err = xichan_waitset_fd(ws)) < 0)
                die("xichan_waitset_fd", err);
        }
        for (long i = 0; i < rounds + 1000; i++) {
            if (ws) {
                do
                    ws_wait(ws, use_fd);
                while ((err = xichan_queue_get(me, q[0], &it, XICHAN_NOWAIT)) == XICHAN_EEMPTY);
            } else {
                err = channel ? xichan_chan_recv(me, c[0], &it, XICHAN_FOREVER)
                              : xichan_queue_get(me, q[0], &it, XICHAN_FOREVER);
            }
            if (err)
                die("child get", err);
            err = channel ? xichan_chan_send_nowait(me, c[1], 0, it.data, it.len, 0)
                          : xichan_queue_put(me, q[1], 0, it.data, it.len, 0, XICHAN_FOREVER);
            xichan_item_release(&it);
            if (err < 0)
                die("child put", err);
        }
        xichan_waitset_destroy(ws);
        free(others);
        xichan_client_close(me);
        _exit(0);
    }
    pin(cpu_a);
    for (long i = 0; i < rounds + 1000; i++) {
        int64_t t0 = xichan_now_ns();
        xichan_item it;

        err = channel ? xichan_chan_send_nowait(cl, c[0], 0, buf, size, 0)
                      : xichan_queue_put(cl, q[0], 0, buf, size, 0, XICHAN_FOREVER);
        if (err < 0)
            die("put", err);
        err = channel ? xichan_chan_recv(cl, c[1], &it, XICHAN_FOREVER)
                      : xichan_queue_get(cl, q[1], &it, XICHAN_FOREVER);
        if (err)
            die("get", err);
        xichan_item_release(&it);
        if (i >= 1000) /* warm-up rounds are not counted */
            ns[i - 1000] = xichan_now_ns() - t0;
    }
    waitpid(pid, &status, 0);
    for (int i = 0; i < 2; i++)
        err = channel ? xichan_chan_destroy(cl, c[i]) : xichan_queue_destroy(cl, q[i]);
    xichan_client_close(cl);
    free(buf);
    pin(-1);
    return summarise(label, ns, rounds);
}

static struct result run_xichan(int channel, int64_t *ns)
{
    return run_xichan_ws(channel, 0, 0, ns, channel ? "xichan channel" : "xichan queue");
}

/* -------------------------------------------------------------- futex */

struct fpair {
    _Atomic uint32_t w[2];
    char data[2][65536];
};

static void fwait(_Atomic uint32_t *w, uint32_t v, int spin)
{
    for (int i = 0; spin && i < 20000; i++)
        if (atomic_load_explicit(w, memory_order_acquire) != v)
            return;
    while (atomic_load_explicit(w, memory_order_acquire) == v)
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void fpost(_Atomic uint32_t *w)
{
    atomic_fetch_add_explicit(w, 1, memory_order_release);
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static struct result run_futex(int spin, int64_t *ns)
{
    struct fpair *p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    size_t n = size < sizeof(p->data[0]) ? size : sizeof(p->data[0]);
    pid_t pid;
    int status;

    if (p == MAP_FAILED)
        die("mmap", errno);
    pid = fork();
    if (pid == 0) {
        pin(cpu_b);
        for (long i = 0; i < rounds + 1000; i++) {
            fwait(&p->w[0], (uint32_t)i, spin);
            memcpy(p->data[1], p->data[0], n);
            fpost(&p->w[1]);
        }
        _exit(0);
    }
    pin(cpu_a);
    for (long i = 0; i < rounds + 1000; i++) {
        int64_t t0 = xichan_now_ns();
        fpost(&p->w[0]);
        fwait(&p->w[1], (uint32_t)i, spin);
        if (i >= 1000)
            ns[i - 1000] = xichan_now_ns() - t0;
    }
    waitpid(pid, &status, 0);
    munmap(p, sizeof(*p));
    pin(-1);
    return summarise(spin ? "raw futex, spin first" : "raw futex", ns, rounds);
}

/* --------------------------------------------------------------- pipe */

static struct result run_pipe(int64_t *ns)
{
    int ab[2], ba[2], status;
    char *buf = calloc(1, size);
    pid_t pid;

    if (pipe(ab) < 0 || pipe(ba) < 0)
        die("pipe", errno);
    pid = fork();
    if (pid == 0) {
        pin(cpu_b);
        for (long i = 0; i < rounds + 1000; i++) {
            size_t got = 0;
            while (got < size) {
                ssize_t r = read(ab[0], buf + got, size - got);
                if (r <= 0)
                    _exit(1);
                got += (size_t)r;
            }
            if (write(ba[1], buf, size) != (ssize_t)size)
                _exit(1);
        }
        _exit(0);
    }
    pin(cpu_a);
    for (long i = 0; i < rounds + 1000; i++) {
        int64_t t0 = xichan_now_ns();
        size_t got = 0;
        if (write(ab[1], buf, size) != (ssize_t)size)
            die("write", errno);
        while (got < size) {
            ssize_t r = read(ba[0], buf + got, size - got);
            if (r <= 0)
                die("read", errno);
            got += (size_t)r;
        }
        if (i >= 1000)
            ns[i - 1000] = xichan_now_ns() - t0;
    }
    waitpid(pid, &status, 0);
    close(ab[0]);
    close(ab[1]);
    close(ba[0]);
    close(ba[1]);
    free(buf);
    pin(-1);
    return summarise("pipe", ns, rounds);
}

int main(int argc, char **argv)
{
    const char *modes = "queue,channel,futex,spinfutex,pipe";
    struct result res[12];
    int nres = 0;
    int64_t *ns;
    char *m, *save, *list;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            rounds = atol(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            size = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            modes = argv[++i];
        else if (!strcmp(argv[i], "-a") && i + 1 < argc)
            cpu_a = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            cpu_b = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            fprintf(stderr, "usage: pingpong [-n ROUNDS] [-s BYTES] [-m queue,channel,futex,"
                            "spinfutex,pipe,waitset1,waitset1000,waitsetfd1,waitsetfd1000] "
                            "[-a CPU -b CPU] [--json]\n");
            return 2;
        }
    }
    if (rounds < 10 || size < 1) {
        fprintf(stderr, "pingpong: need -n >= 10 and -s >= 1\n");
        return 2;
    }
    ns = calloc((size_t)rounds, sizeof(*ns));
    list = strdup(modes);
    for (m = strtok_r(list, ",", &save); m && nres < 12; m = strtok_r(NULL, ",", &save)) {
        if (!strcmp(m, "queue"))
            res[nres++] = run_xichan(0, ns);
        else if (!strcmp(m, "channel"))
            res[nres++] = run_xichan(1, ns);
        else if (!strcmp(m, "futex"))
            res[nres++] = run_futex(0, ns);
        else if (!strcmp(m, "spinfutex"))
            res[nres++] = run_futex(1, ns);
        else if (!strcmp(m, "pipe"))
            res[nres++] = run_pipe(ns);
        else if (!strcmp(m, "waitset1"))
            res[nres++] = run_xichan_ws(0, 1, 0, ns, "queue, waitset of 1");
        else if (!strcmp(m, "waitset1000"))
            res[nres++] = run_xichan_ws(0, 1000, 0, ns, "queue, waitset of 1000");
        else if (!strcmp(m, "waitsetfd1"))
            res[nres++] = run_xichan_ws(0, 1, 1, ns, "queue, waitset fd of 1");
        else if (!strcmp(m, "waitsetfd1000"))
            res[nres++] = run_xichan_ws(0, 1000, 1, ns, "queue, waitset fd of 1000");
        else {
            fprintf(stderr, "pingpong: unknown mode '%s'\n", m);
            return 2;
        }
    }
    if (json) {
        printf("{\"rounds\":%ld,\"size\":%zu,\"cpu_a\":%d,\"cpu_b\":%d,\"results\":[", rounds, size,
               cpu_a, cpu_b);
        for (int i = 0; i < nres; i++)
            printf("%s{\"mode\":\"%s\",\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
                   "\"max_us\":%.2f}",
                   i ? "," : "", res[i].mode, res[i].p50, res[i].p99, res[i].p999, res[i].max);
        printf("]}\n");
    } else {
        printf("round trip, %zu-byte items, %ld rounds, cpus %d/%d (-1: unpinned)\n", size, rounds,
               cpu_a, cpu_b);
        printf("%-24s %10s %10s %10s %10s\n", "mode", "p50 us", "p99 us", "p99.9 us", "max us");
        for (int i = 0; i < nres; i++)
            printf("%-24s %10.2f %10.2f %10.2f %10.2f\n", res[i].mode, res[i].p50, res[i].p99,
                   res[i].p999, res[i].max);
    }
    free(list);
    free(ns);
    return 0;
}
