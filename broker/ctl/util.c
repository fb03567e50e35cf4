/*
 * util.c -- xichanctl's shared pieces: exit statuses and error messages,
 * finding the object a command names, JSON strings, times.
 *
 * Naming objects.  Queue and channel ids are separate counters, so "1" may
 * name both a queue and a channel; names are per kind too.  Commands that
 * act on one object (destroy, put, get) refuse an ambiguous argument and
 * say how to pick: q:N / c:N or --kind.  show prints every match.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

volatile int ctl_interrupted;

/* --------------------------------------------------------- signals */

static void on_signal(int sig)
{
    (void)sig;
    ctl_interrupted = 1;
}

/* Polled by the library's blocking calls (xichan_client_set_interrupt). */
static int interrupted(void *arg)
{
    (void)arg;
    return ctl_interrupted;
}

void ctl_catch_signals(struct ctl *c)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: a sleep ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (c->cl)
        xichan_client_set_interrupt(c->cl, interrupted, NULL, 100);
}

/* ------------------------------------------------------------ errors */

int ctl_exit_for(int err)
{
    switch (err) {
    case 0:
        return CTL_EFAIL;
    case XICHAN_ENOTFOUND:
        return CTL_ENOTFOUND;
    case XICHAN_EEMPTY:
    case XICHAN_ETIMEDOUT:
    case XICHAN_EFULL:
    case XICHAN_EINTR:
        return CTL_EEMPTY;
    case XICHAN_ENODAEMON:
    case XICHAN_EDAEMONLOST:
    case XICHAN_EREFUSED:
        return CTL_ENODAEMON;
    default:
        return CTL_EFAIL;
    }
}

/* "xichanctl CMD: <message>[: <strerror(err)>]<tail>" on stderr. */
static void say(struct ctl *c, int err, const char *tail, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "xichanctl %s: ", c->cmd);
    vfprintf(stderr, fmt, ap);
    if (err)
        fprintf(stderr, ": %s", xichan_strerror(err));
    fprintf(stderr, "%s\n", tail);
}

int ctl_fail(struct ctl *c, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    say(c, err, "", fmt, ap);
    va_end(ap);
    return ctl_exit_for(err);
}

int ctl_usage(struct ctl *c, const char *fmt, ...)
{
    char tail[64];
    va_list ap;

    snprintf(tail, sizeof(tail), "\n(see: xichanctl help %s)", c->cmd);
    va_start(ap, fmt);
    say(c, 0, tail, fmt, ap);
    va_end(ap);
    return CTL_EUSAGE;
}

/* ------------------------------------------------------------- names */

/* The names, indexed by the library's values. */
static const char *const kind_names[] = {"?", "queue", "channel", "buffer"};
static const char *const state_names[] = {"open", "closing", "closed", "broken", "locked"};
static const char *const op_names[] = {"replace", "remove", "error", "replace"}; /* 0: default */

#define NAME_OF(names, i, other) \
    ((i) >= 0 && (size_t)(i) < sizeof(names) / sizeof(names[0]) ? names[i] : (other))

const char *ctl_kind_name(int kind)
{
    return NAME_OF(kind_names, kind, "?");
}

const char *ctl_state_name(int st)
{
    return NAME_OF(state_names, st, "broken");
}

const char *ctl_op_name(int op)
{
    return NAME_OF(op_names, op, "replace");
}

int ctl_parse_op(const char *s)
{
    for (int op = XICHAN_UNBOUND_REMOVE; op <= XICHAN_UNBOUND_REPLACE; op++)
        if (!strcmp(s, op_names[op]))
            return op;
    return 0;
}

const char *ctl_describe(const struct ctl_ref *r, char *buf, size_t cap)
{
    char name[4 * 64 + 8];

    if (r->info.name[0])
        snprintf(buf, cap, "%s %llu '%s'", ctl_kind_name(r->kind), (unsigned long long)r->id,
                 ctl_esc(r->info.name, name, sizeof(name)));
    else
        snprintf(buf, cap, "%s %llu", ctl_kind_name(r->kind), (unsigned long long)r->id);
    return buf;
}

/* ----------------------------------------------------------- finding */

/* Adds kind/id to out if it exists; 1 if added, 0 if not, or an error. */
static int add_by_id(struct ctl *c, int kind, uint64_t id, struct ctl_ref *out, int n, int cap)
{
    xichan_obj_info info;
    int err = xichan_info(c->cl, kind, id, &info);

    if (err == XICHAN_ENOTFOUND)
        return 0;
    if (err)
        return err;
    if (n < cap)
        out[n] = (struct ctl_ref){.kind = kind, .id = id, .info = info};
    return 1;
}

static int add_by_name(struct ctl *c, int kind, const char *name, struct ctl_ref *out, int n,
                       int cap)
{
    xichan_queue_id q;
    xichan_chan_id ch;
    int err = kind == XICHAN_KIND_QUEUE ? xichan_queue_open(c->cl, name, &q)
                                        : xichan_chan_open(c->cl, name, &ch);

    if (err == XICHAN_ENOTFOUND)
        return 0;
    if (err)
        return err;
    return add_by_id(c, kind, kind == XICHAN_KIND_QUEUE ? q.id : ch.id, out, n, cap);
}

static int parse_id(const char *s, uint64_t *id)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *id = strtoull(s, &end, 10);
    return *end || errno ? -1 : 0;
}

int ctl_find(struct ctl *c, const char *arg, int kind, struct ctl_ref *out, int cap)
{
    int kinds[2] = {XICHAN_KIND_QUEUE, XICHAN_KIND_CHANNEL}, n = 0, k, r;
    uint64_t id;

    if ((arg[0] == 'q' || arg[0] == 'c') && arg[1] == ':') {
        int want = arg[0] == 'q' ? XICHAN_KIND_QUEUE : XICHAN_KIND_CHANNEL;
        if ((kind && kind != want) || parse_id(arg + 2, &id))
            return 0;
        r = add_by_id(c, want, id, out, 0, cap);
        return r;
    }
    if (parse_id(arg, &id) == 0) {
        for (k = 0; k < 2; k++) {
            if (kind && kind != kinds[k])
                continue;
            if ((r = add_by_id(c, kinds[k], id, out, n, cap)) < 0)
                return r;
            n += r;
        }
        if (n)
            return n;
    }
    for (k = 0; k < 2; k++) {
        if (kind && kind != kinds[k])
            continue;
        if ((r = add_by_name(c, kinds[k], arg, out, n, cap)) < 0)
            return r;
        n += r;
    }
    return n;
}

int ctl_resolve(struct ctl *c, const char *arg, struct ctl_ref *out)
{
    struct ctl_ref refs[2];
    int n = ctl_find(c, arg, c->a.kind, refs, 2);

    if (n < 0)
        return ctl_fail(c, n, "cannot look up '%s'", arg);
    if (n == 0) {
        fprintf(stderr, "xichanctl %s: no %s '%s' (see: xichanctl list)\n", c->cmd,
                c->a.kind ? ctl_kind_name(c->a.kind) : "queue or channel", arg);
        return CTL_ENOTFOUND;
    }
    if (n > 1)
        return ctl_usage(c,
                         "'%s' names both queue %llu and channel %llu: say which with "
                         "q:%llu or c:%llu, or --kind queue|channel",
                         arg, (unsigned long long)refs[0].id, (unsigned long long)refs[1].id,
                         (unsigned long long)refs[0].id, (unsigned long long)refs[1].id);
    *out = refs[0];
    return CTL_OK;
}

/* -------------------------------------------------------------- JSON */

/* Length of the UTF-8 sequence at s (1..4), or 0 if invalid (libclient's
 * decoder; surrogates count as valid here and are told apart by callers). */
static int utf8_len(const unsigned char *s, size_t left)
{
    uint32_t cp;

    return xichan__utf8_next(s, left, &cp);
}

int ctl_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        int n = utf8_len(p + i, len - i);
        /* Surrogates (ED A0..BF) are not UTF-8 either. */
        if (!n || (p[i] == 0xED && p[i + 1] >= 0xA0))
            return 0;
        i += (size_t)n;
    }
    return 1;
}

void ctl_json_strn(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char ch = p[i];
        int n;

        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch == '\n') {
            fputs("\\n", f);
        } else if (ch == '\t') {
            fputs("\\t", f);
        } else if (ch == '\r') {
            fputs("\\r", f);
        } else if (ch < 0x20 || ch == 0x7F) {
            fprintf(f, "\\u%04x", ch);
        } else if (ch < 0x80) {
            fputc(ch, f);
        } else if ((n = utf8_len(p + i, len - i)) == 3 && ch == 0xED && p[i + 1] >= 0xA0) {
            /* A lone surrogate, as Python's surrogatepass writes it: keep it. */
            fprintf(f, "\\u%04x", (unsigned)((ch & 0x0F) << 12 | (p[i + 1] & 0x3F) << 6 |
                                             (p[i + 2] & 0x3F)));
            i += 3;
            continue;
        } else if (n) {
            fwrite(p + i, 1, (size_t)n, f);
            i += (size_t)n;
            continue;
        } else {
            fputs("\\ufffd", f);
        }
        i++;
    }
    fputc('"', f);
}

const char *ctl_esc(const char *s, char *buf, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), o = 0;

    for (size_t i = 0; i < len && o + 7 < cap;) {
        unsigned char ch = p[i];
        int n = utf8_len(p + i, len - i);

        if (ch >= 0x20 && ch < 0x7F && ch != '\\') {
            buf[o++] = (char)ch;
            i++;
        } else if (n == 2 && ch == 0xC2 && p[i + 1] < 0xA0) { /* C1 control */
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", p[i + 1]);
            i += 2;
        } else if (n > 1 && !(n == 3 && ch == 0xED && p[i + 1] >= 0xA0)) {
            memcpy(buf + o, p + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
            i++;
        }
    }
    buf[o] = '\0';
    return buf;
}

void ctl_json_str(FILE *f, const char *s)
{
    ctl_json_strn(f, s, strlen(s));
}

/* ------------------------------------------------------------- times */

const char *ctl_time_str(uint64_t ns, int utc, char *buf, size_t cap)
{
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;

    if (ns == 0 || !(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) ||
        !strftime(buf, cap, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, cap, "-");
    return buf;
}

const char *ctl_duration_str(double s, char *buf, size_t cap)
{
    unsigned long long t = s > 0 ? (unsigned long long)s : 0;

    if (t >= 86400)
        snprintf(buf, cap, "%llud%02lluh%02llum", t / 86400, t / 3600 % 24, t / 60 % 60);
    else if (t >= 3600)
        snprintf(buf, cap, "%lluh%02llum%02llus", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%llum%02llus", t / 60, t % 60);
    else
        snprintf(buf, cap, "%.1fs", s > 0 ? s : 0.0);
    return buf;
}
