/*
 * fuzz_msgpack.c -- libFuzzer target: xichan_item_unpack (mpack.c) on an
 * XICHAN_FMT_MSGPACK item whose bytes are the input, as a receiver gets
 * them from another process.
 *
 * Oracles: the result is 0 or XICHAN_ECORRUPT; on success the value can be
 * packed again, and the packed bytes unpack to one value that is equal
 * (msgpack_object_equal; NaN-free values only, as NaN != NaN) and of the
 * same length or shorter (msgpack-c may pick a smaller encoding).  The same
 * bytes as a RAW item, or marked unbound, are refused with XICHAN_EINVAL.
 *
 * msgpack-c sizes an array or map from the count in its header before it
 * has seen the elements, so five bytes (0xdd ff ff ff ff) make it ask
 * malloc for 64 GiB; a failed malloc is its NOMEM error, which
 * xichan_item_unpack reports as XICHAN_ECORRUPT.  Without ASan that costs
 * nothing (the pages are never touched), but ASan poisons the shadow of
 * every allocation, so this target makes allocations above 256 MiB fail at
 * once (max_allocation_size_mb, allocator_may_return_null) rather than
 * count such an input as running out of memory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "xichan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=256";
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_msgpack: %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int has_nan(const msgpack_object *o, int depth)
{
    if (depth > 10000)
        return 1;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isnan(o->via.f64);
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (has_nan(&o->via.array.ptr[i], depth + 1))
                return 1;
        return 0;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (has_nan(&o->via.map.ptr[i].key, depth + 1) ||
                has_nan(&o->via.map.ptr[i].val, depth + 1))
                return 1;
        return 0;
    default:
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    xichan_item item = {0};
    msgpack_unpacked u;
    int err;

    if (!copy)
        return 0;
    memcpy(copy, data, size);
    item.data = copy;
    item.len = size;
    item.fmt = XICHAN_FMT_MSGPACK;
    msgpack_unpacked_init(&u);
    err = xichan_item_unpack(&item, &u);
    CHECK(err == 0 || err == XICHAN_ECORRUPT);
    if (err == 0) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked u2;
        xichan_item again = item;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        CHECK(msgpack_pack_object(&pk, u.data) == 0);
        CHECK(sb.size <= size);
        again.data = sb.data;
        again.len = sb.size;
        msgpack_unpacked_init(&u2);
        CHECK(xichan_item_unpack(&again, &u2) == 0);
        if (!has_nan(&u.data, 0))
            CHECK(msgpack_object_equal(u.data, u2.data));
        msgpack_unpacked_destroy(&u2);
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_unpacked_destroy(&u);
    item.fmt = XICHAN_FMT_RAW;
    CHECK(xichan_item_unpack(&item, &u) == XICHAN_EINVAL);
    item.fmt = XICHAN_FMT_MSGPACK;
    item.unbound = 1;
    CHECK(xichan_item_unpack(&item, &u) == XICHAN_EINVAL);
    CHECK(xichan_item_unpack(NULL, &u) == XICHAN_EINVAL);
    free(copy);
    return 0;
}
