/*
 * pickleitem.c -- the payload of XICHAN_FMT_PICKLE_OOB items: a Python
 * pickle (protocol 5) and the out-of-band buffers it refers to, so that a
 * big bytes, bytearray, memoryview or numpy array is copied once into the
 * item and once out of it (the Python binding writes them; any client may
 * read them with xichan_pickleitem_parse).
 *
 * PAYLOAD LAYOUT (xichan.7).  Native byte order (all parties share a
 * machine):
 *
 *   offset  size     field
 *   0       4        magic 0x31424B50 ("PKB1")
 *   4       4        nbuf: how many out-of-band buffers
 *   8       8        pickle length
 *   16      24*nbuf  per buffer: u64 offset from the payload's start (a
 *                    multiple of 64), u64 length, u64 flags (bit 0:
 *                    read-only; other bits are 0)
 *   then the pickle, then each buffer at its offset, zero padding between.
 *
 * The i-th buffer is what pickle.loads(buffers=...) takes as its i-th (the
 * pickle's NEXT_BUFFER opcodes, in order).  Parsing trusts nothing: every
 * offset and length is checked against the payload.  Nothing here touches
 * shared state.
 */
#include <string.h>

#include "internal.h"

struct pkb_hdr {
    uint32_t magic;
    uint32_t nbuf;
    uint64_t picklen;
};

struct pkb_ent {
    uint64_t off, len, flags;
};

_Static_assert(sizeof(struct pkb_hdr) == XICHAN_PICKLEITEM_HDR, "header size");
_Static_assert(sizeof(struct pkb_ent) == XICHAN_PICKLEITEM_ENT, "entry size");

int xichan_pickleitem_parse(const void *payload, size_t len, const void **pickle, size_t *picklen,
                            xichan_picklebuf *bufs, size_t cap)
{
    const unsigned char *p = payload;
    struct pkb_hdr h;
    size_t body;

    if (!payload || !pickle || !picklen || (cap && !bufs))
        return XICHAN_EINVAL;
    if (len < sizeof(h))
        return XICHAN_ECORRUPT;
    memcpy(&h, p, sizeof(h));
    if (h.magic != XICHAN_PICKLEITEM_MAGIC || h.nbuf > (len - sizeof(h)) / sizeof(struct pkb_ent) ||
        h.nbuf > INT32_MAX)
        return XICHAN_ECORRUPT;
    body = sizeof(h) + (size_t)h.nbuf * sizeof(struct pkb_ent);
    if (h.picklen > len - body)
        return XICHAN_ECORRUPT;
    *pickle = p + body;
    *picklen = (size_t)h.picklen;
    body += (size_t)h.picklen;
    for (uint32_t i = 0; i < h.nbuf; i++) {
        struct pkb_ent e;

        memcpy(&e, p + sizeof(h) + (size_t)i * sizeof(e), sizeof(e));
        if (e.off < body || e.off > len || e.len > len - e.off || (e.flags & ~(uint64_t)1))
            return XICHAN_ECORRUPT;
        if (i < cap) {
            bufs[i].data = p + e.off;
            bufs[i].len = (size_t)e.len;
            bufs[i].readonly = (int)(e.flags & 1);
        }
    }
    return (int)h.nbuf;
}

size_t xichan_pickleitem_header(size_t picklen, const size_t *lens, const int *readonly,
                                size_t nbuf, void *out, size_t cap)
{
    size_t hdr = sizeof(struct pkb_hdr) + nbuf * sizeof(struct pkb_ent), off;
    struct pkb_hdr h = {XICHAN_PICKLEITEM_MAGIC, (uint32_t)nbuf, picklen};
    unsigned char *p = out;

    if (nbuf > INT32_MAX || (!lens && nbuf) || !out || cap < hdr)
        return 0;
    memcpy(p, &h, sizeof(h));
    off = hdr + picklen;
    for (size_t i = 0; i < nbuf; i++) {
        struct pkb_ent e;

        off += (XICHAN_PICKLEITEM_ALIGN - off % XICHAN_PICKLEITEM_ALIGN) % XICHAN_PICKLEITEM_ALIGN;
        e.off = off;
        e.len = lens[i];
        e.flags = readonly && readonly[i] ? 1 : 0;
        memcpy(p + sizeof(h) + i * sizeof(e), &e, sizeof(e));
        off += lens[i];
    }
    return hdr;
}
