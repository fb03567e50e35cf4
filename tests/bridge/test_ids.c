/*
 * test_ids.c -- the bridge's recent-id table (bridge/ids.c): ids are found
 * after they are added, the oldest go when it is full, the table outlives
 * its process (reopened from the file, as by a bridge started after one
 * was killed), and a file that is not a table starts afresh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void id(char *buf, int i)
{
    snprintf(buf, 64, "m1:18f00:%d:%d", i % 7, i);
}

int main(void)
{
    char path[] = "/tmp/xichan-ids-XXXXXX", buf[64];
    struct ids *t;
    pid_t pid;
    int fd = mkstemp(path), st;
    FILE *f;

    CHECK(fd >= 0);
    close(fd);
    CHECK(ids_open(&t, path, 16) == 0);
    for (int i = 0; i < 20; i++) {
        id(buf, i);
        CHECK(!ids_seen(t, buf));
        ids_add(t, buf);
        CHECK(ids_seen(t, buf));
    }
    for (int i = 0; i < 20; i++) {
        id(buf, i);
        CHECK(ids_seen(t, buf) == (i >= 4)); /* 16 entries: 0..3 went */
    }
    ids_close(t);
    /* A process that adds and is killed: what it added is in the file. */
    if ((pid = fork()) == 0) {
        struct ids *c;
        if (ids_open(&c, path, 16))
            _exit(2);
        ids_add(c, "after-crash");
        abort();
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
    CHECK(ids_open(&t, path, 16) == 0);
    CHECK(ids_seen(t, "after-crash"));
    id(buf, 4);
    CHECK(!ids_seen(t, buf)); /* the oldest made room */
    id(buf, 19);
    CHECK(ids_seen(t, buf));
    ids_close(t);
    /* Another capacity, or a file that is not a table: afresh. */
    CHECK(ids_open(&t, path, 32) == 0);
    CHECK(!ids_seen(t, "after-crash"));
    ids_close(t);
    CHECK((f = fopen(path, "r+")) && fwrite("garbage!", 1, 8, f) == 8 && fclose(f) == 0);
    CHECK(ids_open(&t, path, 32) == 0);
    id(buf, 19);
    CHECK(!ids_seen(t, buf));
    ids_close(t);
    unlink(path);
    printf("ids: 1 passed, 0 failed\n");
    return 0;
}
