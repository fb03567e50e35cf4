/*
 * header_order.c -- the msgpack helpers are declared whatever the order of
 * the headers: this file includes <xichan.h> (through harness.h) before
 * <msgpack.h>, which once hid xichan_queue_put_msgpack, xichan_chan_send_msgpack
 * and xichan_item_unpack (an implicit-declaration warning, then a call
 * through an implicit int prototype).  The build's -Werror makes compiling
 * it the first half of the test; the round trip through a queue the second.
 */
#include "harness.h"

#include <msgpack.h>

int main(void)
{
    xichan_client *cl;
    xichan_queue_id q;
    xichan_item it;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, NULL, &q));
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_int64(&pk, -42);
    XT_OK(xichan_queue_put_msgpack(cl, q, &sb, XICHAN_NOWAIT));
    msgpack_sbuffer_destroy(&sb);
    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    msgpack_unpacked_init(&u);
    XT_OK(xichan_item_unpack(&it, &u));
    XT_EQ_INT(u.data.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    XT_EQ_INT(u.data.via.i64, -42);
    msgpack_unpacked_destroy(&u);
    xichan_item_release(&it);
    xichan_client_close(cl);
    printf("header_order: <xichan.h> before <msgpack.h> declares the msgpack helpers\n");
    return 0;
}
