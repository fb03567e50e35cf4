/*
 * bridge.h -- xichan-bridge: named xichan queues that span machines over a
 * NATS JetStream cluster.  The design is at the top of span.c; main.c has
 * the options, ids.c the recent-id table, status.c the state file.
 */
#ifndef XICHAN_BRIDGE_H
#define XICHAN_BRIDGE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <nats/nats.h>

#include "xichan.h"

#define BRIDGE_MAX_SPANS 64
#define BRIDGE_MAX_SERVERS 16

struct bridge;

/* The recent-id table (ids.c): message ids this machine put into its queues. */
struct ids;
int ids_open(struct ids **out, const char *path, uint32_t capacity);
/* 1 if id was recorded, 0 if not. */
int ids_seen(struct ids *t, const char *id);
void ids_add(struct ids *t, const char *id);
void ids_close(struct ids *t);

/* One spanned queue (span.c). */
struct span {
    struct bridge *br;
    char name[64];          /* the xichan queue's name */
    char stream[96];        /* JetStream stream: XQ_<name, escaped> */
    char subject[112];      /* its one subject: xichan.q.<name, escaped> */
    xichan_queue_id q;
    int64_t maxsize;        /* the stream's max_msgs; <= 0 unbounded */
    natsSubscription *sub;  /* pull subscription on the shared durable consumer */
    jsCtx *js;              /* its own context: its async publish acks come to on_ack */
    int window;             /* items published at once (<= maxsize of a bounded stream) */
    xichan_item *win;       /* the leased items of the batch in flight */
    char (*win_id)[160];    /* their message ids */
    int *win_state;         /* PUB_* (span.c), under win_lock */
    uint64_t *win_seq;      /* stream sequence of each (bit 63: a duplicate), for the trace */
    int win_n;
    unsigned win_gen;       /* the batch in flight: its slot headers carry it */
    pthread_mutex_t win_lock;
    pthread_t out_thread, in_thread;
    int threads;
    /* counters, read by status.c */
    atomic_uint_fast64_t out, in, dups_out, dups_in, refused, full_waits, unbound;
    atomic_int pending_acks; /* imported items put here, not yet acknowledged */
    atomic_int held;         /* local items leased, not yet acknowledged by JetStream */
};

struct bridge {
    /* options */
    const char *ns, *runtime_dir, *machine;
    const char *servers[BRIDGE_MAX_SERVERS];
    int nservers;
    const char *span_names[BRIDGE_MAX_SPANS];
    int nspans;
    int replicas, window, prefetch;
    int64_t ack_wait_ms, dup_window_ms, pub_wait_ms;
    int memory_storage;
    const char *creds, *nkey_seed, *user, *password, *token, *tls_ca, *tls_cert, *tls_key;
    int tls;
    int trace;              /* XICHAN_BRIDGE_TRACE=1: a log line per item that crosses */
    uint32_t ids_capacity;
    /* state */
    xichan_client *cl;
    natsConnection *nc;
    jsCtx *js;
    struct ids *ids;
    pthread_mutex_t ids_lock;
    int64_t max_payload;
    char boot[32];           /* the segment's creation time, hex: a new segment is a new boot */
    char status_path[512];
    struct span spans[BRIDGE_MAX_SPANS];
    volatile sig_atomic_t stop;
    atomic_int connected;
    pthread_mutex_t err_lock;
    char last_error[256];
};

/* Records the last error (shown by the status file) and logs it. */
void bridge_error(struct bridge *br, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bridge_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* span.c */
int span_setup(struct bridge *br, struct span *sp, const char *name);
int span_start(struct span *sp);
void span_join(struct span *sp);

/* status.c: writes <runtime-dir>/<ns>.bridge (JSON) atomically. */
void status_write(struct bridge *br, int final);

#endif
