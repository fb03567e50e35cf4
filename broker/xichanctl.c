/*
 * xichanctl -- inspect and drive a xichan namespace from the command line.
 *
 *   xichanctl [--name NS] [--runtime-dir DIR] [--json] COMMAND [ARGS] [OPTIONS]
 *
 * This file parses the command line, prints the help and runs one command;
 * the commands live in broker/ctl/ (ctl.h lists them).  It attaches as an
 * ordinary session of kind "ctl" and never starts a daemon, so what it
 * prints is read through the same locked snapshots any client sees, and
 * what it puts follows the same rules as any producer (ctl/items.c).
 * cleanup is the one command that needs no daemon: it looks for the files
 * dead ones left.
 *
 * Options.  The namespace options come before the command or after it,
 * except --name: after `create` it names the new object, so after the
 * command the namespace is spelt --namespace.  Every other option goes
 * after the command, in any order with its arguments.
 *
 * Exit status: 0 ok, 1 usage (or a bad value, or bad JSON), 2 no daemon or
 * cannot attach, 3 no such object, 4 empty / not taken in time /
 * interrupted, 5 anything else.  Errors go to stderr, also with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

enum {
    O_NAME = 1 << 0, O_MAXSIZE = 1 << 1, O_UNBOUND = 1 << 2, O_KIND = 1 << 3,
    O_FORMAT = 1 << 4, O_TIMEOUT = 1 << 5, O_INTERVAL = 1 << 6, O_COUNT = 1 << 7,
    O_YES = 1 << 8, O_NOWAIT = 1 << 9, O_RAW = 1 << 10, O_WAIT = 1 << 11,
    O_DISCARD = 1 << 12, O_FORCE = 1 << 13,
};

struct cmd {
    const char *name;
    int (*run)(struct ctl *c);
    int (*check)(struct ctl *c); /* NULL, or checks made before attaching */
    unsigned opts;  /* O_* this command takes */
    int minpos, maxpos;
    int attach;     /* needs a session with the daemon */
    const char *help;
};

#define ID_TEXT                                                                                    \
    "ID|NAME is an object's name, or its id: a queue and a channel may share an\n"                 \
    "id, so q:ID and c:ID (or --kind queue|channel) say which.\n"

#define CHAN_TEXT                                                                                  \
    "\nOn a channel, xichanctl's session is associated with the end it used until\n"               \
    "it exits; its exit releases that association without closing the channel.\n"

static const struct cmd cmds[] = {
    {"list", ctl_cmd_list, NULL, 0, 0, 0, 1,
     "usage: xichanctl list [--json]\n\n"
     "Every queue, channel and shared buffer, oldest first: kind, id, name, state\n"
     "(open, closing, closed, broken), queued items, maxsize, payload bytes,\n"
     "bindings, and the sessions bound to or associated with it.\n"},
    {"show", ctl_cmd_show, NULL, O_KIND, 1, 1, 1,
     "usage: xichanctl show ID|NAME [--kind queue|channel] [--json]\n\n"
     "One object in full: name, state, items and bytes, maxsize, unbounditems,\n"
     "bindings, sessions, and a channel's send and recv ends.  A bare number\n"
     "shows the queue and the channel with that id, if both exist.\n\n" ID_TEXT},
    {"stats", ctl_cmd_stats, NULL, 0, 0, 0, 1,
     "usage: xichanctl stats [--json]\n\n"
     "The segment (name, size, creation time), heap use, objects and sessions\n"
     "against their limits, and the daemon's pid, start time and uptime.\n"},
    {"sessions", ctl_cmd_sessions, NULL, 0, 0, 0, 1,
     "usage: xichanctl sessions [--json]\n\n"
     "The sessions attached to the namespace -- one per C client or Python\n"
     "interpreter -- with session id, pid, kind (c, python, ctl), state (live,\n"
     "or ending while the daemon releases what it held), start time, and the\n"
     "number of objects it is bound to or associated with.  Read without a\n"
     "lock: a snapshot that may be a moment old.\n"},
    {"watch", ctl_cmd_watch, NULL, O_INTERVAL | O_COUNT, 0, 0, 1,
     "usage: xichanctl watch [--interval S] [--count N] [--json]\n\n"
     "stats and list, refreshed every S seconds (default 1) until Ctrl-C, or N\n"
     "times.  On a terminal the screen is redrawn; --json prints one object per\n"
     "refresh and line: {\"time\":..,\"stats\":{..},\"objects\":[..]}.\n"},
    {"create", ctl_cmd_create, ctl_check_create, O_NAME | O_MAXSIZE | O_UNBOUND, 1, 1, 1,
     "usage: xichanctl create queue|channel --name NAME [--maxsize N]\n"
     "                        [--unbound replace|error|remove] [--json]\n\n"
     "Creates a named queue or channel.  The name keeps it alive after xichanctl\n"
     "exits, until it is destroyed; an unnamed one would die with xichanctl's\n"
     "session, so --name is required.\n\n"
     "  --name NAME     1 to 63 bytes, unique among the namespace's queues (or channels)\n"
     "  --maxsize N     queues: hold at most N items (default 0: unbounded)\n"
     "  --unbound OP    what becomes of an item whose producer's session ends:\n"
     "                  replace (default; getters see UNBOUND), error (the get\n"
     "                  fails and consumes it) or remove (it disappears)\n"},
    {"destroy", ctl_cmd_destroy, NULL, O_KIND, 1, 1, 1,
     "usage: xichanctl destroy ID|NAME [--kind queue|channel] [--json]\n\n"
     "Destroys a queue or channel at once: its items are dropped, and blocked\n"
     "callers get an error (not found, or closed for channel senders).\n\n" ID_TEXT},
    {"put", ctl_cmd_put, NULL, O_FORMAT | O_TIMEOUT | O_NOWAIT | O_WAIT | O_UNBOUND | O_KIND, 1,
     2, 1,
     "usage: xichanctl put ID|NAME [VALUE] [--format str|bytes|json] [--timeout S]\n"
     "                     [--nowait | --wait] [--unbound OP] [--kind queue|channel] [--json]\n\n"
     "Puts one value into a queue, or sends it on a channel, as a msgpack item\n"
     "that a Python getter receives as the natural value.  VALUE is taken from\n"
     "the command line, or read from stdin when it is absent.\n\n"
     "  --format str    (default) the text, as a str; from stdin one final newline\n"
     "                  is dropped (echo hi | xichanctl put jobs)\n"
     "  --format bytes  the bytes exactly, as bytes\n"
     "  --format json   one JSON value: objects arrive as dicts, arrays as tuples,\n"
     "                  numbers as int or float, null as None\n\n"
     "put returns once the item is queued; the item stays there after xichanctl\n"
     "exits, until a getter (a receiver, for a channel) takes it.  On a full\n"
     "queue it waits for room.\n\n"
     "  --timeout S     wait at most S seconds (for room; with --wait, also for the\n"
     "                  getter): then nothing is left queued (exit 4)\n"
     "  --nowait        fail at once if the queue is full (exit 4)\n"
     "  --wait          return only once a getter has taken the item (a channel's\n"
     "                  rendezvous send); on --timeout or Ctrl-C it is withdrawn\n"
     "  --unbound OP    this item's rule for an unbind of its session: replace,\n"
     "                  error or remove (default: the object's); xichanctl's own\n"
     "                  session ends as a process does, so the item stays\n\n"
     "A VALUE that starts with '-' goes after '--', options before it:\n"
     "  xichanctl put --format json jobs -- -5\n\n" ID_TEXT CHAN_TEXT},
    {"get", ctl_cmd_get, NULL, O_TIMEOUT | O_RAW | O_KIND, 1, 1, 1,
     "usage: xichanctl get ID|NAME [--timeout S] [--raw] [--kind queue|channel] [--json]\n\n"
     "Takes the oldest item of a queue, or receives from a channel, and prints\n"
     "it: a msgpack value as JSON-like text (str \"text\", bytes b'...', handles\n"
     "<queue 3>), a raw item as b'...', and an item whose producer unbound (a\n"
     "destroyed subinterpreter's, op replace) as UNBOUND.  Exit 4 when there is\n"
     "none.\n\n"
     "  --timeout S     wait up to S seconds for an item (default 0: do not wait;\n"
     "                  inf: forever, until Ctrl-C)\n"
     "  --raw           print a str, bytes or raw item's bytes alone: no quotes,\n"
     "                  no newline\n"
     "  --json          {\"kind\":..,\"id\":..,\"producer\":SID,\"format\":\"msgpack\",\n"
     "                  \"unbound\":false,\"value\":...}, bytes as {\"$bytes\":\"<hex>\"}\n\n" ID_TEXT
     CHAN_TEXT},
    {"stop", ctl_cmd_stop, NULL, O_TIMEOUT | O_DISCARD | O_FORCE, 0, 0, 0,
     "usage: xichanctl stop [--timeout S] [--discard [--force]] [--json]\n\n"
     "Stops the namespace's daemon (SIGTERM to the xichand holding the runtime\n"
     "dir's lock file) and waits until it has gone (--timeout, default 10 s).\n"
     "Stopping loses nothing: the segment stays, with every queue, channel, item\n"
     "and id counter; clients attached to it go on working, and the next xichand\n"
     "(started by hand, by systemd or by a client) adopts it.\n\n"
     "  --discard       then remove the namespace: its segment, objects and items\n"
     "                  are gone for good.  Refused while processes are still\n"
     "                  attached to it (their pids are named)\n"
     "  --force         with --discard: remove it all the same (those processes\n"
     "                  go on in a copy nobody else sees)\n\n"
     "Exit 2 when no daemon runs and --discard is not given.  Needs no daemon.\n"},
    {"cleanup", ctl_cmd_cleanup, NULL, O_YES, 0, 1, 0,
     "usage: xichanctl cleanup [GLOB] [--yes] [--runtime-dir DIR] [--json]   (alias: gc)\n\n"
     "Lists what dead daemons of this user left behind: segments\n"
     "/dev/shm/xichan-$UID-* that no process maps, and sockets and lock files in\n"
     "the runtime dir whose lock no daemon holds.  --yes removes them.  A live\n"
     "namespace is never touched (its daemon holds the lock file), nor a segment\n"
     "some process still maps (clients outliving their daemon, waiting for a new\n"
     "one to adopt it).  GLOB limits the namespaces looked at (e.g. 'test*').\n"
     "Needs no daemon.\n"},
};

static const struct cmd *find_cmd(const char *name)
{
    if (!strcmp(name, "gc"))
        name = "cleanup";
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(cmds[i].name, name))
            return &cmds[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xichanctl [--name NS] [--runtime-dir DIR] [--json] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  list                  every queue and channel: state, items, bindings, sessions\n"
            "  show ID|NAME          one object in full\n"
            "  stats                 segment and heap use, objects, sessions, daemon uptime\n"
            "  sessions              attached sessions: pid, kind, start time, objects\n"
            "  watch                 stats and list, refreshed every second\n"
            "  create queue|channel  create a named queue or channel (--name NAME)\n"
            "  destroy ID|NAME       destroy a queue or channel, dropping its items\n"
            "  put ID|NAME [VALUE]   put a value (or stdin); it stays until taken\n"
            "  get ID|NAME           take one item and print it\n"
            "  stop                  stop the daemon, keeping the namespace (--discard: remove it)\n"
            "  cleanup [GLOB]        list (--yes: remove) what dead daemons left (alias gc)\n"
            "  help [COMMAND]        this text, or a command's own\n"
            "\n"
            "The namespace is --name NS, else $XICHAN_NAME, else 'default'; its runtime\n"
            "dir --runtime-dir, else $XICHAN_RUNTIME_DIR, $XDG_RUNTIME_DIR/xichan or\n"
            "/tmp/xichan-$UID.  xichanctl never starts a daemon: `xichand --name NS` does.\n"
            "--json prints JSON.  Exit status: 0 ok, 1 usage or bad value, 2 no daemon,\n"
            "3 no such object, 4 empty or timed out, 5 other errors.\n");
}

/* ----------------------------------------------------------- options */

static int parse_seconds(struct ctl *c, const char *opt, const char *s, double *out)
{
    char *end;
    double d = strtod(s, &end);

    if (end == s || *end || isnan(d) || d < 0)
        return ctl_usage(c, "%s wants seconds (e.g. 0.5, 10, inf), not '%s'", opt, s);
    *out = d;
    return CTL_OK;
}

static int parse_count(struct ctl *c, const char *opt, const char *s, long long min, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE) /* strtoll would clamp it silently */
        return ctl_usage(c, "%s: '%s' is too large (at most %lld)", opt, s, LLONG_MAX);
    if (end == s || *end || v < min)
        return ctl_usage(c, "%s wants a whole number >= %lld, not '%s'", opt, min, s);
    *out = v;
    return CTL_OK;
}

static const struct option long_opts[] = {
    {"json", no_argument, NULL, 'j'},
    {"namespace", required_argument, NULL, 'N'},
    {"runtime-dir", required_argument, NULL, 'r'},
    {"help", no_argument, NULL, 'h'},
    {"name", required_argument, NULL, 'n'},
    {"maxsize", required_argument, NULL, 'm'},
    {"unbound", required_argument, NULL, 'u'},
    {"kind", required_argument, NULL, 'k'},
    {"format", required_argument, NULL, 'f'},
    {"timeout", required_argument, NULL, 't'},
    {"interval", required_argument, NULL, 'i'},
    {"count", required_argument, NULL, 'c'},
    {"yes", no_argument, NULL, 'y'},
    {"nowait", no_argument, NULL, 'W'},
    {"wait", no_argument, NULL, 'w'},
    {"discard", no_argument, NULL, 'D'},
    {"force", no_argument, NULL, 'F'},
    {"raw", no_argument, NULL, 'R'},
    {NULL, 0, NULL, 0},
};

static unsigned opt_bit(int ch)
{
    switch (ch) {
    case 'n': return O_NAME;
    case 'm': return O_MAXSIZE;
    case 'u': return O_UNBOUND;
    case 'k': return O_KIND;
    case 'f': return O_FORMAT;
    case 't': return O_TIMEOUT;
    case 'i': return O_INTERVAL;
    case 'c': return O_COUNT;
    case 'y': return O_YES;
    case 'W': return O_NOWAIT;
    case 'w': return O_WAIT;
    case 'D': return O_DISCARD;
    case 'F': return O_FORCE;
    case 'R': return O_RAW;
    default: return 0;
    }
}

/* Parses the command's options (argv[0] is the command); -1 means --help. */
static int parse_cmd(struct ctl *c, const struct cmd *cmd, int argc, char **argv)
{
    struct ctl_args *a = &c->a;
    char opt[48];
    long long v;
    int ch, rc, li = -1;

    optind = 0; /* glibc: start afresh, permuting options and arguments */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":jhy", long_opts, &li)) != -1) {
        /* The option's own spelling, for messages (argv[optind - 1] may be its value). */
        if (li >= 0)
            snprintf(opt, sizeof(opt), "--%s", long_opts[li].name);
        else if (ch != '?' && ch != ':')
            snprintf(opt, sizeof(opt), "-%c", ch);
        else
            snprintf(opt, sizeof(opt), "%.40s", argv[optind - 1]);
        li = -1;
        if (opt_bit(ch) && !(cmd->opts & opt_bit(ch))) {
            if (ch == 'n')
                return ctl_usage(c, "--name after the command names a new object (create); "
                                    "give the namespace before the command, or as --namespace NS");
            return ctl_usage(c, "%s does not apply to %s", opt, cmd->name);
        }
        rc = CTL_OK;
        switch (ch) {
        case 'j': c->json = 1; break;
        case 'h': return -1;
        case 'N': c->co.name = optarg; break;
        case 'r': c->co.runtime_dir = optarg; break;
        case 'n': a->objname = optarg; break;
        case 'y': a->yes = 1; break;
        case 'W': a->nowait = 1; break;
        case 'w': a->wait = 1; break;
        case 'D': a->discard = 1; break;
        case 'F': a->force = 1; break;
        case 'R': a->raw = 1; break;
        case 'm':
            if ((rc = parse_count(c, "--maxsize", optarg, 0, &v)) == CTL_OK)
                a->maxsize = v;
            break;
        case 'c':
            if ((rc = parse_count(c, "--count", optarg, 1, &v)) == CTL_OK)
                a->count = (long)v;
            break;
        case 't': rc = parse_seconds(c, "--timeout", optarg, &a->timeout); break;
        case 'i':
            rc = parse_seconds(c, "--interval", optarg, &a->interval);
            if (rc == CTL_OK && (a->interval < 0.01 || isinf(a->interval)))
                rc = ctl_usage(c, "--interval wants 0.01 to a few thousand seconds");
            break;
        case 'u':
            if (!(a->unboundop = ctl_parse_op(optarg)))
                rc = ctl_usage(c, "--unbound is replace, error or remove, not '%s'", optarg);
            break;
        case 'k':
            a->kind = !strcmp(optarg, "queue")     ? XICHAN_KIND_QUEUE
                      : !strcmp(optarg, "channel") ? XICHAN_KIND_CHANNEL
                                                   : 0;
            if (!a->kind)
                rc = ctl_usage(c, "--kind is queue or channel, not '%s'", optarg);
            break;
        case 'f':
            a->format = !strcmp(optarg, "str")     ? CTL_FMT_STR
                        : !strcmp(optarg, "bytes") ? CTL_FMT_BYTES
                        : !strcmp(optarg, "json")  ? CTL_FMT_JSON
                                                   : 0;
            if (!a->format)
                rc = ctl_usage(c, "--format is str, bytes or json, not '%s'", optarg);
            break;
        case ':':
            return ctl_usage(c, "%s needs a value", opt);
        default:
            return ctl_usage(c, "unknown option '%s'%s", opt,
                             cmd->maxpos > 1 ? " (a value that starts with '-' goes after '--')"
                                             : "");
        }
        if (rc != CTL_OK)
            return rc;
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    if (a->npos < cmd->minpos)
        return ctl_usage(c, "missing argument");
    if (a->npos > cmd->maxpos)
        return ctl_usage(c, "unexpected argument '%s'", a->pos[cmd->maxpos]);
    return CTL_OK;
}

/* ------------------------------------------------------------- attach */

static int attach(struct ctl *c)
{
    char ns[64], dir[256];
    int err = xichan_client_open(&c->cl, &c->co);

    if (!err)
        return CTL_OK;
    if (xichan__ns_name(ns, sizeof(ns), c->co.name))
        snprintf(ns, sizeof(ns), "%s", c->co.name ? c->co.name : "?");
    if (xichan__runtime_dir(dir, sizeof(dir), c->co.runtime_dir))
        snprintf(dir, sizeof(dir), "?");
    if (err == XICHAN_ENODAEMON && !strncmp(xichan_strerror(err), "xichand (pid", 12))
        fprintf(stderr, "xichanctl: %s\n", xichan_strerror(err)); /* one runs, unreachable */
    else if (err == XICHAN_ENODAEMON)
        fprintf(stderr,
                "xichanctl: no xichand runs for namespace '%s' (runtime dir %s).\n"
                "Start one with: xichand --name %s\n",
                ns, dir, ns);
    else if (err == XICHAN_EACCES || err == XICHAN_EPERM)
        /* The message already names the namespace and who refused whom. */
        fprintf(stderr, "xichanctl: %s\n", xichan_strerror(err));
    else
        fprintf(stderr, "xichanctl: cannot attach to namespace '%s': %s\n", ns,
                xichan_strerror(err));
    return CTL_ENODAEMON;
}

int main(int argc, char **argv)
{
    static const struct option global_opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"namespace", required_argument, NULL, 'n'},
        {"runtime-dir", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct ctl c = {.co = {.autostart = 0, .kind = "ctl"}, .cmd = "xichanctl"};
    const struct cmd *cmd;
    int ch, rc;

    xichan__stdio_guard(); /* before any file or socket is opened */
    c.a.timeout = -1;
    c.a.interval = 1.0;
    c.a.format = CTL_FMT_STR;
    while ((ch = getopt_long(argc, argv, "+jh", global_opts, NULL)) != -1) {
        switch (ch) {
        case 'n': c.co.name = optarg; break;
        case 'r': c.co.runtime_dir = optarg; break;
        case 'j': c.json = 1; break;
        case 'h': usage(stdout); return CTL_OK;
        case 'V': printf("xichanctl %d.%d\n", XICHAN_VERSION_MAJOR, XICHAN_VERSION_MINOR); return 0;
        default: usage(stderr); return CTL_EUSAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CTL_EUSAGE;
    }
    if (!strcmp(argv[optind], "help")) {
        if (optind + 1 >= argc || !strcmp(argv[optind + 1], "help")) {
            usage(stdout);
            return CTL_OK;
        }
        if (!(cmd = find_cmd(argv[optind + 1]))) {
            fprintf(stderr, "xichanctl: no command '%s' (xichanctl help lists them)\n",
                    argv[optind + 1]);
            return CTL_EUSAGE;
        }
        fputs(cmd->help, stdout);
        return CTL_OK;
    }
    if (!(cmd = find_cmd(argv[optind]))) {
        fprintf(stderr, "xichanctl: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return CTL_EUSAGE;
    }
    c.cmd = cmd->name;
    rc = parse_cmd(&c, cmd, argc - optind, argv + optind);
    if (rc < 0) {
        fputs(cmd->help, stdout);
        return CTL_OK;
    }
    if (rc != CTL_OK || (cmd->check && (rc = cmd->check(&c)) != CTL_OK))
        return rc;
    if (cmd->attach && (rc = attach(&c)) != CTL_OK)
        return rc;
    rc = cmd->run(&c);
    fflush(stdout);
    xichan_client_close(c.cl);
    return rc;
}
