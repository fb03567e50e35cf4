/*
 * buffer_cross.c -- a shared buffer passed to another process through a
 * queue is the same memory there: the receiver reads the sender's bytes
 * and the sender sees the receiver's writes.  A copied buffer item keeps
 * its format, shape and readonly flag.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static xichan_queue_id q;

static void receiver(void *arg)
{
    xichan_client *cl;
    xichan_item it;
    xichan_bufdesc d;
    char fb[256];
    int64_t sb[XICHAN_BUF_MAXDIM];
    void *p;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(10)));
    XT_OK(xichan_item_buffer(cl, &it, &d, fb, sb, &p));
    xichan_item_release(&it);
    XT_EQ_INT(d.mode, XICHAN_BUF_SHARED);
    XT_EQ_INT(d.nbytes, 1 << 20);
    XT_EQ_INT(((unsigned char *)p)[12345], 12345 % 251);
    ((char *)p)[0] = 'Z'; /* seen by the sender: same memory */
    XT_OK(xichan_buf_unbind(cl, d.buf));

    XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(10)));
    XT_OK(xichan_item_buffer(cl, &it, &d, fb, sb, &p));
    XT_EQ_INT(d.mode, XICHAN_BUF_COPY);
    XT_CHECK(strcmp(d.format, "i") == 0 && d.itemsize == 4 && d.ndim == 2);
    XT_CHECK(d.shape[0] == 2 && d.shape[1] == 2 && d.readonly == 1);
    XT_EQ_INT(((const int *)p)[3], 4);
    xichan_item_release(&it);
    xichan_client_close(cl);
}

int main(void)
{
    xichan_client *cl;
    xichan_buf_id b;
    void *base;
    size_t size;
    pid_t pid;
    int64_t shape1[1] = {1 << 20}, shape2[2] = {2, 2};
    int ints[4] = {1, 2, 3, 4};

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, NULL, &q));
    XT_OK(xichan_buf_create(cl, 1 << 20, &b));
    XT_OK(xichan_buf_map(cl, b, &base, &size));
    for (size_t i = 0; i < size; i++)
        ((unsigned char *)base)[i] = (unsigned char)(i % 251);
    XT_OK(xichan_queue_put_buffer(cl, q,
                                  &(xichan_bufdesc){.mode = XICHAN_BUF_SHARED, .itemsize = 1,
                                                    .ndim = 1, .shape = shape1,
                                                    .nbytes = 1 << 20, .buf = b},
                                  0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put_buffer(cl, q,
                                  &(xichan_bufdesc){.mode = XICHAN_BUF_COPY, .format = "i",
                                                    .itemsize = 4, .ndim = 2, .shape = shape2,
                                                    .readonly = 1, .nbytes = sizeof(ints),
                                                    .data = ints},
                                  0, XICHAN_NOWAIT));
    pid = xt_fork(receiver, NULL);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    XT_EQ_INT(((char *)base)[0], 'Z');
    printf("buffer_cross: 1 MiB shared without a copy; the receiver's write came back\n");
    XT_OK(xichan_buf_unbind(cl, b));
    xichan_client_close(cl);
    return 0;
}
