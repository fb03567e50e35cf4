/*
 * xichanctl -- inspect a xichan namespace.
 *
 *   xichanctl [--name N] [--runtime-dir D] [--json] list
 *   xichanctl [...] show ID|q:ID|c:ID|NAME
 *   xichanctl [...] stats
 *
 * It attaches as an ordinary session of kind "ctl" (never starting a
 * daemon), so what it prints is read through the same locked snapshots as
 * any client sees.  Exit codes: 0 ok, 1 usage, 2 no daemon or cannot
 * attach, 3 object not found.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXIT_USAGE 1
#define EXIT_NODAEMON 2
#define EXIT_NOTFOUND 3

static int json;

static const char *kind_name(int kind)
{
    return kind == XICHAN_KIND_QUEUE     ? "queue"
           : kind == XICHAN_KIND_CHANNEL ? "channel"
           : kind == XICHAN_KIND_BUFFER  ? "buffer"
                                         : "?";
}

static const char *state_name(int st)
{
    switch (st) {
    case XICHAN_STATE_OPEN:
        return "open";
    case XICHAN_STATE_CLOSING:
        return "closing";
    case XICHAN_STATE_CLOSED:
        return "closed";
    default:
        return "broken";
    }
}

static const char *op_name(int op)
{
    switch (op) {
    case XICHAN_UNBOUND_REMOVE:
        return "remove";
    case XICHAN_UNBOUND_ERROR:
        return "error";
    default:
        return "replace";
    }
}

/* Prints s as a JSON string (names are user-chosen bytes). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_sessions(xichan_client *cl, const xichan_obj_info *o)
{
    uint32_t sids[64];
    int n = xichan_obj_sessions(cl, o->kind, o->id, sids, 64);

    for (int i = 0; i < n && i < 64; i++)
        printf(json ? "%s%u" : "%s%u", i ? (json ? "," : ",") : "", sids[i]);
    if (n > 64)
        printf(json ? "" : ",...");
}

static void print_json_obj(xichan_client *cl, const xichan_obj_info *o)
{
    printf("{\"kind\":\"%s\",\"id\":%llu,\"name\":", kind_name(o->kind), (unsigned long long)o->id);
    if (o->name[0])
        json_str(o->name);
    else
        printf("null");
    printf(",\"state\":\"%s\",\"count\":%llu,\"maxsize\":%lld,\"bytes\":%llu,\"bound\":%u,"
           "\"unbounditems\":\"%s\",\"sessions\":[",
           state_name(o->state), (unsigned long long)o->count, (long long)o->maxsize,
           (unsigned long long)o->bytes, o->nbound, op_name(o->unboundop));
    print_sessions(cl, o);
    printf("]");
    if (o->kind == XICHAN_KIND_CHANNEL && o->state != XICHAN_STATE_CLOSED) {
        xichan_chan_info ci;
        if (xichan_chan_info_get(cl, (xichan_chan_id){o->id}, &ci) == 0)
            printf(",\"send_sessions\":%u,\"recv_sessions\":%u,\"send_released\":%u,"
                   "\"recv_released\":%u",
                   ci.num_send, ci.num_recv, ci.num_send_released, ci.num_recv_released);
    }
    printf("}");
}

static void print_row(xichan_client *cl, const xichan_obj_info *o)
{
    char maxsize[24];

    if (o->kind == XICHAN_KIND_QUEUE && o->maxsize > 0)
        snprintf(maxsize, sizeof(maxsize), "%lld", (long long)o->maxsize);
    else
        snprintf(maxsize, sizeof(maxsize), "-");
    printf("%-8s %6llu  %-16s %-8s %8llu %8s %10llu %6u  ", kind_name(o->kind),
           (unsigned long long)o->id, o->name[0] ? o->name : "-", state_name(o->state),
           (unsigned long long)o->count, maxsize, (unsigned long long)o->bytes, o->nbound);
    print_sessions(cl, o);
    printf("\n");
}

static int cmd_list(xichan_client *cl)
{
    xichan_obj_info *v = NULL;
    int n = xichan_list(cl, NULL, 0), m;

    if (n < 0)
        goto fail;
    v = calloc((size_t)n + 1, sizeof(*v));
    if (!v)
        return EXIT_FAILURE;
    m = xichan_list(cl, v, (size_t)n);
    if (m < 0) {
        n = m;
        goto fail;
    }
    if (m > n)
        m = n; /* created in between: print what we have room for */
    if (json) {
        printf("{\"objects\":[");
        for (int i = 0; i < m; i++) {
            if (i)
                putchar(',');
            print_json_obj(cl, &v[i]);
        }
        printf("]}\n");
    } else {
        printf("%-8s %6s  %-16s %-8s %8s %8s %10s %6s  %s\n", "KIND", "ID", "NAME", "STATE",
               "COUNT", "MAXSIZE", "BYTES", "BOUND", "SESSIONS");
        for (int i = 0; i < m; i++)
            print_row(cl, &v[i]);
        if (m == 0)
            printf("(no queues or channels)\n");
    }
    free(v);
    return 0;
fail:
    free(v);
    fprintf(stderr, "xichanctl: list: %s\n", xichan_strerror(n));
    return EXIT_FAILURE;
}

static void show_one(xichan_client *cl, const xichan_obj_info *o, int *first)
{
    xichan_chan_info ci;

    if (json) {
        if (!*first)
            putchar(',');
        print_json_obj(cl, o);
    } else {
        printf("%s %llu\n", kind_name(o->kind), (unsigned long long)o->id);
        printf("  name:          %s\n", o->name[0] ? o->name : "-");
        printf("  state:         %s\n", state_name(o->state));
        printf("  items:         %llu (%llu bytes)\n", (unsigned long long)o->count,
               (unsigned long long)o->bytes);
        if (o->kind == XICHAN_KIND_QUEUE)
            printf("  maxsize:       %lld%s\n", (long long)o->maxsize,
                   o->maxsize > 0 ? "" : " (unbounded)");
        printf("  unbounditems:  %s\n", op_name(o->unboundop));
        printf("  bindings:      %u\n", o->nbound);
        printf("  sessions:      ");
        print_sessions(cl, o);
        printf("\n");
        if (o->kind == XICHAN_KIND_CHANNEL && o->state != XICHAN_STATE_CLOSED &&
            xichan_chan_info_get(cl, (xichan_chan_id){o->id}, &ci) == 0)
            printf("  send end:      %u associated, %u released\n"
                   "  recv end:      %u associated, %u released\n",
                   ci.num_send, ci.num_send_released, ci.num_recv, ci.num_recv_released);
    }
    *first = 0;
}

static int cmd_show(xichan_client *cl, const char *arg)
{
    int kinds[2] = {XICHAN_KIND_QUEUE, XICHAN_KIND_CHANNEL}, first = 1, found = 0;
    const char *num = arg;
    char *end;
    unsigned long long id;
    xichan_obj_info info;

    if (!strncmp(arg, "q:", 2) || !strncmp(arg, "c:", 2)) {
        kinds[arg[0] == 'q' ? 1 : 0] = 0;
        num = arg + 2;
    }
    id = strtoull(num, &end, 10);
    if (json)
        printf("{\"objects\":[");
    for (int k = 0; k < 2; k++) {
        if (!kinds[k])
            continue;
        if (*num && !*end) {
            if (xichan_info(cl, kinds[k], id, &info) == 0) {
                show_one(cl, &info, &first);
                found++;
            }
        } else {
            uint64_t oid;
            const char *name = num == arg ? arg : num;
            xichan_queue_id q;
            xichan_chan_id c;
            int err = kinds[k] == XICHAN_KIND_QUEUE ? xichan_queue_open(cl, name, &q)
                                                     : xichan_chan_open(cl, name, &c);
            oid = kinds[k] == XICHAN_KIND_QUEUE ? q.id : c.id;
            if (!err && xichan_info(cl, kinds[k], oid, &info) == 0) {
                show_one(cl, &info, &first);
                found++;
            }
        }
    }
    if (json)
        printf("]}\n");
    if (!found) {
        fprintf(stderr, "xichanctl: show: no queue or channel '%s'\n", arg);
        return EXIT_NOTFOUND;
    }
    return 0;
}

static int cmd_stats(xichan_client *cl)
{
    xichan_stats st;
    int err = xichan_stats_get(cl, &st);

    if (err) {
        fprintf(stderr, "xichanctl: stats: %s\n", xichan_strerror(err));
        return EXIT_FAILURE;
    }
    if (json) {
        printf("{\"segment\":");
        json_str(st.segment_name);
        printf(",\"segment_size\":%llu,\"heap_size\":%llu,\"heap_used\":%llu,\"heap_free\":%llu,"
               "\"objects\":%u,\"max_objects\":%u,\"sessions\":%u,\"max_sessions\":%u,"
               "\"daemon_pid\":%u}\n",
               (unsigned long long)st.segment_size, (unsigned long long)st.heap_size,
               (unsigned long long)st.heap_used, (unsigned long long)st.heap_free, st.objects,
               st.max_objects, st.sessions, st.max_sessions, st.daemon_pid);
    } else {
        printf("segment:   %s (%llu bytes)\n", st.segment_name, (unsigned long long)st.segment_size);
        printf("heap:      %llu used, %llu free of %llu bytes\n", (unsigned long long)st.heap_used,
               (unsigned long long)st.heap_free, (unsigned long long)st.heap_size);
        printf("objects:   %u of %u\n", st.objects, st.max_objects);
        printf("sessions:  %u of %u (this one included)\n", st.sessions, st.max_sessions);
        printf("daemon:    pid %u\n", st.daemon_pid);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: xichanctl [--name N] [--runtime-dir D] [--json] COMMAND\n"
               "\n"
               "commands:\n"
               "  list          every queue and channel: state, items, bindings, sessions\n"
               "  show ID       one object's full info; ID is a number (both kinds),\n"
               "                q:N or c:N for one kind, or an object name\n"
               "  stats         segment usage, objects, sessions, daemon pid\n"
               "\n"
               "The namespace comes from --name, else $XICHAN_NAME, else 'default'.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"runtime-dir", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    xichan_client_opts co = {.autostart = 0, .kind = "ctl"};
    xichan_client *cl;
    const char *cmd;
    int c, err, rc;

    while ((c = getopt_long(argc, argv, "+n:r:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            co.name = optarg;
            break;
        case 'r':
            co.runtime_dir = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[optind];
    /* Options may also follow the command: `xichanctl list --json`. */
    for (int i = optind + 1; i < argc; i++)
        if (!strcmp(argv[i], "--json"))
            json = 1;
    if (strcmp(cmd, "list") && strcmp(cmd, "show") && strcmp(cmd, "stats")) {
        fprintf(stderr, "xichanctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(cmd, "show") && (optind + 1 >= argc || argv[optind + 1][0] == '-')) {
        fprintf(stderr, "xichanctl: show needs an ID or a name\n");
        return EXIT_USAGE;
    }
    err = xichan_client_open(&cl, &co);
    if (err) {
        char ns[64], dir[256];
        if (xichan__ns_name(ns, sizeof(ns), co.name))
            snprintf(ns, sizeof(ns), "%s", co.name ? co.name : "?");
        if (xichan__runtime_dir(dir, sizeof(dir), co.runtime_dir))
            snprintf(dir, sizeof(dir), "?");
        if (err == XICHAN_ENODAEMON)
            fprintf(stderr,
                    "xichanctl: no xichand runs for namespace '%s' (runtime dir %s).\n"
                    "Start one with: xichand --name %s\n",
                    ns, dir, ns);
        else
            fprintf(stderr, "xichanctl: cannot attach to namespace '%s': %s\n", ns,
                    xichan_strerror(err));
        return EXIT_NODAEMON;
    }
    if (!strcmp(cmd, "list"))
        rc = cmd_list(cl);
    else if (!strcmp(cmd, "show"))
        rc = cmd_show(cl, argv[optind + 1]);
    else
        rc = cmd_stats(cl);
    xichan_client_close(cl);
    return rc;
}
