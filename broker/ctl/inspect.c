/*
 * inspect.c -- xichanctl list, show, stats, sessions and watch: read-only
 * views of a namespace.
 *
 * Objects are read through the library's locked snapshots (xichan_list,
 * xichan_info), so each row is consistent; one whose lock a stopped
 * process holds is shown as "locked" with that pid, after the short bound
 * (xichan.h, XICHAN_LOCK_GRACE_MS), never waited for.  Two views read the segment
 * directly, through internal.h:
 *   - stats reads the daemon's start time from the header (daemon_pid is
 *     stored with release after daemon_start_ns, so an acquire load of the
 *     pid makes the start time valid to read);
 *   - sessions reads the session table with no lock.  The daemon is its
 *     only writer, and it fills a slot before it stores LIVE with release,
 *     so a slot read after an acquire load of LIVE is complete.  A slot
 *     that is freed and reused while we copy it is caught by reading its
 *     state and sid again (sids are never reused).  The object counts come
 *     from one pass over the bindings under table_lock, as the library's
 *     own views take it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* --------------------------------------------------------------- list */

static void print_sessions(struct ctl *c, const xichan_obj_info *o)
{
    uint32_t sids[64];
    int n = xichan_obj_sessions(c->cl, o->kind, o->id, sids, 64);

    for (int i = 0; i < n && i < 64; i++)
        printf("%s%u", i ? "," : "", sids[i]);
    if (n > 64 && !c->json)
        printf(",...");
}

static void print_json_obj(struct ctl *c, const xichan_obj_info *o)
{
    xichan_chan_info ci;

    printf("{\"kind\":\"%s\",\"id\":%llu,\"name\":", ctl_kind_name(o->kind),
           (unsigned long long)o->id);
    if (o->name[0])
        ctl_json_str(stdout, o->name);
    else
        printf("null");
    printf(",\"state\":\"%s\",\"count\":%llu,\"maxsize\":%lld,\"bytes\":%llu,\"bound\":%u,"
           "\"unbounditems\":\"%s\",\"sessions\":[",
           ctl_state_name(o->state), (unsigned long long)o->count, (long long)o->maxsize,
           (unsigned long long)o->bytes, o->nbound, ctl_op_name(o->unboundop));
    print_sessions(c, o);
    printf("]");
    if (o->state == XICHAN_STATE_LOCKED)
        printf(",\"locked_by\":%u", o->locked_by);
    if (o->kind == XICHAN_KIND_CHANNEL && o->state != XICHAN_STATE_CLOSED &&
        xichan_chan_info_get(c->cl, (xichan_chan_id){o->id}, &ci) == 0)
        printf(",\"send_sessions\":%u,\"recv_sessions\":%u,\"send_released\":%u,"
               "\"recv_released\":%u",
               ci.num_send, ci.num_recv, ci.num_send_released, ci.num_recv_released);
    printf("}");
}

static void print_row(struct ctl *c, const xichan_obj_info *o, int namew)
{
    char maxsize[24], name[4 * 64 + 8];

    if (o->kind == XICHAN_KIND_QUEUE && o->maxsize > 0)
        snprintf(maxsize, sizeof(maxsize), "%lld", (long long)o->maxsize);
    else
        snprintf(maxsize, sizeof(maxsize), "-");
    printf("%-8s %6llu  %-*s %-8s %8llu %8s %10llu %6u  ", ctl_kind_name(o->kind),
           (unsigned long long)o->id, namew, o->name[0] ? ctl_esc(o->name, name, sizeof(name)) : "-",
           ctl_state_name(o->state),
           (unsigned long long)o->count, maxsize, (unsigned long long)o->bytes, o->nbound);
    print_sessions(c, o);
    if (o->state == XICHAN_STATE_LOCKED)
        printf("  (locked by pid %u: counts unknown)", o->locked_by);
    printf("\n");
}

/* The NAME column is as wide as the longest name (16 at least), so that a
 * long name never pushes the rest of its row out of line. */
static int name_width(const xichan_obj_info *v, int m)
{
    char name[4 * 64 + 8];
    int w = 16;

    for (int i = 0; i < m; i++) {
        int len = (int)strlen(ctl_esc(v[i].name, name, sizeof(name)));
        if (len > w)
            w = len;
    }
    return w;
}

/* The object list as a table or as "objects":[...] (no braces around). */
static int print_list(struct ctl *c)
{
    xichan_obj_info *v = NULL;
    int n = xichan_list(c->cl, NULL, 0), m;

    if (n < 0)
        return ctl_fail(c, n, "cannot list objects");
    if (!(v = calloc((size_t)n + 1, sizeof(*v))))
        return ctl_fail(c, XICHAN_ENOMEM, "list");
    m = xichan_list(c->cl, v, (size_t)n);
    if (m < 0) {
        free(v);
        return ctl_fail(c, m, "cannot list objects");
    }
    if (m > n)
        m = n; /* created in between: print what we have room for */
    if (c->json) {
        printf("\"objects\":[");
        for (int i = 0; i < m; i++) {
            if (i)
                putchar(',');
            print_json_obj(c, &v[i]);
        }
        printf("]");
    } else {
        int namew = name_width(v, m);

        printf("%-8s %6s  %-*s %-8s %8s %8s %10s %6s  %s\n", "KIND", "ID", namew, "NAME",
               "STATE", "COUNT", "MAXSIZE", "BYTES", "BOUND", "SESSIONS");
        for (int i = 0; i < m; i++)
            print_row(c, &v[i], namew);
        if (m == 0)
            printf("(no queues or channels)\n");
    }
    free(v);
    return CTL_OK;
}

int ctl_cmd_list(struct ctl *c)
{
    int rc;

    if (c->json)
        putchar('{');
    rc = print_list(c);
    if (c->json && rc == CTL_OK)
        printf("}\n");
    return rc;
}

/* --------------------------------------------------------------- show */

static void show_one(struct ctl *c, const xichan_obj_info *o)
{
    xichan_chan_info ci;
    char name[4 * 64 + 8];

    printf("%s %llu\n", ctl_kind_name(o->kind), (unsigned long long)o->id);
    printf("  name:          %s\n", o->name[0] ? ctl_esc(o->name, name, sizeof(name)) : "-");
    if (o->state == XICHAN_STATE_LOCKED)
        printf("  state:         locked by pid %u, which is stopped or slow (counts unknown)\n",
               o->locked_by);
    else
        printf("  state:         %s\n", ctl_state_name(o->state));
    printf("  items:         %llu (%llu bytes)\n", (unsigned long long)o->count,
           (unsigned long long)o->bytes);
    if (o->kind == XICHAN_KIND_QUEUE)
        printf("  maxsize:       %lld%s\n", (long long)o->maxsize,
               o->maxsize > 0 ? "" : " (unbounded)");
    printf("  unbounditems:  %s\n", ctl_op_name(o->unboundop));
    printf("  bindings:      %u\n", o->nbound);
    printf("  sessions:      ");
    print_sessions(c, o);
    printf("\n");
    if (o->kind == XICHAN_KIND_CHANNEL && o->state != XICHAN_STATE_CLOSED &&
        xichan_chan_info_get(c->cl, (xichan_chan_id){o->id}, &ci) == 0)
        printf("  send end:      %u associated, %u released\n"
               "  recv end:      %u associated, %u released\n",
               ci.num_send, ci.num_send_released, ci.num_recv, ci.num_recv_released);
}

int ctl_cmd_show(struct ctl *c)
{
    struct ctl_ref refs[2];
    const char *arg = c->a.pos[0];
    int n = ctl_find(c, arg, c->a.kind, refs, 2);

    if (n < 0)
        return ctl_fail(c, n, "cannot look up '%s'", arg);
    if (n == 0) {
        fprintf(stderr, "xichanctl show: no queue or channel '%s' (see: xichanctl list)\n", arg);
        return CTL_ENOTFOUND;
    }
    if (c->json)
        printf("{\"objects\":[");
    for (int i = 0; i < n && i < 2; i++) {
        if (c->json) {
            if (i)
                putchar(',');
            print_json_obj(c, &refs[i].info);
        } else {
            show_one(c, &refs[i].info);
        }
    }
    if (c->json)
        printf("]}\n");
    return CTL_OK;
}

/* -------------------------------------------------------------- stats */

static uint64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The stats as text lines or as "stats":{...}. */
static int print_stats(struct ctl *c)
{
    const struct xichan_shm_hdr *h = c->cl->shm->hdr;
    char t1[40], t2[40], up[40];
    xichan_stats st;
    uint64_t start, created, now = realtime_ns();
    uint32_t pid;
    int err = xichan_stats_get(c->cl, &st);
    double uptime;

    if (err)
        return ctl_fail(c, err, "cannot read the segment's statistics");
    /* Acquire: pairs with the daemon's release store of its pid, made
     * after it stored its start time (xichand.c). */
    pid = xa_load_acquire(&h->daemon_pid);
    start = pid ? xa_load_relaxed(&h->daemon_start_ns) : 0;
    created = h->created_ns;
    uptime = start && now > start ? (double)(now - start) / 1e9 : 0;
    if (c->json) {
        printf("\"stats\":{\"segment\":");
        ctl_json_str(stdout, st.segment_name);
        printf(",\"segment_size\":%llu,\"heap_size\":%llu,\"heap_used\":%llu,\"heap_free\":%llu,"
               "\"objects\":%u,\"max_objects\":%u,\"sessions\":%u,\"max_sessions\":%u,"
               "\"daemon_pid\":%u,\"daemon_started\":",
               (unsigned long long)st.segment_size, (unsigned long long)st.heap_size,
               (unsigned long long)st.heap_used, (unsigned long long)st.heap_free, st.objects,
               st.max_objects, st.sessions, st.max_sessions, pid);
        if (start)
            printf("\"%s\",\"uptime_s\":%.3f", ctl_time_str(start, 1, t1, sizeof(t1)), uptime);
        else
            printf("null,\"uptime_s\":null");
        printf(",\"segment_created\":\"%s\"}", ctl_time_str(created, 1, t2, sizeof(t2)));
        return CTL_OK;
    }
    printf("segment:   %s (%llu bytes), created %s\n", st.segment_name,
           (unsigned long long)st.segment_size, ctl_time_str(created, 0, t2, sizeof(t2)));
    printf("heap:      %llu used, %llu free of %llu bytes\n", (unsigned long long)st.heap_used,
           (unsigned long long)st.heap_free, (unsigned long long)st.heap_size);
    printf("objects:   %u of %u\n", st.objects, st.max_objects);
    printf("sessions:  %u of %u (this one included)\n", st.sessions, st.max_sessions);
    if (pid)
        printf("daemon:    pid %u, up %s (since %s)\n", pid,
               ctl_duration_str(uptime, up, sizeof(up)), ctl_time_str(start, 0, t1, sizeof(t1)));
    else
        printf("daemon:    none (clients keep working; a new xichand adopts the segment)\n");
    return CTL_OK;
}

int ctl_cmd_stats(struct ctl *c)
{
    int rc;

    if (c->json)
        putchar('{');
    rc = print_stats(c);
    if (c->json && rc == CTL_OK)
        printf("}\n");
    return rc;
}

/* ----------------------------------------------------------- sessions */

struct sess_row {
    struct xichan_session s; /* a copy of the slot */
    int objects;             /* bound or associated; -1 unknown */
};

static int by_sid(const void *a, const void *b)
{
    uint32_t x = ((const struct sess_row *)a)->s.sid, y = ((const struct sess_row *)b)->s.sid;

    return x < y ? -1 : x > y;
}

/* Copies the live and ending slots; returns how many. */
static uint32_t copy_sessions(struct xichan_shm *shm, struct sess_row *rows)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < shm->nsessions; i++) {
        struct xichan_session *s = &shm->sessions[i];
        /* Acquire: pairs with the daemon's release store of LIVE (sessions.c). */
        uint32_t st = xa_load_acquire(&s->state), sid = s->sid;

        if (st != XICHAN_SESS_LIVE && !xichan__sess_ending(st))
            continue;
        rows[n].s.sid = sid;
        rows[n].s.pid = s->pid;
        rows[n].s.uid = s->uid;
        rows[n].s.start_ns = s->start_ns;
        memcpy(rows[n].s.kind, s->kind, sizeof(s->kind));
        rows[n].s.kind[sizeof(s->kind) - 1] = '\0';
        for (char *k = rows[n].s.kind; *k; k++)
            if (*k < 0x20 || *k > 0x7E)
                *k = '?'; /* shm bytes are untrusted; the terminal is ours */
        /* Still the same session?  Else it ended while we copied: skip it. */
        atomic_thread_fence(memory_order_acquire);
        if (xa_load_relaxed(&s->state) == XICHAN_SESS_FREE || s->sid != sid)
            continue;
        xa_store_relaxed(&rows[n].s.state, st);
        rows[n].objects = 0;
        n++;
    }
    return n;
}

/* Objects each session holds a binding entry for, in one pass. */
static void count_objects(struct ctl *c, struct sess_row *rows, uint32_t n)
{
    struct xichan_shm *shm = c->cl->shm;

    if (xichan__table_lock(shm, c->cl->sid, XICHAN_NOWAIT)) { /* never wait on a stuck holder */
        for (uint32_t i = 0; i < n; i++)
            rows[i].objects = -1;
        return;
    }
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        struct sess_row key, *r;

        if (!(key.s.sid = shm->bindings[j].sid))
            continue;
        if ((r = bsearch(&key, rows, n, sizeof(*rows), by_sid)))
            r->objects++;
    }
    xichan__table_unlock(shm);
}

int ctl_cmd_sessions(struct ctl *c)
{
    struct xichan_shm *shm = c->cl->shm;
    struct sess_row *rows = calloc(shm->nsessions ? shm->nsessions : 1, sizeof(*rows));
    char t[40], objs[16];
    uint32_t n;

    if (!rows)
        return ctl_fail(c, XICHAN_ENOMEM, "sessions");
    n = copy_sessions(shm, rows);
    qsort(rows, n, sizeof(*rows), by_sid);
    count_objects(c, rows, n);
    if (c->json)
        printf("{\"sessions\":[");
    else
        printf("%8s %8s  %-8s %-9s %-19s %7s\n", "SID", "PID", "KIND", "STATE", "STARTED",
               "OBJECTS");
    for (uint32_t i = 0; i < n; i++) {
        const struct xichan_session *s = &rows[i].s;
        const char *state = xa_load_relaxed(&s->state) == XICHAN_SESS_LIVE ? "live" : "ending";
        int self = s->sid == c->cl->sid;
        char kind[sizeof(s->kind) + 1], kesc[4 * sizeof(s->kind) + 8];

        /* From the segment: bounded (a scribbled one may lack its NUL), escaped. */
        memcpy(kind, s->kind, sizeof(s->kind));
        kind[sizeof(s->kind)] = '\0';

        if (c->json) {
            printf("%s{\"sid\":%u,\"pid\":%u,\"uid\":%u,\"kind\":", i ? "," : "", s->sid, s->pid,
                   s->uid);
            ctl_json_str(stdout, kind);
            printf(",\"state\":\"%s\",\"started\":\"%s\",\"objects\":", state,
                   ctl_time_str(s->start_ns, 1, t, sizeof(t)));
            if (rows[i].objects >= 0)
                printf("%d", rows[i].objects);
            else
                printf("null");
            printf(",\"self\":%s}", self ? "true" : "false");
            continue;
        }
        if (rows[i].objects >= 0)
            snprintf(objs, sizeof(objs), "%d", rows[i].objects);
        else
            snprintf(objs, sizeof(objs), "?");
        printf("%8u %8u  %-8s %-9s %-19s %7s%s\n", s->sid, s->pid,
               ctl_esc(kind, kesc, sizeof(kesc)), state,
               ctl_time_str(s->start_ns, 0, t, sizeof(t)), objs, self ? "  (this xichanctl)" : "");
    }
    if (c->json)
        printf("]}\n");
    free(rows);
    return CTL_OK;
}

/* -------------------------------------------------------------- watch */

/* Sleeps s seconds; 0 when done, -1 when a signal asked us to stop. */
static int pause_for(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

    while (!ctl_interrupted && nanosleep(&ts, &ts) != 0)
        ;
    return ctl_interrupted ? -1 : 0;
}

/*
 * A display refresh, not a blocking operation: polling at the user's
 * interval is the point.  On a terminal each refresh redraws the screen;
 * otherwise (a pipe, a test) refreshes follow each other, and with --json
 * each is one line: {"time":...,"stats":{...},"objects":[...]}.
 */
int ctl_cmd_watch(struct ctl *c)
{
    int tty = isatty(STDOUT_FILENO) && !c->json, rc = CTL_OK;
    char t[40];

    ctl_catch_signals(c);
    for (long i = 0; !c->a.count || i < c->a.count; i++) {
        if (i && pause_for(c->a.interval) < 0)
            break;
        if (tty)
            printf("\033[H\033[2J");
        if (c->json) {
            printf("{\"time\":\"%s\",", ctl_time_str(realtime_ns(), 1, t, sizeof(t)));
            if ((rc = print_stats(c)) != CTL_OK)
                break;
            putchar(',');
            if ((rc = print_list(c)) != CTL_OK)
                break;
            printf("}\n");
        } else {
            printf("xichanctl watch: every %gs%s   %s\n\n", c->a.interval,
                   c->a.count ? "" : " (Ctrl-C stops)", ctl_time_str(realtime_ns(), 0, t, sizeof(t)));
            if ((rc = print_stats(c)) != CTL_OK || (printf("\n"), rc = print_list(c)) != CTL_OK)
                break;
            if (!tty)
                printf("\n");
        }
        fflush(stdout);
    }
    return rc;
}
