/*
 * atomics.h -- the one place xichan spells its atomics.
 *
 * Only lock-free 16-, 32- and 64-bit C11 atomics are used: they are
 * address-free, so they work between processes that map the segment at
 * different addresses (a libatomic fallback with a process-local lock would
 * not).  Every use names its memory order and, at the call site, the store or
 * load it pairs with.
 */
#ifndef XICHAN_ATOMICS_H
#define XICHAN_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint16_t xichan_atomic_u16;
typedef _Atomic uint32_t xichan_atomic_u32;
typedef _Atomic uint64_t xichan_atomic_u64;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_SHORT_LOCK_FREE == 2, "16-bit atomics must be lock-free");

#define xa_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define xa_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define xa_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define xa_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define xa_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define xa_add_release(p, v) atomic_fetch_add_explicit((p), (v), memory_order_release)
#define xa_add_acqrel(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define xa_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
#define xa_or_release(p, v) atomic_fetch_or_explicit((p), (v), memory_order_release)
#define xa_and_release(p, v) atomic_fetch_and_explicit((p), (v), memory_order_release)
#define xa_exchange_acquire(p, v) atomic_exchange_explicit((p), (v), memory_order_acquire)

/* A full fence: used where a waiter hint store must not pass a later load. */
#define xa_fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)

#endif /* XICHAN_ATOMICS_H */
