/*
 * ids.c -- the recent-id table: the JetStream message ids of the last N
 * items this bridge put into its local queues, so that a message JetStream
 * delivers again (an acknowledgement that was lost, or a bridge that died
 * after putting the item and before acknowledging it) is acknowledged and
 * dropped instead of being put twice.
 *
 * The table is a ring of N fixed-size entries in a file mapped shared
 * (<runtime-dir>/<ns>.bridge-ids), so it outlives the bridge process: the
 * page cache keeps what a SIGKILLed bridge wrote.  It does not outlive the
 * machine, and needs not: the local queue does not either.  A hash index
 * over the ring lives in memory and is rebuilt from the file at start.
 *
 * CRASH ARGUMENT.  One writer (the bridge, under its ids_lock).  An id is
 * written into its entry, then `next` moves past it: the store of next
 * commits.  A bridge that dies before it leaves the old entry count, and
 * the id is not recorded: the window of a duplicate (span.c puts the item,
 * then records its id, then acknowledges).  A torn entry is an id that
 * matches no message.  The header is checked at open (magic, capacity); a
 * file that does not match is started afresh, which forgets ids and can
 * only cost duplicates, never an item.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"

#define IDS_MAGIC "XBRIDS01"
#define ID_MAX 128

struct ids_file {
    char magic[8];
    uint32_t capacity;
    uint32_t next;     /* entries written, ever (mod 2^32); the commit */
    char entry[][ID_MAX];
};

struct ids {
    struct ids_file *f;
    size_t map_len;
    uint32_t cap, nbuckets;
    int32_t *bucket;   /* head entry index per hash bucket, -1 none */
    int32_t *chain;    /* next entry index in the same bucket */
};

static uint32_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

static void index_add(struct ids *t, uint32_t i)
{
    uint32_t b = hash(t->f->entry[i]) % t->nbuckets;

    t->chain[i] = t->bucket[b];
    t->bucket[b] = (int32_t)i;
}

static void index_remove(struct ids *t, uint32_t i)
{
    uint32_t b = hash(t->f->entry[i]) % t->nbuckets;

    for (int32_t *p = &t->bucket[b]; *p >= 0; p = &t->chain[*p])
        if ((uint32_t)*p == i) {
            *p = t->chain[i];
            return;
        }
}

int ids_open(struct ids **out, const char *path, uint32_t cap)
{
    struct ids *t = calloc(1, sizeof(*t));
    size_t len = sizeof(struct ids_file) + (size_t)cap * ID_MAX;
    struct stat st;
    int fd, fresh;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fstat(fd, &st) < 0 || (st.st_size != (off_t)len && ftruncate(fd, (off_t)len) < 0)) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        free(t);
        return e;
    }
    t->f = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (t->f == MAP_FAILED) {
        free(t);
        return -errno;
    }
    t->map_len = len;
    t->cap = cap;
    t->nbuckets = cap * 2 + 1;
    t->bucket = malloc(sizeof(int32_t) * t->nbuckets);
    t->chain = malloc(sizeof(int32_t) * cap);
    if (!t->bucket || !t->chain) {
        ids_close(t);
        return -ENOMEM;
    }
    memset(t->bucket, 0xff, sizeof(int32_t) * t->nbuckets);
    fresh = memcmp(t->f->magic, IDS_MAGIC, 8) != 0 || t->f->capacity != cap;
    if (fresh) {
        memset(t->f->entry, 0, (size_t)cap * ID_MAX);
        t->f->capacity = cap;
        t->f->next = 0;
        memcpy(t->f->magic, IDS_MAGIC, 8);
    }
    for (uint32_t i = 0; i < cap; i++) {
        t->f->entry[i][ID_MAX - 1] = '\0'; /* a torn entry still ends */
        if (t->f->entry[i][0])
            index_add(t, i);
    }
    *out = t;
    return 0;
}

int ids_seen(struct ids *t, const char *id)
{
    uint32_t b = hash(id) % t->nbuckets;

    for (int32_t i = t->bucket[b]; i >= 0; i = t->chain[i])
        if (strcmp(t->f->entry[i], id) == 0)
            return 1;
    return 0;
}

void ids_add(struct ids *t, const char *id)
{
    uint32_t i = t->f->next % t->cap;

    if (t->f->entry[i][0])
        index_remove(t, i);
    memset(t->f->entry[i], 0, ID_MAX);
    strncpy(t->f->entry[i], id, ID_MAX - 1);
    index_add(t, i);
    __atomic_store_n(&t->f->next, t->f->next + 1, __ATOMIC_RELEASE); /* the commit */
}

void ids_close(struct ids *t)
{
    if (!t)
        return;
    if (t->f && t->f != MAP_FAILED)
        munmap(t->f, t->map_len);
    free(t->bucket);
    free(t->chain);
    free(t);
}
