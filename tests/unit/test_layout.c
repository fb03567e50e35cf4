/*
 * test_layout.c -- segment creation, validation on open, the checked
 * accessor and the process-wide mapping registry (shm.c).
 *
 * Each test creates its own named segment (/xichan-ut-<pid>-layoutN) and
 * unlinks it in the teardown, so a failing test leaves nothing behind but
 * its own name.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "unit.h"

#define SEG_SIZE (1u << 20)

static char seg_name[64];
static struct xichan_shm *seg; /* the creator's mapping */

static const struct xichan_shm_geometry geo = {SEG_SIZE, 16, 32, 128};

static int setup(void **state)
{
    static int counter;

    snprintf(seg_name, sizeof(seg_name), "/xichan-ut-%d-layout%d", (int)getpid(), counter++);
    xichan__shm_unlink(seg_name); /* a leftover of an earlier crashed run */
    seg = NULL;
    return 0;
}

static int teardown(void **state)
{
    xichan__shm_unmap(seg);
    seg = NULL;
    xichan__shm_unlink(seg_name);
    return 0;
}

static void create_seg(void)
{
    ut_ok(xichan__shm_create(seg_name, &geo, &seg));
    assert_non_null(seg);
}

/* Opens seg_name and expects code; a mapping that opens by mistake is freed. */
static void open_fails(int code)
{
    struct xichan_shm *m = (struct xichan_shm *)1;
    int rc = xichan__shm_open(seg_name, &m);

    if (rc == 0)
        xichan__shm_unmap(m);
    else
        assert_null(m);
    ut_err(rc, code);
}

/* ------------------------------------------------------------- layout hash */

static void test_layout_hash_is_stable_and_nonzero(void **state)
{
    uint32_t h = xichan__layout_hash();

    assert_int_not_equal(h, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(xichan__layout_hash(), h);
}

/* ------------------------------------------------------------- create/open */

static void test_shm_create_writes_a_ready_header(void **state)
{
    struct xichan_shm_hdr *h;

    create_seg();
    h = seg->hdr;
    assert_memory_equal(h->magic, XICHAN_MAGIC, 8);
    assert_int_equal(h->version, XICHAN_LAYOUT_VERSION);
    assert_int_equal(h->layout_hash, xichan__layout_hash());
    assert_int_equal(xa_load_relaxed(&h->state), XICHAN_SEG_READY);
    assert_int_equal(h->size, SEG_SIZE);
    assert_int_equal(seg->size, SEG_SIZE);
    /* Every region is 64-byte aligned, the heap page aligned, all inside. */
    assert_int_equal(h->sessions_off % 64, 0);
    assert_int_equal(h->objects_off % 64, 0);
    assert_int_equal(h->bindings_off % 64, 0);
    assert_int_equal(h->heap_off % 4096, 0);
    assert_true(h->sessions_off >= sizeof(*h));
    assert_true(h->objects_off >= h->sessions_off + 16 * sizeof(struct xichan_session));
    assert_true(h->bindings_off >= h->objects_off + 32 * sizeof(struct xichan_obj));
    assert_true(h->heap_off >= h->bindings_off + 128 * sizeof(struct xichan_binding));
    assert_true(h->heap_off + h->heap_size <= SEG_SIZE);
    assert_int_equal(seg->heap_units, h->heap_size / XICHAN_UNIT);
    assert_int_equal(xa_load_relaxed(&h->next_qid), 1);
    assert_int_equal(xa_load_relaxed(&h->next_cid), 0);
    assert_int_equal(xa_load_relaxed(&h->next_sid), 1);
    ut_heap_ok(seg);
}

static void test_shm_open_gives_the_creators_geometry(void **state)
{
    struct xichan_shm *m;

    create_seg();
    ut_ok(xichan__shm_open(seg_name, &m));
    assert_non_null(m);
    assert_int_equal(m->size, seg->size);
    assert_int_equal(m->nsessions, seg->nsessions);
    assert_int_equal(m->nobjects, seg->nobjects);
    assert_int_equal(m->nbindings, seg->nbindings);
    assert_int_equal(m->heap_units, seg->heap_units);
    assert_int_equal(m->heap_size, seg->heap_size);
    assert_int_equal(m->nsessions, 16);
    assert_int_equal(m->nobjects, 32);
    assert_int_equal(m->nbindings, 128);
    /* The same offsets from a different base. */
    assert_int_equal((uint8_t *)m->sessions - m->base, (uint8_t *)seg->sessions - seg->base);
    assert_int_equal((uint8_t *)m->objects - m->base, (uint8_t *)seg->objects - seg->base);
    assert_int_equal((uint8_t *)m->bindings - m->base, (uint8_t *)seg->bindings - seg->base);
    assert_int_equal(m->heap - m->base, seg->heap - seg->base);
    assert_string_equal(m->name, seg_name);
    /* And the same memory: a write through one shows through the other. */
    seg->objects[3].name[0] = 'x';
    assert_int_equal(m->objects[3].name[0], 'x');
    ut_heap_ok(m);
    xichan__shm_unmap(m);
}

static void test_shm_open_wrong_magic_is_ecorrupt(void **state)
{
    create_seg();
    seg->hdr->magic[0] = 'Y';
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->magic[0] = 'X';
    open_fails(0);
}

static void test_shm_open_other_version_is_eversion(void **state)
{
    create_seg();
    seg->hdr->version = XICHAN_LAYOUT_VERSION + 1;
    open_fails(XICHAN_EVERSION);
    seg->hdr->version = XICHAN_LAYOUT_VERSION;
    open_fails(0);
}

static void test_shm_open_other_layout_hash_is_eversion(void **state)
{
    create_seg();
    seg->hdr->layout_hash ^= 1;
    open_fails(XICHAN_EVERSION);
    seg->hdr->layout_hash ^= 1;
    open_fails(0);
}

static void test_shm_open_unfinished_segment_is_ecorrupt(void **state)
{
    create_seg();
    xa_store_relaxed(&seg->hdr->state, XICHAN_SEG_INIT);
    open_fails(XICHAN_ECORRUPT);
    xa_store_relaxed(&seg->hdr->state, 7);
    open_fails(XICHAN_ECORRUPT);
    xa_store_relaxed(&seg->hdr->state, XICHAN_SEG_READY);
    open_fails(0);
}

static void test_shm_open_scribbled_heap_off_is_ecorrupt(void **state)
{
    uint64_t v;

    create_seg();
    v = seg->hdr->heap_off;
    seg->hdr->heap_off = v + 4096;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->heap_off = 0;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->heap_off = UINT64_MAX;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->heap_off = v;
    open_fails(0);
}

static void test_shm_open_scribbled_objects_off_is_ecorrupt(void **state)
{
    uint64_t v;

    create_seg();
    v = seg->hdr->objects_off;
    seg->hdr->objects_off = v + 64;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->objects_off = SEG_SIZE - 64;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->objects_off = v;
    open_fails(0);
}

static void test_shm_open_scribbled_other_offsets_are_ecorrupt(void **state)
{
    struct xichan_shm_hdr *h;
    uint64_t v;

    create_seg();
    h = seg->hdr;
    v = h->sessions_off;
    h->sessions_off = v + 64;
    open_fails(XICHAN_ECORRUPT);
    h->sessions_off = v;
    v = h->bindings_off;
    h->bindings_off = v - 64;
    open_fails(XICHAN_ECORRUPT);
    h->bindings_off = v;
    v = h->heap_size;
    h->heap_size = v + XICHAN_UNIT;
    open_fails(XICHAN_ECORRUPT);
    h->heap_size = v;
    open_fails(0);
}

static void test_shm_open_nsessions_zero_or_huge_is_ecorrupt(void **state)
{
    uint32_t v;

    create_seg();
    v = seg->hdr->nsessions;
    seg->hdr->nsessions = 0;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->nsessions = 1;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->nsessions = XICHAN_SID_MAX; /* in range, but the tables no longer fit */
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->nsessions = XICHAN_SID_MAX + 1;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->nsessions = UINT32_MAX;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->nsessions = v + 1; /* plausible, but moves every later region */
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->nsessions = v;
    open_fails(0);
}

static void test_shm_open_scribbled_object_counts_are_ecorrupt(void **state)
{
    struct xichan_shm_hdr *h;

    create_seg();
    h = seg->hdr;
    h->nobjects = 0;
    open_fails(XICHAN_ECORRUPT);
    h->nobjects = UINT32_MAX;
    open_fails(XICHAN_ECORRUPT);
    h->nobjects = 32;
    h->nbindings = 0;
    open_fails(XICHAN_ECORRUPT);
    h->nbindings = UINT32_MAX;
    open_fails(XICHAN_ECORRUPT);
    h->nbindings = 128;
    open_fails(0);
}

static void test_shm_open_size_field_mismatch_is_ecorrupt(void **state)
{
    create_seg();
    seg->hdr->size = SEG_SIZE * 2;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->size = SEG_SIZE / 2;
    open_fails(XICHAN_ECORRUPT);
    seg->hdr->size = SEG_SIZE;
    open_fails(0);
}

static void truncate_to(off_t len)
{
    int fd = shm_open(seg_name, O_RDWR, 0);

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, len), 0);
    close(fd);
}

static void test_shm_open_truncated_file_is_ecorrupt(void **state)
{
    create_seg();
    /* The creator's mapping must not touch the pages beyond the new end. */
    truncate_to(SEG_SIZE / 2);
    open_fails(XICHAN_ECORRUPT);
    truncate_to(SEG_SIZE - 4096);
    open_fails(XICHAN_ECORRUPT);
    truncate_to(sizeof(struct xichan_shm_hdr) - 1);
    open_fails(XICHAN_ECORRUPT);
    truncate_to(0);
    open_fails(XICHAN_ECORRUPT);
}

static void test_shm_open_grown_file_is_ecorrupt(void **state)
{
    create_seg();
    truncate_to(SEG_SIZE + 4096);
    open_fails(XICHAN_ECORRUPT);
}

static void test_shm_open_missing_name_is_enotfound(void **state)
{
    open_fails(XICHAN_ENOTFOUND);
}

static void test_shm_open_overlong_name_is_enametoolong(void **state)
{
    char name[200];
    struct xichan_shm *m;

    memset(name, 'a', sizeof(name) - 1);
    name[0] = '/';
    name[sizeof(name) - 1] = 0;
    ut_err(xichan__shm_open(name, &m), XICHAN_ENAMETOOLONG);
    assert_null(m);
}

static void test_shm_create_twice_is_eexist(void **state)
{
    struct xichan_shm *again = (struct xichan_shm *)1;

    create_seg();
    ut_err(xichan__shm_create(seg_name, &geo, &again), XICHAN_EEXIST);
    assert_null(again);
    /* The failed create must not have unlinked or damaged the first one. */
    open_fails(0);
}

static void test_shm_create_tiny_geometry_is_einval(void **state)
{
    struct xichan_shm_geometry g = geo;
    struct xichan_shm *m;

    g.size = 4096;
    ut_err(xichan__shm_create(seg_name, &g, &m), XICHAN_EINVAL);
    assert_null(m);
    g.size = 64 * 1024; /* the tables and a page of header leave < 64 KiB of heap */
    ut_err(xichan__shm_create(seg_name, &g, &m), XICHAN_EINVAL);
    g = geo;
    g.nsessions = 1;
    ut_err(xichan__shm_create(seg_name, &g, &m), XICHAN_EINVAL);
    g = geo;
    g.nobjects = 0;
    ut_err(xichan__shm_create(seg_name, &g, &m), XICHAN_EINVAL);
    g = geo;
    g.nbindings = 0;
    ut_err(xichan__shm_create(seg_name, &g, &m), XICHAN_EINVAL);
    /* Nothing was left behind by the refusals. */
    open_fails(XICHAN_ENOTFOUND);
}

static void test_shm_create_file_mode_is_0600(void **state)
{
    char path[128];
    struct stat st;
    mode_t old = umask(0);

    create_seg();
    umask(old);
    snprintf(path, sizeof(path), "/dev/shm/%s", seg_name + 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, getuid());
    assert_int_equal(st.st_size, SEG_SIZE);
}

static void test_shm_create_mode_is_0600_under_strict_umask(void **state)
{
    char path[128];
    struct stat st;
    mode_t old = umask(0277);

    create_seg();
    umask(old);
    snprintf(path, sizeof(path), "/dev/shm/%s", seg_name + 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

/* ------------------------------------------------------------ shm_at */

static void test_shm_at_checks_bounds(void **state)
{
    uint64_t size;

    create_seg();
    size = seg->size;
    assert_ptr_equal(xichan__shm_at(seg, 0, 0), seg->base);
    assert_ptr_equal(xichan__shm_at(seg, size, 0), seg->base + size);
    assert_null(xichan__shm_at(seg, size, 1));
    assert_ptr_equal(xichan__shm_at(seg, 0, size), seg->base);
    assert_null(xichan__shm_at(seg, 1, size));
    assert_null(xichan__shm_at(seg, 0, size + 1));
    assert_ptr_equal(xichan__shm_at(seg, size - 1, 1), seg->base + size - 1);
    assert_null(xichan__shm_at(seg, size + 1, 0));
    assert_null(xichan__shm_at(seg, UINT64_MAX, 2));
    assert_null(xichan__shm_at(seg, 2, UINT64_MAX));
    assert_null(xichan__shm_at(seg, UINT64_MAX, UINT64_MAX));
    assert_null(xichan__shm_at(seg, size / 2, UINT64_MAX - size / 2 + 2)); /* wraps to small */
}

/* ------------------------------------------------------------ registry */

static void test_shm_acquire_twice_is_the_same_mapping(void **state)
{
    struct xichan_shm *a, *b;

    create_seg();
    ut_ok(xichan__shm_acquire(seg_name, &a));
    ut_ok(xichan__shm_acquire(seg_name, &b));
    assert_ptr_equal(a, b);
    assert_int_equal(a->refs, 2);
    xichan__shm_release(b);
    assert_int_equal(a->refs, 1);
    /* Still mapped: one reference is left. */
    assert_int_equal(a->hdr->version, XICHAN_LAYOUT_VERSION);
    xichan__shm_release(a);
    xichan__shm_release(NULL);
}

static void test_shm_acquire_after_recreate_maps_the_new_segment(void **state)
{
    struct xichan_shm *old, *fresh, *again;

    create_seg();
    ut_ok(xichan__shm_acquire(seg_name, &old));
    old->objects[0].name[0] = 'o';

    /* The daemon restarts: a new segment under the same name. */
    xichan__shm_unmap(seg);
    seg = NULL;
    ut_ok(xichan__shm_unlink(seg_name));
    create_seg();
    seg->objects[0].name[0] = 'n';

    ut_ok(xichan__shm_acquire(seg_name, &fresh));
    assert_ptr_not_equal(fresh, old);
    assert_ptr_not_equal(fresh->base, old->base);
    assert_int_not_equal(fresh->ino, old->ino);
    assert_int_equal(fresh->objects[0].name[0], 'n');
    assert_int_equal(old->objects[0].name[0], 'o'); /* the stale one still works */
    ut_ok(xichan__shm_acquire(seg_name, &again));
    assert_ptr_equal(again, fresh);
    assert_int_equal(fresh->refs, 2);
    xichan__shm_release(again);
    xichan__shm_release(fresh);
    xichan__shm_release(old);
}

static void test_shm_acquire_after_last_release_opens_again(void **state)
{
    struct xichan_shm *a, *b;

    create_seg();
    ut_ok(xichan__shm_acquire(seg_name, &a));
    xichan__shm_release(a);
    ut_ok(xichan__shm_acquire(seg_name, &b));
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->hdr->version, XICHAN_LAYOUT_VERSION);
    xichan__shm_release(b);
}

static void test_shm_acquire_missing_name_is_enotfound(void **state)
{
    struct xichan_shm *a;

    ut_err(xichan__shm_acquire(seg_name, &a), XICHAN_ENOTFOUND);
}

static void test_shm_acquire_unlinked_segment_is_enotfound(void **state)
{
    struct xichan_shm *a, *b;

    create_seg();
    ut_ok(xichan__shm_acquire(seg_name, &a));
    ut_ok(xichan__shm_unlink(seg_name));
    /* The cached mapping no longer matches the name: it is not handed out. */
    ut_err(xichan__shm_acquire(seg_name, &b), XICHAN_ENOTFOUND);
    xichan__shm_release(a);
}

static void test_shm_unlink_missing_is_enotfound(void **state)
{
    ut_err(xichan__shm_unlink(seg_name), XICHAN_ENOTFOUND);
}

static void test_shm_name_builds_uid_and_namespace(void **state)
{
    char buf[64], want[64];

    snprintf(want, sizeof(want), "/xichan-%u-ns1", (unsigned)getuid());
    ut_ok(xichan__shm_name(buf, sizeof(buf), "ns1"));
    assert_string_equal(buf, want);
    ut_err(xichan__shm_name(buf, 10, "ns1"), XICHAN_ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_layout_hash_is_stable_and_nonzero),
        T(test_shm_create_writes_a_ready_header),
        T(test_shm_open_gives_the_creators_geometry),
        T(test_shm_open_wrong_magic_is_ecorrupt),
        T(test_shm_open_other_version_is_eversion),
        T(test_shm_open_other_layout_hash_is_eversion),
        T(test_shm_open_unfinished_segment_is_ecorrupt),
        T(test_shm_open_scribbled_heap_off_is_ecorrupt),
        T(test_shm_open_scribbled_objects_off_is_ecorrupt),
        T(test_shm_open_scribbled_other_offsets_are_ecorrupt),
        T(test_shm_open_nsessions_zero_or_huge_is_ecorrupt),
        T(test_shm_open_scribbled_object_counts_are_ecorrupt),
        T(test_shm_open_size_field_mismatch_is_ecorrupt),
        T(test_shm_open_truncated_file_is_ecorrupt),
        T(test_shm_open_grown_file_is_ecorrupt),
        T(test_shm_open_missing_name_is_enotfound),
        T(test_shm_open_overlong_name_is_enametoolong),
        T(test_shm_create_twice_is_eexist),
        T(test_shm_create_tiny_geometry_is_einval),
        T(test_shm_create_file_mode_is_0600),
        T(test_shm_create_mode_is_0600_under_strict_umask),
        T(test_shm_at_checks_bounds),
        T(test_shm_acquire_twice_is_the_same_mapping),
        T(test_shm_acquire_after_recreate_maps_the_new_segment),
        T(test_shm_acquire_after_last_release_opens_again),
        T(test_shm_acquire_missing_name_is_enotfound),
        T(test_shm_acquire_unlinked_segment_is_enotfound),
        T(test_shm_unlink_missing_is_enotfound),
        T(test_shm_name_builds_uid_and_namespace),
#undef T
    };

    alarm(30);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
