/*
 * proto.c -- checking control messages (proto.h), shared by the daemon and
 * the fuzz targets.  A message is untrusted bytes from another process.
 */
#include <string.h>

#include "internal.h"
#include "proto.h"

int xichan__proto_hello(const void *buf, size_t n, struct xichan_msg_hello *out)
{
    if (!buf || n != sizeof(*out))
        return XICHAN_EINVAL;
    memcpy(out, buf, sizeof(*out));
    /* The kind is a label for xichanctl: make sure it ends. */
    out->kind[sizeof(out->kind) - 1] = '\0';
    if (out->magic != XICHAN_PROTO_MAGIC || out->type != XICHAN_MSG_HELLO)
        return XICHAN_EINVAL;
    if (out->version != XICHAN_PROTO_VERSION || out->layout_hash != xichan__layout_hash())
        return XICHAN_EVERSION;
    return 0;
}

int xichan__proto_bye(const void *buf, size_t n, uint32_t *flags)
{
    struct xichan_msg_bye m;

    if (!buf || n != sizeof(m))
        return XICHAN_EINVAL;
    memcpy(&m, buf, sizeof(m));
    if (m.magic != XICHAN_PROTO_MAGIC || m.type != XICHAN_MSG_BYE)
        return XICHAN_EINVAL;
    *flags = m.flags;
    return 0;
}
