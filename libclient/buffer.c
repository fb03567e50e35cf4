/*
 * buffer.c -- shared buffers: segment memory that every session maps.
 *
 * A buffer is an object of kind XICHAN_KIND_BUFFER whose memory is one heap
 * block in state OWNED.  Its lifetime is the object's: bindings and
 * in-flight references keep it (objects.c), the last release frees the
 * block with the object.  Creation reserves and zeroes the block first (no
 * lock held), then xichan__obj_create adopts it under table_lock; see the
 * crash argument there.  Reads and writes of the memory itself are the
 * users' business: the library never looks inside.
 */
#include <string.h>

#include "internal.h"

int xichan_buf_create(xichan_client *cl, size_t size, xichan_buf_id *out)
{
    struct xichan_blk *b;
    uint32_t off;
    uint64_t id;
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!out || size == 0 || size > INT64_MAX)
        return XICHAN_EINVAL;
    if ((err = xichan__heap_alloc(cl->shm, cl->sid, size, &off)))
        return err;
    if (!(b = xichan__blk(cl->shm, off))) /* scribbled since it was reserved */
        return XICHAN_ECORRUPT;
    memset(xichan__item(b), 0, sizeof(struct xichan_itemhdr));
    xichan__item(b)->len = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    /* New memory must not show another item's old bytes. */
    memset(xichan__item_data(b), 0, size);
    id = off;
    err = xichan__obj_create(cl->shm, cl->sid, XICHAN_KIND_BUFFER, (int64_t)size, XICHAN_FMT_RAW,
                             XICHAN_UNBOUND_REPLACE, NULL, &id);
    if (err) {
        xichan__item_discard(cl, off);
        return err;
    }
    out->id = id;
    return 0;
}

static int buf_ref(xichan_client *cl, xichan_buf_id b, struct xichan_objref *ref)
{
    return xichan__resolve(cl, XICHAN_KIND_BUFFER, b.id, ref);
}

int xichan_buf_bind(xichan_client *cl, xichan_buf_id b)
{
    return xichan__lifecycle(cl, XICHAN_KIND_BUFFER, b.id, XICHAN__BIND);
}

int xichan_buf_unbind(xichan_client *cl, xichan_buf_id b)
{
    return xichan__lifecycle(cl, XICHAN_KIND_BUFFER, b.id, XICHAN__UNBIND);
}

int xichan_buf_map(xichan_client *cl, xichan_buf_id b, void **ptr, size_t *size)
{
    struct xichan_objref ref;
    struct xichan_blk *blk;
    int err;

    if (!ptr || !size)
        return XICHAN_EINVAL;
    if ((err = buf_ref(cl, b, &ref)) || (err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
        return err;
    blk = xichan__blk(cl->shm, ref.o->fifo.head);
    /* Untrusted: the block must be an OWNED one big enough for the size. */
    if (!blk || xichan__blk_state(xa_load_relaxed(&blk->state)) != XICHAN_BLK_OWNED ||
        ref.o->maxsize <= 0 ||
        (uint64_t)ref.o->maxsize > ((uint64_t)blk->size - 2) * XICHAN_UNIT) {
        err = XICHAN_ECORRUPT;
    } else {
        *ptr = xichan__item_data(blk);
        *size = (size_t)ref.o->maxsize;
    }
    xichan__obj_unlock(ref.o);
    return err;
}

int xichan_obj_inflight(xichan_client *cl, int kind, uint64_t id, int delta)
{
    struct xichan_objref ref;
    int err;

    if (kind < XICHAN_KIND_QUEUE || kind > XICHAN_KIND_BUFFER)
        return XICHAN_EINVAL;
    if ((err = xichan__resolve(cl, kind, id, &ref)))
        return err;
    return xichan__obj_inflight(cl->shm, &ref, cl->sid, delta);
}
