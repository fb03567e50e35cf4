/*
 * fuzz_proto.c -- libFuzzer target: control messages (proto.c) as the
 * daemon receives them, untrusted bytes from another process.
 *
 * The whole input goes to xichan__proto_hello and xichan__proto_bye (whose
 * callers pass any length recv() returned).  Oracles: an accepted HELLO has
 * the right magic, type, version and layout hash and a NUL-terminated kind;
 * an accepted BYE has the exact size.  Inputs of the exact sizes are also
 * tried with the header fields forced valid, so that the fuzzer reaches the
 * accepting paths at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_hello(const void *buf, size_t n)
{
    struct xichan_msg_hello m;
    int err = xichan__proto_hello(buf, n, &m);

    if (err != 0 && err != XICHAN_EINVAL && err != XICHAN_EVERSION)
        abort();
    if (err == 0 && (n != sizeof(m) || m.magic != XICHAN_PROTO_MAGIC ||
                     m.type != XICHAN_MSG_HELLO || m.version != XICHAN_PROTO_VERSION ||
                     m.layout_hash != xichan__layout_hash() ||
                     strnlen(m.kind, sizeof(m.kind)) >= sizeof(m.kind)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t flags;
    int err;

    check_hello(data, size);
    err = xichan__proto_bye(data, size, &flags);
    if (err != 0 && err != XICHAN_EINVAL)
        abort();
    if (err == 0 && size != sizeof(struct xichan_msg_bye))
        abort();
    (void)xichan__proto_hello(NULL, size, &(struct xichan_msg_hello){0});
    (void)xichan__proto_bye(NULL, size, &flags);

    /* The same bytes with a valid header: the accepting paths. */
    if (size >= sizeof(struct xichan_msg_hello)) {
        struct xichan_msg_hello h;
        memcpy(&h, data, sizeof(h));
        h.magic = XICHAN_PROTO_MAGIC;
        h.type = XICHAN_MSG_HELLO;
        if (data[0] & 1) {
            h.version = XICHAN_PROTO_VERSION;
            h.layout_hash = xichan__layout_hash();
        }
        check_hello(&h, sizeof(h));
    }
    if (size >= sizeof(struct xichan_msg_bye)) {
        struct xichan_msg_bye b;
        memcpy(&b, data, sizeof(b));
        b.magic = XICHAN_PROTO_MAGIC;
        flags = ~b.flags;
        if (xichan__proto_bye(&b, sizeof(b), &flags) != (b.type == XICHAN_MSG_BYE ? 0 : XICHAN_EINVAL))
            abort();
        if (b.type == XICHAN_MSG_BYE && flags != b.flags)
            abort();
    }
    return 0;
}
