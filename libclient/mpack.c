/*
 * mpack.c -- msgpack-c conveniences for C programs (xichan.h, "msgpack").
 *
 * The library itself never parses payloads; these helpers only run in the
 * calling process, on its own items, outside every lock.
 */
#include <msgpack.h>

#include "internal.h"

int xichan_queue_put_msgpack(xichan_client *cl, xichan_queue_id q, const msgpack_sbuffer *sb,
                             int64_t deadline_ns)
{
    if (!sb)
        return XICHAN_EINVAL;
    return xichan_queue_put(cl, q, XICHAN_FMT_MSGPACK, sb->data, sb->size, 0, deadline_ns);
}

int xichan_chan_send_msgpack(xichan_client *cl, xichan_chan_id c, const msgpack_sbuffer *sb,
                             int64_t deadline_ns)
{
    if (!sb)
        return XICHAN_EINVAL;
    return xichan_chan_send(cl, c, XICHAN_FMT_MSGPACK, sb->data, sb->size, 0, deadline_ns);
}

int xichan_item_unpack(const xichan_item *item, msgpack_unpacked *out)
{
    size_t off = 0;

    if (!item || !out || item->fmt != XICHAN_FMT_MSGPACK || item->unbound)
        return XICHAN_EINVAL;
    /* msgpack_unpack_next copies into out's own zone, so out outlives the item. */
    if (msgpack_unpack_next(out, item->data, item->len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != item->len)
        return XICHAN_ECORRUPT;
    return 0;
}
