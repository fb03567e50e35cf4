/*
 * make_seeds.c -- writes the seed corpus of the fuzz targets (`make
 * fuzz-seeds`): a few tiny inputs per target, each aimed at one field, so
 * that the fuzzers start from the interesting places.  The output is
 * committed; rerun after a change to shm_layout.h, proto.h or bufitem.c.
 *
 *   make_seeds DIR     writes DIR/<target>/<name> files
 *
 * fuzz_segment inputs: region, mode, dead-lock mask, offset (4 bytes LE),
 * then the bytes written (see fuzz_segment.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xichan.h"
#include "proto.h"
#include "shm_layout.h"

static const char *root;

static void put(const char *target, const char *name, const void *data, size_t n)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* One fuzz_segment input: header of 7 bytes, then the patch. */
static void seg(const char *name, unsigned region, unsigned mode, unsigned dead, uint32_t off,
                const void *patch, size_t n)
{
    uint8_t buf[256];

    buf[0] = (uint8_t)region;
    buf[1] = (uint8_t)mode;
    buf[2] = (uint8_t)dead;
    buf[3] = (uint8_t)off;
    buf[4] = (uint8_t)(off >> 8);
    buf[5] = (uint8_t)(off >> 16);
    buf[6] = (uint8_t)(off >> 24);
    memcpy(buf + 7, patch, n);
    put("fuzz_segment", name, buf, 7 + n);
}

#define U32(v) (&(uint32_t){(v)}), 4
#define U64(v) (&(uint64_t){(v)}), 8
#define OBJ(i, field) ((uint32_t)((i) * sizeof(struct xichan_obj) + offsetof(struct xichan_obj, field)))
#define BND(i, field) ((uint32_t)((i) * sizeof(struct xichan_binding) + offsetof(struct xichan_binding, field)))
#define SES(i, field) ((uint32_t)((i) * sizeof(struct xichan_session) + offsetof(struct xichan_session, field)))
#define HDR(field) ((uint32_t)offsetof(struct xichan_shm_hdr, field))

enum { R_HDR, R_SES, R_OBJ, R_BND, R_HEAP };
enum { M_REPAIR = 1, M_DATA = 2, M_DESTROY = 4 };

static void segment_seeds(void)
{
    static const uint8_t zeros[64];
    struct xichan_blk blk = {2, 0, XICHAN_BLK_QUEUED, 0};

    /* The untouched template, through each mode (an empty patch is 1 byte). */
    seg("plain-adopt", R_HDR, M_DATA, 0, HDR(reserved1), zeros, 4);
    seg("plain-repair", R_HDR, M_REPAIR | M_DATA | M_DESTROY, 0, HDR(reserved1), zeros, 4);
    seg("all-dead", R_HDR, M_DATA, 0xff, HDR(reserved1), zeros, 4);
    /* Header: derived heap state and table geometry. */
    seg("hdr-bins", R_HDR, M_DATA, 0, HDR(bins), U32(0x7fffffff));
    seg("hdr-bin5", R_HDR, M_DATA, 0, HDR(bins[5]), U32(3));
    seg("hdr-bitmap", R_HDR, M_DATA, 0, HDR(heap_bitmap), U64(~0ull));
    seg("hdr-used", R_HDR, M_DATA, 0, HDR(heap_used), U64(0));
    seg("hdr-blocks", R_HDR, M_DATA, 2, HDR(heap_blocks), U64(~0ull));
    seg("hdr-nbind", R_HDR, 0, 0, HDR(nbindings), U32(17));
    seg("hdr-broken", R_HDR, M_DATA, 0, HDR(table_lock.broken), U32(1));
    seg("hdr-nextsid", R_HDR, 0, 0, HDR(next_sid), U32(XICHAN_SID_MAX));
    /* Sessions. */
    seg("ses-cleaning", R_SES, 0, 0, SES(1, state), U32(XICHAN_SESS_CLEANING));
    seg("ses-sid", R_SES, M_REPAIR, 0, SES(2, sid), U32(1));
    seg("ses-state", R_SES, 0, 0, SES(3, state), U32(7));
    /* Objects. */
    seg("obj-head", R_OBJ, M_DATA, 0x04, OBJ(0, fifo.head), U32(5));
    seg("obj-head-far", R_OBJ, M_DATA, 0, OBJ(1, fifo.head), U32(0xfffffff0));
    seg("obj-count", R_OBJ, M_DATA, 0, OBJ(0, fifo.count), U32(0xffffffff));
    seg("obj-tail", R_OBJ, M_DATA, 0, OBJ(0, fifo.tail), U32(1));
    seg("obj-kind", R_OBJ, M_DATA, 0, OBJ(4, kind), (uint8_t[]){XICHAN_KIND_QUEUE}, 1);
    seg("obj-kind-buf", R_OBJ, M_DATA, 0, OBJ(0, kind), (uint8_t[]){XICHAN_KIND_BUFFER}, 1);
    seg("obj-dying", R_OBJ, 0, 0x01, OBJ(1, flags), U32(XICHAN_OF_DYING));
    seg("obj-maxsize", R_OBJ, M_DATA, 0, OBJ(4, maxsize), U64(1ull << 40));
    seg("obj-name", R_OBJ, M_DATA, 0, OBJ(0, name), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 66);
    seg("obj-refcount", R_OBJ, M_DATA | M_DESTROY, 0, OBJ(0, refcount), U32(0));
    seg("obj-inflight", R_OBJ, M_DATA | M_DESTROY, 0, OBJ(0, inflight), U32(0xffffffff));
    seg("obj-ticket", R_OBJ, M_DATA, 0, OBJ(3, fifo.next_ticket), U32(0x80000000));
    /* Bindings. */
    seg("bnd-slot", R_BND, 0, 0x01, BND(0, slot), U32(200));
    seg("bnd-refs", R_BND, M_DATA | M_DESTROY, 0, BND(1, refs), (uint16_t[]){0xffff}, 2);
    seg("bnd-sid", R_BND, 0, 0, BND(5, sid), U32(3));
    /* Heap: block headers, states, links, item headers. */
    seg("heap-size0", R_HEAP, M_DATA, 0x02, 16, U32(0));
    seg("heap-size-big", R_HEAP, M_DATA, 0, 16, U32(0xffffff));
    seg("heap-state", R_HEAP, M_DATA, 0, 16 + 8, U32(XICHAN_BLK_LEASED | 2u << 4));
    seg("heap-link-self", R_HEAP, M_DATA, 0, 64 + 12, U32(4));
    seg("heap-freelink", R_HEAP, M_DATA, 0, 16 + 16, U64(0x0000100000001000ull));
    seg("heap-prev", R_HEAP, M_DATA, 0, 64 + 4, U32(3));
    seg("heap-itemlen", R_HEAP, M_DATA, 0, 64 + 16, U32(0xffffffff));
    seg("heap-blk", R_HEAP, M_DATA | M_REPAIR, 0x03, 160, &blk, sizeof(blk));
    seg("heap-zero", R_HEAP, M_DATA, 0x02, 0, zeros, 64);
}

static void proto_seeds(void)
{
    struct xichan_msg_hello h = {XICHAN_PROTO_MAGIC, XICHAN_MSG_HELLO, XICHAN_PROTO_VERSION, 0,
                                 1234, 0, 0, 0, "c"};
    struct xichan_msg_bye b = {XICHAN_PROTO_MAGIC, XICHAN_MSG_BYE, 0, 0};

    put("fuzz_proto", "hello", &h, sizeof(h));
    memset(h.kind, 'k', sizeof(h.kind));
    h.reattach_sid = 7;
    put("fuzz_proto", "hello-longkind", &h, sizeof(h));
    put("fuzz_proto", "bye", &b, sizeof(b));
    b.type = XICHAN_MSG_BYE_ACK;
    put("fuzz_proto", "bye-ack", &b, sizeof(b));
    put("fuzz_proto", "short", "XCH1", 4);
}

/* A BXF1 payload (bufitem.c's layout), written by hand: the encoder is under test. */
static void bufitem_seed(const char *name, uint8_t mode, uint8_t ndim, const char *fmt,
                         uint64_t itemsize, const int64_t *shape, size_t tail)
{
    uint8_t buf[512] = {0};
    uint64_t nbytes = itemsize;
    size_t off = 24, fl = strlen(fmt);
    uint32_t magic = 0x31465842u;

    for (int i = 0; i < ndim; i++)
        nbytes *= (uint64_t)shape[i];
    memcpy(buf, &magic, 4);
    buf[4] = mode;
    buf[5] = 1;
    buf[6] = ndim;
    buf[7] = (uint8_t)fl;
    memcpy(buf + 8, &itemsize, 8);
    memcpy(buf + 16, &nbytes, 8);
    memcpy(buf + off, shape, 8u * ndim);
    off += 8u * ndim;
    memcpy(buf + off, fmt, fl);
    off += (fl + 7) & ~(size_t)7;
    if (mode == 1) {
        uint64_t w[2] = {3, 8};
        memcpy(buf + off, w, 16);
        off += 16;
    } else {
        if (mode == 2) {
            uint64_t w[3] = {4242, 99, 0x7f0000001000ull};
            memcpy(buf + off, w, 24);
            off += 24;
        }
        for (uint64_t i = 0; i < nbytes && off < sizeof(buf); i++)
            buf[off++] = (uint8_t)i;
    }
    put("fuzz_bufitem", name, buf, off + tail);
}

static void bufitem_seeds(void)
{
    int64_t s2[2] = {2, 3}, s1[1] = {5}, s0[1] = {0};

    bufitem_seed("copy-2d", 0, 2, "i", 4, s2, 0);
    bufitem_seed("shared-1d", 1, 1, "<h", 2, s1, 0);
    bufitem_seed("local-1d", 2, 1, "B", 1, s1, 0);
    bufitem_seed("copy-scalar", 0, 0, "d", 8, NULL, 0);
    bufitem_seed("copy-empty", 0, 1, "", 1, s0, 0);
    bufitem_seed("copy-trailing", 0, 1, "Q", 8, s1, 3);
}

static void msgpack_seeds(void)
{
    /* [1, "ab", {nil: true}, 1.5, b"\x00", ext(3, "x")] */
    static const uint8_t mixed[] = {0x96, 0x01, 0xa2, 'a', 'b', 0x81, 0xc0, 0xc3, 0xcb, 0x3f,
                                    0xf8, 0, 0, 0, 0, 0, 0, 0xc4, 0x01, 0x00, 0xd4, 0x03, 'x'};
    static const uint8_t nested[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x90};
    static const uint8_t big[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t two[] = {0x01, 0x02};

    put("fuzz_msgpack", "mixed", mixed, sizeof(mixed));
    put("fuzz_msgpack", "nested", nested, sizeof(nested));
    put("fuzz_msgpack", "array32-huge", big, sizeof(big));
    put("fuzz_msgpack", "two-values", two, sizeof(two));
    put("fuzz_msgpack", "str8", (const uint8_t[]){0xd9, 0x03, 'x', 'y', 'z'}, 5);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) < 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    segment_seeds();
    proto_seeds();
    bufitem_seeds();
    msgpack_seeds();
    return 0;
}
