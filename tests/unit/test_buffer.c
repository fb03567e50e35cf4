/*
 * test_buffer.c -- shared buffers and in-flight references.
 */
#include "unit.h"

static void test_buf_create_is_zeroed_and_shared(void **state)
{
    xichan_client *other = ut_client(shm);
    xichan_buf_id b;
    void *p, *q;
    size_t n;

    ut_ok(xichan_buf_create(cl, 5000, &b));
    assert_int_equal(b.id, 1);
    ut_ok(xichan_buf_map(cl, b, &p, &n));
    assert_int_equal(n, 5000);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(((unsigned char *)p)[i], 0);
    memset(p, 0xAB, n);
    ut_ok(xichan_buf_bind(other, b));
    ut_ok(xichan_buf_map(other, b, &q, &n));
    assert_ptr_equal(p, q);
    assert_int_equal(((unsigned char *)q)[4999], 0xAB);
    ut_client_end(other); /* releases its binding; cl still holds one */
    ut_ok(xichan_buf_map(cl, b, &p, &n));
    ut_ok(xichan_buf_unbind(cl, b));
    ut_err(xichan_buf_map(cl, b, &p, &n), XICHAN_ENOTFOUND);
}

static void test_buf_reused_memory_is_zeroed(void **state)
{
    xichan_buf_id a, b;
    void *p;
    size_t n;

    ut_ok(xichan_buf_create(cl, 256, &a));
    ut_ok(xichan_buf_map(cl, a, &p, &n));
    memset(p, 0xFF, n);
    ut_ok(xichan_buf_unbind(cl, a));
    ut_ok(xichan_buf_create(cl, 256, &b));
    ut_ok(xichan_buf_map(cl, b, &p, &n));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(((unsigned char *)p)[i], 0);
    ut_ok(xichan_buf_unbind(cl, b));
}

static void test_buf_bad_sizes(void **state)
{
    xichan_buf_id b;

    ut_err(xichan_buf_create(cl, 0, &b), XICHAN_EINVAL);
    ut_err(xichan_buf_create(cl, (size_t)xichan__heap_max_item(shm) + 1, &b), XICHAN_E2BIG);
    ut_err(xichan_buf_create(cl, 16, NULL), XICHAN_EINVAL);
}

static void test_buf_dies_with_its_last_session(void **state)
{
    xichan_client *other = ut_client(shm);
    xichan_buf_id b;
    void *p;
    size_t n;

    ut_ok(xichan_buf_create(other, 1 << 16, &b));
    ut_client_end(other);
    ut_err(xichan_buf_map(cl, b, &p, &n), XICHAN_ENOTFOUND);
}

static void test_buf_listed_as_buffer(void **state)
{
    xichan_buf_id b;
    xichan_obj_info info[2];

    ut_ok(xichan_buf_create(cl, 100, &b));
    assert_int_equal(xichan_list(cl, info, 2), 1);
    assert_int_equal(info[0].kind, XICHAN_KIND_BUFFER);
    assert_int_equal(info[0].bytes, 100);
    ut_ok(xichan_buf_unbind(cl, b));
}

/* SEMANTICS §3 87: an object in flight stays alive until it lands. */
static void test_inflight_reference_keeps_object_alive(void **state)
{
    xichan_queue_id q;

    ut_ok(xichan_queue_create(cl, NULL, &q));
    ut_ok(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, +1));
    ut_ok(xichan_queue_release(cl, q));
    assert_int_equal(xichan_queue_count(cl, q), 0); /* alive */
    ut_ok(xichan_queue_bind(cl, q));                /* the receiver binds ... */
    ut_ok(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, -1)); /* ... then lands */
    assert_int_equal(xichan_queue_count(cl, q), 0);
    ut_ok(xichan_queue_release(cl, q));
    ut_err((int)xichan_queue_count(cl, q), XICHAN_ENOTFOUND);
}

static void test_inflight_release_without_reference(void **state)
{
    xichan_queue_id q;

    ut_ok(xichan_queue_create(cl, NULL, &q));
    ut_err(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, -1), XICHAN_ENOTBOUND);
    ut_err(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, 2), XICHAN_EINVAL);
    ut_err(xichan_obj_inflight(cl, 9, q.id, 1), XICHAN_EINVAL);
    ut_ok(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, +1));
    ut_ok(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, -1)); /* still bound: alive */
    ut_ok(xichan_queue_release(cl, q));
}

/* The table repair recomputes refcounts from bindings plus in-flight refs. */
static void test_table_repair_keeps_inflight(void **state)
{
    xichan_queue_id q;
    struct xichan_objref ref;

    ut_ok(xichan_queue_create(cl, NULL, &q));
    ut_ok(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, q.id, +1));
    ut_ok(xichan__obj_find(shm, XICHAN_KIND_QUEUE, q.id, &ref));
    ref.o->refcount = 77; /* scribble the derived count */
    ut_ok(xichan__table_repair(shm, NULL));
    assert_int_equal(ref.o->refcount, 2);
    ut_ok(xichan_queue_destroy(cl, q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, ut_client_setup, ut_client_teardown_empty)
        T(test_buf_create_is_zeroed_and_shared),
        T(test_buf_reused_memory_is_zeroed),
        T(test_buf_bad_sizes),
        T(test_buf_dies_with_its_last_session),
        T(test_buf_listed_as_buffer),
        T(test_inflight_reference_keeps_object_alive),
        T(test_inflight_release_without_reference),
        T(test_table_repair_keeps_inflight),
#undef T
    };

    alarm(60);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
