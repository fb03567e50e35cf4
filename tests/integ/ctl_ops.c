/*
 * ctl_ops.c -- xichanctl's operator commands, as an operator runs them:
 *
 *   peek    prints the first items with their index and takes none (the
 *           queue's count and a handle item's in-flight reference are
 *           unchanged), --count, --json, an empty queue exits 4;
 *   purge   drops every item and keeps the queue (still usable, bindings
 *           kept), refuses a channel (1) and an unknown name (3);
 *   traffic the per-object counters in show, list --json and stats, and
 *           watch's and stats --interval's rates (present from the second
 *           look on; values are not timed here);
 *   metrics the Prometheus text (the Python suite parses it with
 *           prometheus_client: tests/python/test_metrics.py), --output
 *           writing the file whole and leaving no temporary behind, and
 *           --json refused;
 *   options before the command, as xichanctl(1) promises.
 */
#include <msgpack.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static xichan_client *cl;

static void put_str(xichan_queue_id q, const char *s)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, s, strlen(s));
    XT_OK(xichan_queue_put_msgpack(cl, q, &sb, XICHAN_NOWAIT));
    msgpack_sbuffer_destroy(&sb);
}

static void test_peek(xichan_queue_id q)
{
    xichan_queue_opts o = {.name = "peek-target"};
    xichan_queue_id target;
    xichan_obj_info before, after;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    unsigned char h[XICHAN_EXT_HANDLE_SIZE] = {XICHAN_KIND_QUEUE, 0};

    EXPECT(4, "is empty", "xichanctl peek jobs");
    put_str(q, "first");
    put_str(q, "second");
    put_str(q, "third");
    /* An item holding a handle, with the in-flight reference a packer takes. */
    XT_OK(xichan_queue_create(cl, &o, &target));
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(target.id >> (8 * i));
    XT_OK(xichan_obj_inflight(cl, XICHAN_KIND_QUEUE, target.id, +1));
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_ext_with_body(&pk, h, sizeof(h), XICHAN_EXT_HANDLE);
    XT_OK(xichan_queue_put_msgpack(cl, q, &sb, XICHAN_NOWAIT));
    msgpack_sbuffer_destroy(&sb);
    XT_OK(xichan_info(cl, XICHAN_KIND_QUEUE, target.id, &before));

    EXPECT(0, "0: \"first\"\n1: \"second\"\n2: \"third\"\n3: <queue ", "xichanctl peek jobs");
    XT_EQ_INT(xichan_queue_count(cl, q), 4);
    XT_OK(xichan_info(cl, XICHAN_KIND_QUEUE, target.id, &after));
    XT_EQ_INT(after.nbound, before.nbound); /* the item still holds its reference */
    EXPECT(0, "1: \"second\"", "xichanctl peek jobs --count 2");
    XT_CHECK(!strstr(out, "2: "));
    EXPECT(0, "\"index\":0,", "xichanctl peek jobs --json --count 1");
    HAS("\"value\":\"first\"}");
    EXPECT(1, NULL, "xichanctl peek jobs --count 0");
    EXPECT(3, NULL, "xichanctl peek nosuch");
    EXPECT(0, "takes none of them", "xichanctl help peek");
    /* Nothing was taken by any of it. */
    XT_EQ_INT(xichan_queue_count(cl, q), 4);
}

static void test_traffic(xichan_queue_id q)
{
    xichan_item it;

    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);
    EXPECT(0, "traffic:       4 puts, 1 gets, ", "xichanctl show jobs");
    EXPECT(0, "\"puts\":4,\"gets\":1,\"put_bytes\":", "xichanctl list --json");
    EXPECT(0, "traffic:   4 puts, 1 gets, ", "xichanctl stats");
    XT_CHECK(!strstr(out, "rates:"));
    EXPECT(0, "\"puts\":4,\"gets\":1,", "xichanctl stats --interval 0.05 --json");
    HAS("\"puts_per_s\":");
    /* watch: rates from the second refresh on. */
    EXPECT(0, NULL, "xichanctl watch --json --count 2 --interval 0.05 | head -1");
    XT_CHECK(!strstr(out, "puts_per_s"));
    EXPECT(0, "\"gets_per_s\":", "xichanctl watch --json --count 2 --interval 0.05 | tail -1");
    EXPECT(0, "PUT/s", "xichanctl watch --count 2 --interval 0.05");
    HAS("rates:     ");
}

static void test_metrics(void)
{
    char path[600];

    EXPECT(0, "# TYPE xichan_puts_total counter\n", "xichanctl metrics");
    HAS("kind=\"queue\",id=\"1\",name=\"jobs\"} 4\n"); /* puts */
    HAS("xichan_up{namespace=\"");
    EXPECT(1, "Prometheus", "xichanctl metrics --json");
    snprintf(path, sizeof(path), "%s/m.prom", xt_runtime_dir());
    XT_EQ_INT(run("xichanctl metrics --output %s && grep -c '^xichan_gets_total' %s && "
                  "ls %s | grep -c tmp",
                  path, path, xt_runtime_dir()),
              1); /* grep -c finds no tmp file: status 1 */
    HAS("2\n0\n"); /* gets of jobs and peek-target; no temporary file */
    EXPECT(5, "cannot create", "xichanctl metrics --output /nonexistent-dir/m.prom");
}

static void test_purge(xichan_queue_id q)
{
    xichan_chan_opts co = {.name = "chan"};
    xichan_chan_id ch;

    EXPECT(0, "3 items dropped", "xichanctl purge jobs");
    XT_EQ_INT(xichan_queue_count(cl, q), 0);
    EXPECT(0, "\"items\":0", "xichanctl purge jobs --json");
    put_str(q, "after");                       /* the queue lives on */
    EXPECT(0, "\"after\"", "xichanctl get jobs");
    XT_OK(xichan_chan_create(cl, &co, &ch));
    EXPECT(1, "purge is for queues", "xichanctl purge chan");
    EXPECT(3, NULL, "xichanctl purge nosuch");
}

/* xichanctl(1): options may come before the command as well as after it
 * (once `xichanctl --kind channel destroy 9` was "unknown option"). */
static void test_options_before_the_command(void)
{
    xichan_chan_id ch;

    XT_OK(xichan_chan_open(cl, "chan", &ch));
    EXPECT(4, NULL, "xichanctl --kind queue --json peek jobs"); /* empty, and --json kept */
    EXPECT(4, NULL, "xichanctl --count 1 --kind queue peek jobs");
    /* Still checked against the command: */
    EXPECT(1, "--maxsize does not apply to list", "xichanctl --maxsize 3 list");
    EXPECT(0, "destroyed channel", "xichanctl --name %s --kind channel destroy %llu", xt_name(),
           (unsigned long long)ch.id);
    EXPECT(1, "unknown option '--bogus'", "xichanctl --bogus list");
    EXPECT(0, "usage: xichanctl peek", "xichanctl --json help peek");
}

int main(void)
{
    xichan_queue_opts o = {.name = "jobs"};
    xichan_queue_id q;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &o, &q));
    test_peek(q);
    test_traffic(q);
    test_metrics();
    test_purge(q);
    test_options_before_the_command();
    xichan_client_close(cl);
    printf("ctl_ops: peek, traffic counters and rates, metrics, purge, options before the "
           "command\n");
    return 0;
}
