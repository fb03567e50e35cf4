/*
 * private.h -- for tests that play every part themselves on a private
 * segment (no daemon): fault_sweep.c, fault_fail.c.
 *
 * CHECK(cond, fmt, ...) names the condition and exits 1 when it fails;
 * private_client() opens a session on the segment the way the daemon would
 * and returns a client for it (the caller frees it).
 */
#ifndef XICHAN_TEST_PRIVATE_H
#define XICHAN_TEST_PRIVATE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

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

#endif
