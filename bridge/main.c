/*
 * main.c -- xichan-bridge: options, the two connections (a libxichan
 * session and a nats.c connection), signals, and the status loop.
 *
 * One bridge per machine and namespace, in the foreground until SIGTERM or
 * SIGINT.  It is an ordinary client of the namespace's xichand (never run
 * inside it).  On a stop it finishes the publish in hand (or puts the item
 * back), acknowledges what it put, and exits 0; a bridge killed instead
 * loses nothing either (span.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "internal.h" /* runtime dir and namespace resolution, the segment's creation time */

#define EXIT_USAGE 2

static struct bridge *the_bridge;

void bridge_log(const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ xichan-bridge[%d]: ", when, ts.tv_nsec / 1000000, (int)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void bridge_error(struct bridge *br, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&br->err_lock);
    memcpy(br->last_error, buf, sizeof(buf));
    pthread_mutex_unlock(&br->err_lock);
    bridge_log("error: %s", buf);
}

static void on_signal(int sig)
{
    (void)sig;
    if (the_bridge)
        the_bridge->stop = 1;
}

static int check_stop(void *arg)
{
    return ((struct bridge *)arg)->stop != 0;
}

static void on_disconnected(natsConnection *nc, void *arg)
{
    struct bridge *br = arg;
    atomic_store(&br->connected, 0);
    if (!br->stop)
        bridge_error(br, "disconnected from NATS; reconnecting");
}

static void on_reconnected(natsConnection *nc, void *arg)
{
    struct bridge *br = arg;
    char url[256] = "";
    atomic_store(&br->connected, 1);
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    bridge_log("reconnected to %s", url);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xichan-bridge [options] --server URL --span QUEUE...\n"
            "Spans named xichan queues over a NATS JetStream cluster (see xichan-bridge(8)).\n"
            "  -n, --name NS           namespace (default: $XICHAN_NAME or 'default')\n"
            "  -r, --runtime-dir DIR   runtime dir of the namespace's xichand\n"
            "  -s, --server URL        a NATS server (repeatable; default nats://127.0.0.1:4222)\n"
            "  -q, --span QUEUE        a named queue to span (repeatable; created if missing)\n"
            "      --replicas N        stream replicas when the bridge creates a stream (default 1)\n"
            "      --memory            streams it creates keep messages in memory, not files\n"
            "      --ack-wait SEC      redelivery delay of an unacknowledged message (default 30)\n"
            "      --dup-window SEC    JetStream's duplicate window for new streams (default 120)\n"
            "      --publish-wait SEC  wait for a publish acknowledgement (default 2)\n"
            "      --window N          items published before waiting for acks (default 256)\n"
            "      --prefetch N        items brought ahead of waiting getters (default 0)\n"
            "      --machine ID        this machine's part of message ids (default: host name)\n"
            "      --ids N             recent-id table entries (default 65536)\n"
            "      --creds FILE        NATS user credentials file\n"
            "      --user U --password P, --token T\n"
            "      --tls               require TLS; --tls-ca FILE, --tls-cert FILE --tls-key FILE\n"
            "  -h, --help, --version\n");
}

static int parse_seconds(const char *s, int64_t *ms)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 86400.0 * 365)
        return -1;
    *ms = (int64_t)(v * 1000.0 + 0.5);
    return *ms > 0 ? 0 : -1;
}

static int parse_args(struct bridge *br, int argc, char **argv)
{
    enum { O_REPLICAS = 256, O_MEMORY, O_ACKWAIT, O_DUPWIN, O_PUBWAIT, O_MACHINE, O_IDS, O_CREDS,
           O_USER, O_PASSWORD, O_TOKEN, O_TLS, O_TLSCA, O_TLSCERT, O_TLSKEY, O_VERSION,
           O_WINDOW, O_PREFETCH };
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},      {"runtime-dir", required_argument, NULL, 'r'},
        {"server", required_argument, NULL, 's'},    {"span", required_argument, NULL, 'q'},
        {"replicas", required_argument, NULL, O_REPLICAS}, {"memory", no_argument, NULL, O_MEMORY},
        {"ack-wait", required_argument, NULL, O_ACKWAIT},
        {"dup-window", required_argument, NULL, O_DUPWIN},
        {"publish-wait", required_argument, NULL, O_PUBWAIT},
        {"machine", required_argument, NULL, O_MACHINE}, {"ids", required_argument, NULL, O_IDS},
        {"window", required_argument, NULL, O_WINDOW},
        {"prefetch", required_argument, NULL, O_PREFETCH},
        {"creds", required_argument, NULL, O_CREDS}, {"user", required_argument, NULL, O_USER},
        {"password", required_argument, NULL, O_PASSWORD},
        {"token", required_argument, NULL, O_TOKEN}, {"tls", no_argument, NULL, O_TLS},
        {"tls-ca", required_argument, NULL, O_TLSCA},
        {"tls-cert", required_argument, NULL, O_TLSCERT},
        {"tls-key", required_argument, NULL, O_TLSKEY},
        {"help", no_argument, NULL, 'h'},            {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0}};
    char *end;
    long v;
    int c;

    while ((c = getopt_long(argc, argv, "n:r:s:q:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': br->ns = optarg; break;
        case 'r': br->runtime_dir = optarg; break;
        case 's':
            if (br->nservers == BRIDGE_MAX_SERVERS) {
                fprintf(stderr, "xichan-bridge: at most %d --server\n", BRIDGE_MAX_SERVERS);
                return EXIT_USAGE;
            }
            br->servers[br->nservers++] = optarg;
            break;
        case 'q':
            if (br->nspans == BRIDGE_MAX_SPANS) {
                fprintf(stderr, "xichan-bridge: at most %d --span\n", BRIDGE_MAX_SPANS);
                return EXIT_USAGE;
            }
            for (int i = 0; i < br->nspans; i++)
                if (strcmp(br->span_names[i], optarg) == 0) {
                    fprintf(stderr, "xichan-bridge: --span '%s' given twice\n", optarg);
                    return EXIT_USAGE;
                }
            br->span_names[br->nspans++] = optarg;
            break;
        case O_REPLICAS:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 5) {
                fprintf(stderr, "xichan-bridge: --replicas takes 1 to 5\n");
                return EXIT_USAGE;
            }
            br->replicas = (int)v;
            break;
        case O_WINDOW: case O_PREFETCH:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < (c == O_WINDOW) || v > 4096) {
                fprintf(stderr, "xichan-bridge: %s takes %d to 4096\n", argv[optind - 1],
                        c == O_WINDOW);
                return EXIT_USAGE;
            }
            *(c == O_WINDOW ? &br->window : &br->prefetch) = (int)v;
            break;
        case O_IDS:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 16 || v > (1l << 24)) {
                fprintf(stderr, "xichan-bridge: --ids takes 16 to 16777216\n");
                return EXIT_USAGE;
            }
            br->ids_capacity = (uint32_t)v;
            break;
        case O_MEMORY: br->memory_storage = 1; break;
        case O_ACKWAIT: case O_DUPWIN: case O_PUBWAIT:
            if (parse_seconds(optarg, c == O_ACKWAIT ? &br->ack_wait_ms
                                      : c == O_DUPWIN ? &br->dup_window_ms : &br->pub_wait_ms)) {
                fprintf(stderr, "xichan-bridge: %s takes seconds > 0 (e.g. 2.5)\n", argv[optind - 1]);
                return EXIT_USAGE;
            }
            break;
        case O_MACHINE:
            if (!optarg[0] || strlen(optarg) > 64 || strchr(optarg, ':')) {
                fprintf(stderr, "xichan-bridge: --machine takes 1 to 64 bytes, no ':'\n");
                return EXIT_USAGE;
            }
            br->machine = optarg;
            break;
        case O_CREDS: br->creds = optarg; break;
        case O_USER: br->user = optarg; break;
        case O_PASSWORD: br->password = optarg; break;
        case O_TOKEN: br->token = optarg; break;
        case O_TLS: br->tls = 1; break;
        case O_TLSCA: br->tls_ca = optarg; br->tls = 1; break;
        case O_TLSCERT: br->tls_cert = optarg; br->tls = 1; break;
        case O_TLSKEY: br->tls_key = optarg; br->tls = 1; break;
        case 'h': usage(stdout); exit(0);
        case O_VERSION: printf("xichan-bridge 0.1 (nats.c %s)\n", nats_GetVersion()); exit(0);
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xichan-bridge: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!br->nspans) {
        fprintf(stderr, "xichan-bridge: nothing to span: give --span QUEUE\n");
        return EXIT_USAGE;
    }
    if (!!br->tls_cert != !!br->tls_key) {
        fprintf(stderr, "xichan-bridge: --tls-cert and --tls-key go together\n");
        return EXIT_USAGE;
    }
    if (!!br->user != !!br->password) {
        fprintf(stderr, "xichan-bridge: --user and --password go together\n");
        return EXIT_USAGE;
    }
    if (!br->nservers)
        br->servers[br->nservers++] = "nats://127.0.0.1:4222";
    return 0;
}

static natsStatus nats_options(struct bridge *br, natsOptions **out)
{
    natsOptions *o = NULL;
    char name[128];
    natsStatus s = natsOptions_Create(&o);

    snprintf(name, sizeof(name), "xichan-bridge %s/%s", br->machine, br->ns);
    if (s == NATS_OK) s = natsOptions_SetServers(o, br->servers, br->nservers);
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    /* Without this a publish sits in the buffer ~1 ms (nats.c batches sends unless told to send at once). */
    if (s == NATS_OK) s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 200);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, on_disconnected, br);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, on_reconnected, br);
    if (s == NATS_OK && br->creds) s = natsOptions_SetUserCredentialsFromFiles(o, br->creds, NULL);
    if (s == NATS_OK && br->user) s = natsOptions_SetUserInfo(o, br->user, br->password);
    if (s == NATS_OK && br->token) s = natsOptions_SetToken(o, br->token);
    if (s == NATS_OK && br->tls) s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && br->tls_ca) s = natsOptions_LoadCATrustedCertificates(o, br->tls_ca);
    if (s == NATS_OK && br->tls_cert)
        s = natsOptions_LoadCertificatesChain(o, br->tls_cert, br->tls_key);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        o = NULL;
    }
    *out = o;
    return s;
}

/* Connects, trying again every half second until it works or a stop. */
static int nats_connect(struct bridge *br)
{
    natsOptions *o = NULL;
    natsStatus s = nats_options(br, &o);
    int said = 0;

    if (s != NATS_OK) {
        bridge_error(br, "NATS options: %s",
                     nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
        return -1;
    }
    while (!br->stop) {
        s = natsConnection_Connect(&br->nc, o);
        if (s == NATS_OK)
            break;
        if (!said++)
            bridge_error(br, "connecting to %s%s: %s; trying again", br->servers[0],
                         br->nservers > 1 ? " (and others)" : "", natsStatus_GetText(s));
        usleep(500000);
    }
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return -1;
    atomic_store(&br->connected, 1);
    return 0;
}

static int jetstream(struct bridge *br)
{
    jsOptions jo;
    natsStatus s;

    jsOptions_Init(&jo);
    jo.Wait = br->pub_wait_ms;
    s = natsConnection_JetStream(&br->js, br->nc, &jo);
    if (s != NATS_OK) {
        bridge_error(br, "JetStream context: %s", natsStatus_GetText(s));
        return -1;
    }
    br->max_payload = natsConnection_GetMaxPayload(br->nc);
    return 0;
}

static int xichan_connect(struct bridge *br)
{
    xichan_client_opts co = {br->ns, br->runtime_dir, -1, "bridge"};
    char dir[400], ns[64], ids_path[512];
    int err;

    if ((err = xichan_client_open(&br->cl, &co))) {
        bridge_error(br, "namespace: %s", xichan_strerror(err));
        return -1;
    }
    xichan_client_set_interrupt(br->cl, check_stop, br, 100);
    snprintf(br->boot, sizeof(br->boot), "%" PRIx64, (uint64_t)br->cl->shm->hdr->created_ns);
    if (xichan__runtime_dir(dir, sizeof(dir), br->runtime_dir) < 0 ||
        xichan__ns_name(ns, sizeof(ns), br->ns) < 0) {
        bridge_error(br, "runtime dir or namespace name too long");
        return -1;
    }
    snprintf(br->status_path, sizeof(br->status_path), "%s/%s.bridge", dir, ns);
    snprintf(ids_path, sizeof(ids_path), "%s/%s.bridge-ids", dir, ns);
    if ((err = ids_open(&br->ids, ids_path, br->ids_capacity))) {
        bridge_error(br, "recent-id table %s: %s", ids_path, strerror(-err));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bridge br;
    static char host[65];
    struct sigaction sa;
    int rc, started = 0;

    br.replicas = 1;
    br.window = 256;
    br.ack_wait_ms = 30000;
    br.dup_window_ms = 120000;
    br.pub_wait_ms = 2000;
    br.ids_capacity = 65536;
    pthread_mutex_init(&br.err_lock, NULL);
    pthread_mutex_init(&br.ids_lock, NULL);
    if ((rc = parse_args(&br, argc, argv)))
        return rc;
    br.trace = getenv("XICHAN_BRIDGE_TRACE") && strcmp(getenv("XICHAN_BRIDGE_TRACE"), "1") == 0;
    if (!br.machine) {
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
            strcpy(host, "localhost");
        for (char *p = host; *p; p++)
            if (*p == ':')
                *p = '_';
        br.machine = host;
    }
    the_bridge = &br;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = 1;
    if (xichan_connect(&br) || nats_connect(&br) || jetstream(&br))
        goto out;
    for (int i = 0; i < br.nspans; i++)
        if (span_setup(&br, &br.spans[i], br.span_names[i]))
            goto out;
    for (int i = 0; i < br.nspans; i++, started++)
        if (span_start(&br.spans[i])) {
            bridge_error(&br, "cannot start threads");
            br.stop = 1;
            break;
        }
    if (!br.stop)
        bridge_log("spanning %d queue(s) of namespace '%s' over %s (max payload %lld)", br.nspans,
                   br.ns ? br.ns : "(default)", br.servers[0], (long long)br.max_payload);
    while (!br.stop) {
        status_write(&br, 0);
        for (int i = 0; i < 10 && !br.stop; i++)
            usleep(100000);
    }
    rc = 0;
out:
    br.stop = 1;
    for (int i = 0; i < br.nspans; i++)
        span_join(&br.spans[i]);
    if (br.status_path[0])
        status_write(&br, 1);
    if (br.nc) {
        natsConnection_FlushTimeout(br.nc, 1000); /* bounded: NATS may be gone */
        jsCtx_Destroy(br.js);
        natsConnection_Close(br.nc);
        natsConnection_Destroy(br.nc);
    }
    ids_close(br.ids);
    xichan_client_close(br.cl);
    nats_Close();
    if (rc == 0)
        bridge_log("stopped");
    return rc;
}
