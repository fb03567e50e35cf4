/*
 * workers.c -- the C demo: a pool of worker processes fed through xichan.
 *
 *   workers [-w WORKERS] [-n JOBS]
 *
 * The parent creates two named queues, "demo.jobs" (bounded) and
 * "demo.results", and forks WORKERS processes.  Each worker opens its own
 * session, finds the queues by name, and turns every job -- a msgpack array
 * [id, text] -- into a result [id, pid, fnv1a(text)].  The parent checks
 * that every job was answered exactly once and prints the throughput.  The
 * named queues stay in the namespace afterwards, so `xichanctl list` shows
 * what the demo used.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xichan.h"

static void die(const char *what, int err)
{
    fprintf(stderr, "workers: %s: %s\n", what, xichan_strerror(err));
    exit(1);
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void worker(void)
{
    xichan_client *cl;
    xichan_queue_id jobs, results;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int err;

    if ((err = xichan_client_open(&cl, &(xichan_client_opts){.kind = "demo-worker"})))
        die("worker open", err);
    if ((err = xichan_queue_open(cl, "demo.jobs", &jobs)) ||
        (err = xichan_queue_open(cl, "demo.results", &results)))
        die("worker open queues", err);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (;;) {
        xichan_item it;
        msgpack_unpacked up;
        msgpack_object *o;

        if ((err = xichan_queue_get(cl, jobs, &it, XICHAN_FOREVER)))
            die("worker get", err);
        msgpack_unpacked_init(&up);
        err = xichan_item_unpack(&it, &up);
        xichan_item_release(&it);
        if (err)
            die("worker unpack", err);
        o = &up.data;
        if (o->type == MSGPACK_OBJECT_NIL) { /* the stop marker */
            msgpack_unpacked_destroy(&up);
            break;
        }
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint64(&pk, o->via.array.ptr[0].via.u64);
        msgpack_pack_int(&pk, getpid());
        msgpack_pack_uint64(&pk, fnv1a(o->via.array.ptr[1].via.str.ptr,
                                       o->via.array.ptr[1].via.str.size));
        msgpack_unpacked_destroy(&up);
        if ((err = xichan_queue_put_msgpack(cl, results, &sb, XICHAN_FOREVER)))
            die("worker put", err);
    }
    msgpack_sbuffer_destroy(&sb);
    xichan_client_close(cl);
}

int main(int argc, char **argv)
{
    int nworkers = 4, njobs = 20000, err, status, bad = 0, nseen = 0;
    int tty = isatty(STDOUT_FILENO);
    xichan_client *cl;
    xichan_queue_id jobs, results;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned char *seen;
    pid_t pids[64];
    int64_t t0;
    double secs;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-w") && i + 1 < argc)
            nworkers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            njobs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: workers [-w WORKERS] [-n JOBS]\n");
            return 2;
        }
    }
    if (nworkers < 1 || nworkers > 64 || njobs < 1) {
        fprintf(stderr, "workers: need 1..64 workers and at least one job\n");
        return 2;
    }
    if ((err = xichan_client_open(&cl, &(xichan_client_opts){.kind = "demo"})))
        die("open", err);
    /* Named, so they outlive this process for `xichanctl list` to show. */
    if ((err = xichan_queue_open(cl, "demo.jobs", &jobs)) &&
        (err = xichan_queue_create(cl, &(xichan_queue_opts){.maxsize = 256, .name = "demo.jobs"},
                                   &jobs)))
        die("create demo.jobs", err);
    if ((err = xichan_queue_open(cl, "demo.results", &results)) &&
        (err = xichan_queue_create(cl, &(xichan_queue_opts){.name = "demo.results"}, &results)))
        die("create demo.results", err);

    printf("xichan demo: %d worker processes, %d jobs through queue %llu, results through %llu\n",
           nworkers, njobs, (unsigned long long)jobs.id, (unsigned long long)results.id);
    fflush(stdout);
    for (int i = 0; i < nworkers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            worker();
            _exit(0);
        }
    }
    seen = calloc((size_t)njobs, 1);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    t0 = xichan_now_ns();
    for (int i = 0, got = 0; got < njobs;) {
        xichan_item it;
        /* Feed while there is room, and drain results as they come. */
        while (i < njobs) {
            char text[64];
            int n = snprintf(text, sizeof(text), "job %d of the xichan demo", i);
            msgpack_sbuffer_clear(&sb);
            msgpack_pack_array(&pk, 2);
            msgpack_pack_uint64(&pk, (uint64_t)i);
            msgpack_pack_str_with_body(&pk, text, (size_t)n);
            err = xichan_queue_put_msgpack(cl, jobs, &sb, XICHAN_NOWAIT);
            if (err == XICHAN_EFULL)
                break;
            if (err)
                die("put job", err);
            i++;
        }
        err = xichan_queue_get(cl, results, &it, xichan_deadline(10));
        if (err)
            die("get result", err);
        {
            msgpack_unpacked up;
            uint64_t id;
            msgpack_unpacked_init(&up);
            if ((err = xichan_item_unpack(&it, &up)))
                die("unpack result", err);
            id = up.data.via.array.ptr[0].via.u64;
            if (id >= (uint64_t)njobs || seen[id]++)
                bad++;
            msgpack_unpacked_destroy(&up);
        }
        xichan_item_release(&it);
        got++;
        nseen++;
        /* Redrawn in place on a terminal only: in a log, \r runs together. */
        if (tty && got % (njobs / 10 ? njobs / 10 : 1) == 0) {
            printf("\r  %3d%% of jobs answered", (int)(100LL * got / njobs));
            fflush(stdout);
        }
    }
    secs = (xichan_now_ns() - t0) / 1e9;
    for (int i = 0; i < nworkers; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_nil(&pk);
        if ((err = xichan_queue_put_msgpack(cl, jobs, &sb, XICHAN_FOREVER)))
            die("put stop", err);
    }
    for (int i = 0; i < nworkers; i++)
        waitpid(pids[i], &status, 0);
    printf("%s  %d jobs answered exactly once: %s; %.0f jobs/s (%.3f s)\n", tty ? "\n" : "",
           nseen, bad ? "NO" : "yes", njobs / secs, secs);
    msgpack_sbuffer_destroy(&sb);
    free(seen);
    xichan_client_close(cl);
    return bad ? 1 : 0;
}
