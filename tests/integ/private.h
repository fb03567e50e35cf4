/*
 * private.h -- for tests that play every part themselves on a private
 * segment (no daemon): fault_sweep.c, fault_fail.c, corrupt_fifo_tail.c,
 * corrupt_heap_walk.c, purge_crash.c.
 *
 * CHECK(cond, fmt, ...) names the condition and exits 1 when it fails;
 * private_segment() creates a segment of geometry g that only this process
 * (and its children) map: its name is unlinked at once;
 * private_client() opens a session on it the way the daemon would and
 * returns a client for it (the caller frees it);
 * private_check_locks() checks that no lock of the segment is left broken.
 * A forked child is waited for with the harness's xt_wait (bounded):
 * XT_KILLED is what it returns for a child that SIGKILL ended.
 */
#ifndef XICHAN_TEST_PRIVATE_H
#define XICHAN_TEST_PRIVATE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <signal.h>

#include "harness.h"
#include "internal.h"

#define XT_KILLED (128 + SIGKILL)

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline struct xichan_shm *private_segment(const char *tag,
                                                const struct xichan_shm_geometry *g)
{
    struct xichan_shm *shm;
    char name[64];

    snprintf(name, sizeof(name), "/xichan-%s-%d", tag, (int)getpid());
    CHECK(xichan__shm_create(name, g, &shm) == 0, "create segment %s", name);
    xichan__shm_unlink(name);
    return shm;
}

static inline xichan_client *private_client(struct xichan_shm *shm, const char *kind)
{
    xichan_client *cl = calloc(1, sizeof(*cl));

    CHECK(cl, "calloc");
    CHECK(xichan__session_new(shm, getpid(), getuid(), kind, &cl->slot, &cl->sid) == 0,
          "session_new");
    cl->shm = shm;
    cl->fd = -1;
    cl->pid = getpid();
    return cl;
}

/* No lock of shm is marked broken: every holder that died was repaired
 * (when names the moment, in the message). */
static inline void private_check_locks(struct xichan_shm *shm, const char *when)
{
    CHECK(!xa_load_relaxed(&shm->hdr->table_lock.broken), "%s: table lock broken", when);
    CHECK(!xa_load_relaxed(&shm->hdr->heap_lock.broken), "%s: heap lock broken", when);
    for (uint32_t i = 0; i < shm->nobjects; i++)
        CHECK(!xa_load_relaxed(&shm->objects[i].lock.broken), "%s: object %u lock broken", when,
              i);
}

#endif
