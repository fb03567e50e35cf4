/*
 * test_bufitem.c -- buffer items: the payload format, and typed buffers
 * put by copy or by reference to a shared buffer.
 */
#include "unit.h"

static void test_bufitem_copy_round_trips_metadata(void **state)
{
    int32_t v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3}, sb[XICHAN_BUF_MAXDIM];
    xichan_bufdesc d = {.mode = XICHAN_BUF_COPY, .format = "i", .itemsize = 4, .ndim = 2,
                        .shape = shape, .readonly = 1, .nbytes = sizeof(v), .data = v};
    xichan_bufdesc o;
    char fb[256], buf[256];
    size_t n = xichan_bufitem_size(&d);

    assert_true(n > sizeof(v) && n <= sizeof(buf));
    ut_ok(xichan_bufitem_encode(&d, buf, sizeof(buf)));
    ut_ok(xichan_bufitem_parse(buf, n, &o, fb, sb));
    assert_int_equal(o.mode, XICHAN_BUF_COPY);
    assert_string_equal(o.format, "i");
    assert_int_equal(o.itemsize, 4);
    assert_int_equal(o.ndim, 2);
    assert_int_equal(o.shape[0], 2);
    assert_int_equal(o.shape[1], 3);
    assert_int_equal(o.readonly, 1);
    assert_memory_equal(o.data, v, sizeof(v));
    ut_err(xichan_bufitem_encode(&d, buf, n - 1), XICHAN_EINVAL);
}

static void test_bufitem_rejects_inconsistent_descriptions(void **state)
{
    int64_t shape[1] = {5};
    char data[8] = {0};
    xichan_bufdesc d = {.mode = XICHAN_BUF_COPY, .itemsize = 2, .ndim = 1, .shape = shape,
                        .nbytes = 8, .data = data};

    assert_int_equal(xichan_bufitem_size(&d), 0); /* 2 * 5 != 8 */
    shape[0] = -4;
    assert_int_equal(xichan_bufitem_size(&d), 0);
    shape[0] = INT64_MAX;
    assert_int_equal(xichan_bufitem_size(&d), 0); /* overflow */
    shape[0] = 4;
    d.itemsize = 0;
    assert_int_equal(xichan_bufitem_size(&d), 0);
    d.itemsize = 2;
    d.mode = 7;
    assert_int_equal(xichan_bufitem_size(&d), 0);
    d.mode = XICHAN_BUF_COPY;
    assert_true(xichan_bufitem_size(&d) > 0);
}

static void test_bufitem_parse_rejects_corrupt_payloads(void **state)
{
    char data[16] = "0123456789abcdef", buf[256], fb[256];
    int64_t sb[XICHAN_BUF_MAXDIM], shape[1] = {16};
    xichan_bufdesc d = {.mode = XICHAN_BUF_COPY, .itemsize = 1, .ndim = 1, .shape = shape,
                        .nbytes = 16, .data = data},
                   o;
    size_t n = xichan_bufitem_size(&d);

    ut_ok(xichan_bufitem_encode(&d, buf, sizeof(buf)));
    ut_ok(xichan_bufitem_parse(buf, n, &o, fb, sb));
    ut_err(xichan_bufitem_parse(buf, n - 1, &o, fb, sb), XICHAN_ECORRUPT); /* truncated */
    ut_err(xichan_bufitem_parse(buf, 10, &o, fb, sb), XICHAN_ECORRUPT);
    buf[0] ^= 1; /* magic */
    ut_err(xichan_bufitem_parse(buf, n, &o, fb, sb), XICHAN_ECORRUPT);
    buf[0] ^= 1;
    buf[6] = 65; /* ndim past the maximum */
    ut_err(xichan_bufitem_parse(buf, n, &o, fb, sb), XICHAN_ECORRUPT);
    buf[6] = 1;
    buf[16] = 17; /* nbytes disagrees */
    ut_err(xichan_bufitem_parse(buf, n, &o, fb, sb), XICHAN_ECORRUPT);
}

static void test_bufitem_copy_through_a_queue(void **state)
{
    char text[] = "hello buffer";
    int64_t shape[1] = {sizeof(text)};
    xichan_bufdesc d = {.mode = XICHAN_BUF_COPY, .itemsize = 1, .ndim = 1, .shape = shape,
                        .nbytes = sizeof(text), .data = text},
                   o;
    xichan_queue_id q;
    xichan_item it;
    char fb[256];
    int64_t sb[XICHAN_BUF_MAXDIM];
    void *p;

    ut_ok(xichan_queue_create(cl, NULL, &q));
    ut_ok(xichan_queue_put_buffer(cl, q, &d, 0, XICHAN_NOWAIT));
    ut_ok(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    assert_int_equal(it.fmt, XICHAN_FMT_BUFFER);
    ut_ok(xichan_item_buffer(cl, &it, &o, fb, sb, &p));
    assert_string_equal(fb, "B");
    assert_memory_equal(p, text, sizeof(text));
    assert_ptr_not_equal(p, text); /* a copy */
    xichan_item_release(&it);
}

/* send_buffer_nowait leaves the item queued (0) and a closed channel refuses it. */
static void test_bufitem_chan_send_nowait(void **state)
{
    char text[] = "nowait buffer";
    int64_t shape[1] = {sizeof(text)};
    xichan_bufdesc d = {.mode = XICHAN_BUF_COPY, .itemsize = 1, .ndim = 1, .shape = shape,
                        .nbytes = sizeof(text), .data = text},
                   o;
    xichan_chan_id c;
    xichan_item it;
    char fb[256];
    int64_t sb[XICHAN_BUF_MAXDIM];
    void *p;

    (void)state;
    ut_ok(xichan_chan_create(cl, NULL, &c));
    assert_int_equal(xichan_chan_send_buffer_nowait(cl, c, &d, 0), 0);
    assert_int_equal(xichan_chan_count(cl, c), 1);
    ut_ok(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
    ut_ok(xichan_item_buffer(cl, &it, &o, fb, sb, &p));
    assert_memory_equal(p, text, sizeof(text));
    xichan_item_release(&it);
    ut_ok(xichan_chan_close(cl, c, 0));
    ut_err(xichan_chan_send_buffer_nowait(cl, c, &d, 0), XICHAN_ECLOSED);
}

/* A view of a shared buffer arrives as the same memory, writes both ways. */
static void test_bufitem_shared_is_zero_copy(void **state)
{
    xichan_client *r = ut_client(shm);
    xichan_buf_id b;
    xichan_chan_id c;
    xichan_item it;
    int64_t shape[1] = {100};
    xichan_bufdesc d = {.mode = XICHAN_BUF_SHARED, .itemsize = 1, .ndim = 1, .shape = shape,
                        .nbytes = 100, .offset = 50},
                   o;
    char fb[256];
    int64_t sb[XICHAN_BUF_MAXDIM];
    void *base, *p;
    size_t size;

    ut_ok(xichan_buf_create(cl, 4096, &b));
    ut_ok(xichan_buf_map(cl, b, &base, &size));
    memset((char *)base + 50, 'x', 100);
    d.buf = b;
    ut_ok(xichan_chan_create(cl, NULL, &c));
    assert_true(xichan_chan_send_buffer(cl, c, &d, 0, XICHAN_NOWAIT) == XICHAN_ETIMEDOUT);
    /* The withdrawn send gave its in-flight reference back. */
    assert_int_equal(shm->objects[1].inflight, 0);
    d.readonly = 1;
    ut_ok(xichan_queue_put_buffer(cl, (xichan_queue_id){0}, &d, 0, XICHAN_NOWAIT) ==
                  XICHAN_ENOTFOUND
              ? 0
              : -1);
    {
        xichan_queue_id q;
        ut_ok(xichan_queue_create(cl, NULL, &q));
        ut_ok(xichan_queue_put_buffer(cl, q, &d, 0, XICHAN_NOWAIT));
        /* The sender lets go of the buffer: the item keeps it alive. */
        ut_ok(xichan_buf_unbind(cl, b));
        ut_ok(xichan_queue_get(r, q, &it, XICHAN_NOWAIT));
        ut_ok(xichan_item_buffer(r, &it, &o, fb, sb, &p));
        xichan_item_release(&it);
        assert_ptr_equal(p, (char *)base + 50);
        assert_int_equal(o.readonly, 1);
        assert_int_equal(((char *)p)[99], 'x');
        ut_ok(xichan_buf_unbind(r, b)); /* the receiver's binding was the last */
        ut_err(xichan_buf_map(cl, b, &base, &size), XICHAN_ENOTFOUND);
    }
    ut_client_end(r);
}

static void test_bufitem_shared_range_must_fit(void **state)
{
    xichan_buf_id b;
    xichan_queue_id q;
    int64_t shape[1] = {100};
    xichan_bufdesc d = {.mode = XICHAN_BUF_SHARED, .itemsize = 1, .ndim = 1, .shape = shape,
                        .nbytes = 100, .offset = 4000};

    ut_ok(xichan_buf_create(cl, 4096, &b));
    ut_ok(xichan_queue_create(cl, NULL, &q));
    d.buf = b;
    ut_err(xichan_queue_put_buffer(cl, q, &d, 0, XICHAN_NOWAIT), XICHAN_EINVAL);
    assert_int_equal(xichan_queue_count(cl, q), 0);
    ut_ok(xichan_buf_unbind(cl, b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, ut_client_setup, ut_client_teardown_empty)
        T(test_bufitem_copy_round_trips_metadata),
        T(test_bufitem_rejects_inconsistent_descriptions),
        T(test_bufitem_parse_rejects_corrupt_payloads),
        T(test_bufitem_copy_through_a_queue),
        T(test_bufitem_chan_send_nowait),
        T(test_bufitem_shared_is_zero_copy),
        T(test_bufitem_shared_range_must_fit),
#undef T
    };

    alarm(60);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
