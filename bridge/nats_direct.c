/*
 * nats_direct.c -- the baseline for scripts/bench/bridge.py: what nats.c
 * alone does on the same cluster, with no xichan in the path.
 *
 *   nats_direct --server URL [--size B] [--rounds N] [--items N]
 *               [--replicas R] [--memory]
 *
 * rtt:        the two JetStream hops of a bridged round trip, done by one
 *             process: publish on subject A (synchronous), pull it and ack,
 *             publish on B, pull it and ack.  p50/p99 over --rounds.
 * throughput: one thread publishes --items messages asynchronously while
 *             another pulls (batches of up to 256) and acks each; items/s
 *             from the first publish to the last message pulled.
 * Prints one JSON line.  Its two streams (work-queue retention) are made
 * for the run and deleted after it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

static const char *server = "nats://127.0.0.1:4222";
static int size = 64, rounds = 500, items = 20000, replicas = 1, memory;
static natsConnection *nc;
static jsCtx *js;
static char stream[2][64], subj[2][64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, natsStatus s)
{
    fprintf(stderr, "nats_direct: %s: %s (%s)\n", what, natsStatus_GetText(s),
            nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
    exit(1);
}

static natsSubscription *setup(int i)
{
    jsStreamConfig cfg;
    jsConsumerConfig cc;
    jsSubOptions so;
    const char *subjects[1] = {subj[i]};
    natsSubscription *sub = NULL;
    natsStatus s;

    jsStreamConfig_Init(&cfg);
    cfg.Name = stream[i];
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = js_WorkQueuePolicy;
    cfg.Storage = memory ? js_MemoryStorage : js_FileStorage;
    cfg.Replicas = replicas;
    for (int t = 0; t < 60; t++) {
        if ((s = js_AddStream(NULL, js, &cfg, NULL, NULL)) == NATS_OK)
            break;
        usleep(500000);
    }
    if (s != NATS_OK)
        die("add stream", s);
    jsConsumerConfig_Init(&cc);
    cc.Durable = "bench";
    cc.AckPolicy = js_AckExplicit;
    cc.MaxAckPending = -1;
    if ((s = js_AddConsumer(NULL, js, stream[i], &cc, NULL, NULL)) != NATS_OK)
        die("add consumer", s);
    jsSubOptions_Init(&so);
    so.Stream = stream[i];
    so.Consumer = "bench";
    so.ManualAck = true;
    if ((s = js_PullSubscribe(&sub, js, subj[i], "bench", NULL, &so, NULL)) != NATS_OK)
        die("pull subscribe", s);
    return sub;
}

static void hop(natsSubscription *sub, int i, const char *data)
{
    natsMsgList list = {0};
    natsStatus s;

    if ((s = js_Publish(NULL, js, subj[i], data, size, NULL, NULL)) != NATS_OK)
        die("publish", s);
    if ((s = natsSubscription_Fetch(&list, sub, 1, 5000, NULL)) != NATS_OK || list.Count != 1)
        die("fetch", s);
    natsMsg_Ack(list.Msgs[0], NULL);
    natsMsgList_Destroy(&list);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static natsSubscription *tsub;
static double t_last;

static void *puller(void *arg)
{
    int got = 0;

    while (got < items) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, tsub, 256, 5000, NULL);
        if (s != NATS_OK)
            die("bulk fetch", s);
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    t_last = now_s();
    return arg;
}

int main(int argc, char **argv)
{
    natsOptions *o = NULL;
    natsSubscription *sa, *sb;
    jsPubOptions po;
    pthread_t th;
    double *ts, t0;
    char *data;
    natsStatus s;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--memory")) { memory = 1; continue; }
        if (!v) { fprintf(stderr, "nats_direct: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--server")) server = v;
        else if (!strcmp(a, "--size")) size = atoi(v);
        else if (!strcmp(a, "--rounds")) rounds = atoi(v);
        else if (!strcmp(a, "--items")) items = atoi(v);
        else if (!strcmp(a, "--replicas")) replicas = atoi(v);
        else { fprintf(stderr, "nats_direct: unknown option %s\n", a); return 2; }
        i++;
    }
    if (size < 1 || rounds < 10 || items < 1 || replicas < 1) {
        fprintf(stderr, "nats_direct: bad numbers\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(stream[i], sizeof(stream[i]), "BENCH_%d_%d", (int)getpid(), i);
        snprintf(subj[i], sizeof(subj[i]), "bench.%d.%d", (int)getpid(), i);
    }
    if ((s = natsOptions_Create(&o)) != NATS_OK || (s = natsOptions_SetURL(o, server)) ||
        (s = natsOptions_SetSendAsap(o, true)) || (s = natsConnection_Connect(&nc, o)) ||
        (s = natsConnection_JetStream(&js, nc, NULL)))
        die("connect", s);
    data = malloc((size_t)size);
    memset(data, 'x', (size_t)size);
    sa = setup(0);
    sb = setup(1);
    ts = calloc((size_t)rounds, sizeof(double));
    for (int r = -20; r < rounds; r++) {
        double t = now_s();
        hop(sa, 0, data);
        hop(sb, 1, data);
        if (r >= 0)
            ts[r] = now_s() - t;
    }
    qsort(ts, (size_t)rounds, sizeof(double), cmp);
    tsub = sa;
    jsPubOptions_Init(&po);
    t0 = now_s();
    pthread_create(&th, NULL, puller, NULL);
    for (int i = 0; i < items; i++)
        if ((s = js_PublishAsync(js, subj[0], data, size, NULL)) != NATS_OK)
            die("async publish", s);
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK)
        die("async complete", s);
    pthread_join(th, NULL);
    printf("{\"size\":%d,\"rtt_p50_ms\":%.3f,\"rtt_p99_ms\":%.3f,\"items_per_s\":%.0f}\n", size,
           ts[rounds / 2] * 1e3, ts[(int)(rounds * 0.99)] * 1e3, items / (t_last - t0));
    natsSubscription_Destroy(sa);
    natsSubscription_Destroy(sb);
    for (int i = 0; i < 2; i++)
        js_DeleteStream(js, stream[i], NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    free(ts);
    free(data);
    nats_Close();
    return 0;
}
