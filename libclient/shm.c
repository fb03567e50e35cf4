/*
 * shm.c -- create, map, validate and share a segment.
 *
 * Crash argument for creation: the daemon lays out the whole segment while
 * hdr->state is XICHAN_SEG_INIT and commits it with one release store of
 * XICHAN_SEG_READY after every lock, table and the heap are initialised.  A
 * daemon that dies before that store leaves a segment that xichan__shm_open
 * refuses (XICHAN_ECORRUPT: "never finished"); one that dies after leaves a
 * complete segment that a new daemon adopts.
 *
 * ONE DAEMON PER SEGMENT (tag-seg-lock).  The segment's name holds the uid
 * and the namespace but not the runtime dir, so the lock file in the runtime
 * dir cannot keep two daemons started from different dirs off one segment.
 * The segment file itself carries the lock: a daemon holds flock(LOCK_EX)
 * on its descriptor of the segment for its whole life, and the kernel drops
 * it when the daemon dies, so "the flock is free" means "no daemon serves
 * this segment", with no pid to trust.
 *   create  O_EXCL, then flock, then lay out and commit READY: a segment
 *           that is not READY yet is always locked by its creator, except
 *           in the instant between O_EXCL and flock;
 *   claim   (adopting, or xichanctl discarding) open, flock(LOCK_NB): busy
 *           means a daemon serves it (XICHAN_EBUSY).  Got it, the segment
 *           is ours alone; one not READY is then either in that instant of
 *           its creator or left by a creator that died, so claim lets go
 *           and looks again for a second before calling it unfinished.
 *           The mapping is made from the locked descriptor, and the name is
 *           checked to still name that file, so what was validated is what
 *           was locked.
 *
 * Validation on open computes every region from the header and checks that
 * the regions lie inside the file, do not overlap and match the sizes this
 * build would use; pointers are computed once here and never re-derived from
 * shared values later (the counts are copied into struct xichan_shm, so a
 * scribbled header cannot move a table under a running client).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define ALIGN64(x) (((x) + 63u) & ~(uint64_t)63u)

/* ------------------------------------------------------------ layout */

/* FNV-1a over the numbers that define the format. */
static uint32_t hash_u64(uint32_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (uint8_t)(v >> (8 * i));
        h *= 16777619u;
    }
    return h;
}

uint32_t xichan__layout_hash(void)
{
    static const uint64_t facts[] = {
        XICHAN_LAYOUT_VERSION,
        sizeof(void *),
        sizeof(struct xichan_shm_hdr),
        offsetof(struct xichan_shm_hdr, table_lock),
        offsetof(struct xichan_shm_hdr, heap_lock),
        offsetof(struct xichan_shm_hdr, bins),
        offsetof(struct xichan_shm_hdr, heap_free_seq),
        offsetof(struct xichan_session, cache_gate),
        sizeof(struct xichan_lock),
        sizeof(pthread_mutex_t),
        sizeof(struct xichan_session),
        sizeof(struct xichan_obj),
        offsetof(struct xichan_obj, fifo),
        sizeof(struct xichan_fifo),
        offsetof(struct xichan_obj, put_seq),
        offsetof(struct xichan_obj, name),
        sizeof(struct xichan_binding),
        sizeof(struct xichan_wset),
        sizeof(struct xichan_wreg),
        offsetof(struct xichan_obj, whead),
        offsetof(struct xichan_obj, put_cpu),
        sizeof(struct xichan_blk),
        sizeof(struct xichan_itemhdr),
        XICHAN_UNIT,
        XICHAN_NBINS,
        XICHAN_SID_BITS,
    };
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++)
        h = hash_u64(h, facts[i]);
    return h;
}

int xichan__shm_name(char *buf, size_t cap, const char *ns)
{
    int n = snprintf(buf, cap, "/xichan-%u-%s", (unsigned)getuid(), ns);

    return n < 0 || (size_t)n >= cap ? XICHAN_ENAMETOOLONG : 0;
}

/* Region offsets for a geometry; 0 if it cannot fit. */
static int layout(const struct xichan_shm_geometry *g, uint64_t *sess, uint64_t *objs,
                  uint64_t *binds, uint64_t *heap, uint64_t *heap_size)
{
    uint64_t off = ALIGN64(sizeof(struct xichan_shm_hdr));

    *sess = off;
    off = ALIGN64(off + (uint64_t)g->nsessions * sizeof(struct xichan_session));
    *objs = off;
    off = ALIGN64(off + (uint64_t)g->nobjects * sizeof(struct xichan_obj));
    *binds = off;
    off = ALIGN64(off + (uint64_t)g->nbindings * sizeof(struct xichan_binding));
    /* Wait sets (one per session) and registrations (one per object). */
    off = ALIGN64(off + (uint64_t)g->nsessions * sizeof(struct xichan_wset));
    off = ALIGN64(off + (uint64_t)g->nobjects * sizeof(struct xichan_wreg));
    /* The heap starts on a page so that item payloads have good alignment. */
    off = (off + 4095u) & ~(uint64_t)4095u;
    *heap = off;
    if (off >= g->size)
        return XICHAN_EINVAL;
    *heap_size = (g->size - off) & ~(uint64_t)(XICHAN_UNIT - 1);
    /* Unit offsets are 32-bit and offset 0 means "none": cap the heap. */
    if (*heap_size / XICHAN_UNIT >= UINT32_MAX)
        *heap_size = (uint64_t)(UINT32_MAX - 1) * XICHAN_UNIT;
    if (*heap_size < 64 * 1024)
        return XICHAN_EINVAL;
    return 0;
}

uint64_t xichan__shm_min_size(const struct xichan_shm_geometry *g)
{
    struct xichan_shm_geometry big = *g;
    uint64_t sess, objs, binds, heap, heap_size;

    big.size = UINT64_MAX;
    (void)layout(&big, &sess, &objs, &binds, &heap, &heap_size);
    return heap + 64 * 1024;
}

static void set_pointers(struct xichan_shm *shm, const struct xichan_shm_geometry *g, uint64_t sess,
                         uint64_t objs, uint64_t binds, uint64_t heap, uint64_t heap_size)
{
    shm->hdr = (struct xichan_shm_hdr *)shm->base;
    shm->sessions = (struct xichan_session *)(shm->base + sess);
    shm->objects = (struct xichan_obj *)(shm->base + objs);
    shm->bindings = (struct xichan_binding *)(shm->base + binds);
    shm->wsets = (struct xichan_wset *)(shm->base +
                                        ALIGN64(binds + (uint64_t)g->nbindings *
                                                            sizeof(struct xichan_binding)));
    shm->wregs = (struct xichan_wreg *)((uint8_t *)shm->wsets +
                                        ALIGN64((uint64_t)g->nsessions *
                                                sizeof(struct xichan_wset)));
    shm->nwsets = g->nsessions;
    shm->nwregs = g->nobjects;
    shm->heap = shm->base + heap;
    shm->heap_size = heap_size;
    shm->heap_units = (uint32_t)(heap_size / XICHAN_UNIT);
    shm->nsessions = g->nsessions;
    shm->nobjects = g->nobjects;
    shm->nbindings = g->nbindings;
}

void *xichan__shm_at(const struct xichan_shm *shm, uint64_t off, uint64_t len)
{
    if (off > shm->size || len > shm->size - off)
        return NULL;
    return shm->base + off;
}

/* ------------------------------------------------------------ create */

int xichan__shm_create(const char *name, const struct xichan_shm_geometry *geo,
                       struct xichan_shm **out)
{
    struct xichan_shm *shm;
    struct xichan_shm_hdr *h;
    uint64_t sess, objs, binds, heap, heap_size;
    struct timespec now;
    struct stat st;
    int fd, err;

    *out = NULL;
    if (geo->nsessions < 2 || geo->nsessions > XICHAN_SID_MAX || geo->nobjects < 1 ||
        geo->nbindings < 1 || strlen(name) >= sizeof(shm->name))
        return XICHAN_EINVAL;
    err = layout(geo, &sess, &objs, &binds, &heap, &heap_size);
    if (err)
        return err;
    shm = calloc(1, sizeof(*shm));
    if (!shm)
        return XICHAN_ENOMEM;

    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno == EEXIST ? XICHAN_EEXIST : errno == EACCES ? XICHAN_EPERM : XICHAN_EIO;
        goto fail_open;
    }
    /* The umask may have narrowed 0600 further; make it exactly 0600. */
    (void)fchmod(fd, 0600);
    /* tag-seg-lock: held until xichan__shm_unmap.  Blocking: a claimer
     * holds it for an instant at most, finding the segment unfinished. */
    if (flock(fd, LOCK_EX) < 0) {
        err = XICHAN_EIO;
        goto fail_alloc;
    }
    /*
     * Reserve every page now: ftruncate alone reserves nothing on tmpfs, and a
     * full /dev/shm would then kill some client with SIGBUS much later.
     */
    err = posix_fallocate(fd, 0, (off_t)geo->size);
    if (err) {
        err = err == ENOSPC ? XICHAN_ENOSPC : XICHAN_EIO;
        goto fail_alloc;
    }
    shm->base = mmap(NULL, geo->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm->base == MAP_FAILED) {
        err = XICHAN_EIO;
        goto fail_alloc;
    }
    if (fstat(fd, &st) == 0) {
        shm->ino = (uint64_t)st.st_ino;
        shm->owner = st.st_uid;
    }
    shm->fd = fd;
    shm->size = geo->size;
    snprintf(shm->name, sizeof(shm->name), "%s", name);
    shm->refs = 1;
    set_pointers(shm, geo, sess, objs, binds, heap, heap_size);

    h = shm->hdr;
    memcpy(h->magic, XICHAN_MAGIC, sizeof(h->magic));
    h->version = XICHAN_LAYOUT_VERSION;
    h->layout_hash = xichan__layout_hash();
    h->size = geo->size;
    h->nsessions = geo->nsessions;
    h->nobjects = geo->nobjects;
    h->nbindings = geo->nbindings;
    h->sessions_off = sess;
    h->objects_off = objs;
    h->bindings_off = binds;
    h->heap_off = heap;
    h->heap_size = heap_size;
    clock_gettime(CLOCK_REALTIME, &now);
    h->created_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    xa_store_relaxed(&h->next_qid, 1);
    xa_store_relaxed(&h->next_cid, 0);
    xa_store_relaxed(&h->next_bid, 1);
    xa_store_relaxed(&h->next_seq, 1);
    xa_store_relaxed(&h->next_sid, 1);
    if ((err = xichan__lock_init(&h->table_lock)) || (err = xichan__lock_init(&h->heap_lock)))
        goto fail_init;
    /* Object mutexes are initialised once, here, and never again (shm_layout.h). */
    for (uint32_t i = 0; i < geo->nobjects; i++)
        if ((err = xichan__lock_init(&shm->objects[i].lock)))
            goto fail_init;
    if ((err = xichan__heap_init(shm)))
        goto fail_init;
    /* Commit of creation: pairs with the acquire load in validate(). */
    xa_store_release(&h->state, XICHAN_SEG_READY);
    *out = shm;
    return 0;

fail_init:
    munmap(shm->base, shm->size);
    shm_unlink(name);
    close(fd);
    free(shm);
    return err;
fail_alloc:
    close(fd);
    shm_unlink(name);
fail_open:
    free(shm);
    return err;
}

/* -------------------------------------------------------------- open */

static int validate(struct xichan_shm *shm)
{
    const struct xichan_shm_hdr *h = (const struct xichan_shm_hdr *)shm->base;
    struct xichan_shm_geometry g;
    uint64_t sess, objs, binds, heap, heap_size;

    if (shm->size < sizeof(*h) || memcmp(h->magic, XICHAN_MAGIC, sizeof(h->magic)) != 0)
        return XICHAN_ECORRUPT;
    if (h->version != XICHAN_LAYOUT_VERSION || h->layout_hash != xichan__layout_hash())
        return XICHAN_EVERSION;
    /* Pairs with the release store that commits creation. */
    if (xa_load_acquire(&h->state) != XICHAN_SEG_READY)
        return XICHAN_ECORRUPT;
    g.size = h->size;
    g.nsessions = h->nsessions;
    g.nobjects = h->nobjects;
    g.nbindings = h->nbindings;
    if (g.size != shm->size || g.nsessions < 2 || g.nsessions > XICHAN_SID_MAX ||
        g.nobjects < 1 || g.nbindings < 1)
        return XICHAN_ECORRUPT;
    /* Recompute the layout rather than trust the stored offsets. */
    if (layout(&g, &sess, &objs, &binds, &heap, &heap_size))
        return XICHAN_ECORRUPT;
    if (sess != h->sessions_off || objs != h->objects_off || binds != h->bindings_off ||
        heap != h->heap_off || heap_size != h->heap_size)
        return XICHAN_ECORRUPT;
    set_pointers(shm, &g, sess, objs, binds, heap, heap_size);
    return 0;
}

/* 1 if the segment on fd may be one whose creation is under way: empty
 * (before posix_fallocate), or laid out but not yet committed READY. */
static int unfinished(int fd)
{
    struct xichan_shm_hdr h;
    ssize_t n = pread(fd, &h, sizeof(h), 0);

    if (n == 0)
        return 1;
    return n == (ssize_t)sizeof(h) && memcmp(h.magic, XICHAN_MAGIC, sizeof(h.magic)) == 0 &&
           xa_load_acquire(&h.state) != XICHAN_SEG_READY;
}

/* Maps the segment open on fd (kept as shm->fd if keep_fd, else closed)
 * and validates it. */
static int map_fd(int fd, const char *name, int keep_fd, struct xichan_shm **out)
{
    struct xichan_shm *shm = calloc(1, sizeof(*shm));
    struct stat st;
    int err;

    if (!shm)
        return XICHAN_ENOMEM;
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(struct xichan_shm_hdr)) {
        err = XICHAN_ECORRUPT;
        goto fail;
    }
    shm->size = (size_t)st.st_size;
    shm->ino = (uint64_t)st.st_ino;
    shm->owner = st.st_uid;
    shm->base = mmap(NULL, shm->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm->base == MAP_FAILED) {
        err = XICHAN_EIO;
        goto fail;
    }
    snprintf(shm->name, sizeof(shm->name), "%s", name);
    shm->refs = 1;
    shm->fd = keep_fd ? fd : -1;
    if ((err = validate(shm)))
        goto fail_validate;
    if (!keep_fd)
        close(fd);
    *out = shm;
    return 0;

fail_validate:
    munmap(shm->base, shm->size);
fail:
    free(shm);
    return err;
}

static int open_name(const char *name, int *fd)
{
    if (strlen(name) >= sizeof(((struct xichan_shm *)0)->name))
        return XICHAN_ENAMETOOLONG;
    *fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (*fd < 0)
        return errno == ENOENT ? XICHAN_ENOTFOUND : errno == EACCES ? XICHAN_EPERM : XICHAN_EIO;
    return 0;
}

int xichan__shm_open(const char *name, struct xichan_shm **out)
{
    int fd, err;

    *out = NULL;
    if ((err = open_name(name, &fd)))
        return err;
    if ((err = map_fd(fd, name, 0, out)))
        close(fd);
    return err;
}

/* 1 if name still names the file open on fd. */
static int names_fd(const char *name, int fd)
{
    struct stat a, b;
    int fd2 = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    int same;

    if (fd2 < 0)
        return 0;
    same = fstat(fd, &a) == 0 && fstat(fd2, &b) == 0 && a.st_ino == b.st_ino &&
           a.st_dev == b.st_dev;
    close(fd2);
    return same;
}

#define CLAIM_TRIES 20
#define CLAIM_PAUSE_NS (50 * 1000000L)

int xichan__shm_claim(const char *name, struct xichan_shm **out)
{
    int fd, err = XICHAN_ECORRUPT;

    *out = NULL;
    for (int tries = 0; tries < CLAIM_TRIES; tries++) {
        if ((err = open_name(name, &fd)))
            return err;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            err = errno == EWOULDBLOCK ? XICHAN_EBUSY : XICHAN_EIO;
            close(fd);
            return err;
        }
        if (!names_fd(name, fd)) {
            /* Unlinked (and perhaps made anew) since we opened it. */
            close(fd);
            continue;
        }
        err = map_fd(fd, name, 1, out);
        if (err != XICHAN_ECORRUPT || !unfinished(fd)) {
            if (err)
                close(fd);
            return err;
        }
        /* Not READY: its creator is between O_EXCL and flock, or died. */
        close(fd);
        nanosleep(&(struct timespec){0, CLAIM_PAUSE_NS}, NULL);
    }
    return err;
}

void xichan__shm_unmap(struct xichan_shm *shm)
{
    if (!shm)
        return;
    munmap(shm->base, shm->size);
    if (shm->fd >= 0)
        close(shm->fd); /* drops the flock of tag-seg-lock, if we held it */
    free(shm);
}

int xichan__shm_unlink(const char *name)
{
    if (shm_unlink(name) < 0)
        return errno == ENOENT ? XICHAN_ENOTFOUND : XICHAN_EIO;
    return 0;
}

/* ---------------------------------------------------- process registry */

/*
 * One mapping per segment name per process, shared by all clients of the
 * process (a Python process with three interpreters maps once).  Mappings
 * are never unmapped while a lock in them may be held: a client's close
 * releases its locks first (every lock is taken and released within one
 * call), then drops its reference here.
 */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xichan_shm *registry[16];

/* Whether name still refers to the file we mapped (not a newer segment). */
static int same_file(const struct xichan_shm *shm)
{
    struct stat st;
    int fd = shm_open(shm->name, O_RDONLY | O_CLOEXEC, 0);
    int same;

    if (fd < 0)
        return 0;
    same = fstat(fd, &st) == 0 && (uint64_t)st.st_ino == shm->ino;
    close(fd);
    return same;
}

int xichan__shm_acquire(const char *name, struct xichan_shm **out)
{
    int err, freeslot = -1;

    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < (int)(sizeof(registry) / sizeof(registry[0])); i++) {
        if (registry[i] && strcmp(registry[i]->name, name) == 0 && same_file(registry[i])) {
            registry[i]->refs++;
            *out = registry[i];
            pthread_mutex_unlock(&registry_lock);
            return 0;
        }
        if (!registry[i] && freeslot < 0)
            freeslot = i;
    }
    err = xichan__shm_open(name, out);
    if (!err && freeslot >= 0)
        registry[freeslot] = *out;
    pthread_mutex_unlock(&registry_lock);
    return err;
}

void xichan__shm_release(struct xichan_shm *shm)
{
    if (!shm)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--shm->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (int i = 0; i < (int)(sizeof(registry) / sizeof(registry[0])); i++)
        if (registry[i] == shm)
            registry[i] = NULL;
    pthread_mutex_unlock(&registry_lock);
    xichan__shm_unmap(shm);
}
