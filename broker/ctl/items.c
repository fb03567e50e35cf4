/*
 * items.c -- xichanctl create, destroy, put and get.
 *
 * xichanctl is a session like any other, and that shapes two commands:
 *
 *   create  An object lives while a session holds a binding, unless it is
 *           named.  xichanctl's binding goes when it exits, so an unnamed
 *           object would die at once: create requires --name.
 *
 *   put     An item outlives the process that put it (xichan(7), "Items
 *           and sessions"), so put queues the item and exits, like
 *           redis-cli LPUSH; on a full queue it waits for room (up to
 *           --timeout; --nowait: not at all).  --wait hands the item over
 *           instead, staying until a getter has taken it (--timeout bounds
 *           the wait; on timeout or Ctrl-C the item is withdrawn, so no
 *           getter ever sees it half-delivered).  For a channel --wait is
 *           send's own rendezvous, and the default a send_nowait.
 *
 * The --wait queue hand-off is the library's (xichan_queue_handoff); the
 * SIGINT/SIGTERM that ends it comes through the client's interrupt
 * callback (ctl_catch_signals).
 */
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/* ------------------------------------------------------ create, destroy */

int ctl_check_create(struct ctl *c)
{
    const char *what = c->a.pos[0], *name = c->a.objname;

    if (strcmp(what, "queue") && strcmp(what, "channel"))
        return ctl_usage(c, "create queue or create channel, not '%s'", what);
    if (!name)
        return ctl_usage(c, "--name is required: an unnamed %s would be destroyed when xichanctl "
                            "exits (its only binding is xichanctl's own session)", what);
    if (!name[0] || strlen(name) >= XICHAN_NAME_MAX)
        return ctl_usage(c, "--name needs 1 to %u bytes", XICHAN_NAME_MAX - 1);
    if (c->a.maxsize && !strcmp(what, "channel"))
        return ctl_usage(c, "--maxsize is for queues: a channel send waits for its receiver");
    return CTL_OK;
}

int ctl_cmd_create(struct ctl *c)
{
    const char *what = c->a.pos[0], *name = c->a.objname;
    struct ctl_ref r = {0};
    char desc[128];
    int err;

    if (!strcmp(what, "queue")) {
        /* fmt is the Python binding's put() default: pickle, as queues.create()'s
         * syncobj=False (pyext/xichan/queues.py). */
        xichan_queue_opts o = {.maxsize = c->a.maxsize, .fmt = XICHAN_FMT_PICKLE,
                               .unboundop = c->a.unboundop, .name = name};
        xichan_queue_id q;
        r.kind = XICHAN_KIND_QUEUE;
        err = xichan_queue_create(c->cl, &o, &q);
        r.id = q.id;
    } else {
        xichan_chan_opts o = {.unboundop = c->a.unboundop, .name = name};
        xichan_chan_id ch;
        r.kind = XICHAN_KIND_CHANNEL;
        err = xichan_chan_create(c->cl, &o, &ch);
        r.id = ch.id;
    }
    if (err == XICHAN_EEXIST)
        return ctl_fail(c, 0, "a %s named '%s' exists already (xichanctl show %s; or destroy it "
                              "first)", what, name, name);
    if (err)
        return ctl_fail(c, err, "cannot create %s '%s'", what, name);
    snprintf(r.info.name, sizeof(r.info.name), "%s", name);
    if (c->json) {
        printf("{\"kind\":\"%s\",\"id\":%llu,\"name\":", what, (unsigned long long)r.id);
        ctl_json_str(stdout, name);
        printf("}\n");
    } else {
        printf("created %s\n", ctl_describe(&r, desc, sizeof(desc)));
    }
    return CTL_OK;
}

int ctl_cmd_destroy(struct ctl *c)
{
    struct ctl_ref r;
    char desc[128];
    int rc = ctl_resolve(c, c->a.pos[0], &r), err;

    if (rc != CTL_OK)
        return rc;
    err = r.kind == XICHAN_KIND_QUEUE ? xichan_queue_destroy(c->cl, (xichan_queue_id){r.id})
                                      : xichan_chan_destroy(c->cl, (xichan_chan_id){r.id});
    if (err)
        return ctl_fail(c, err, "cannot destroy %s", ctl_describe(&r, desc, sizeof(desc)));
    if (c->json)
        printf("{\"destroyed\":{\"kind\":\"%s\",\"id\":%llu}}\n", ctl_kind_name(r.kind),
               (unsigned long long)r.id);
    else
        printf("destroyed %s (%llu items dropped)\n", ctl_describe(&r, desc, sizeof(desc)),
               (unsigned long long)r.info.count);
    return CTL_OK;
}

/* ---------------------------------------------------------- the value */

/* All of stdin, up to cap bytes (XICHAN_E2BIG past it). */
static int read_stdin(char **out, size_t *len, size_t cap)
{
    size_t n = 0, size = 4096;
    char *buf = malloc(size), *nb;
    ssize_t got;

    if (!buf)
        return XICHAN_ENOMEM;
    while ((got = read(STDIN_FILENO, buf + n, size - n)) != 0) {
        if (got < 0) {
            if (errno == EINTR && !ctl_interrupted)
                continue;
            free(buf);
            return ctl_interrupted ? XICHAN_EINTR : XICHAN_EIO;
        }
        n += (size_t)got;
        if (n > cap) {
            free(buf);
            return XICHAN_E2BIG;
        }
        if (n == size) {
            if (!(nb = realloc(buf, size *= 2))) {
                free(buf);
                return XICHAN_ENOMEM;
            }
            buf = nb;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The value, from argv or stdin, packed as one msgpack value into sb. */
static int pack_value(struct ctl *c, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    char *data = NULL, jerr[256];
    size_t len;
    int err, rc = CTL_OK;

    if (c->a.npos > 1) {
        data = strdup(c->a.pos[1]);
        len = strlen(c->a.pos[1]);
        if (!data)
            return ctl_fail(c, XICHAN_ENOMEM, "put");
    } else {
        xichan_stats st;

        if (isatty(STDIN_FILENO))
            fprintf(stderr, "xichanctl put: reading the value from stdin (end it with Ctrl-D)\n");
        if ((err = xichan_stats_get(c->cl, &st)))
            return ctl_fail(c, err, "stats");
        /* No item is larger than the segment. */
        if ((err = read_stdin(&data, &len, st.segment_size)))
            return ctl_fail(c, err, "cannot read the value from stdin");
        /* `echo text | xichanctl put q` means "text": drop one final newline. */
        if (c->a.format == CTL_FMT_STR && len && data[len - 1] == '\n')
            len -= len > 1 && data[len - 2] == '\r' ? 2 : 1;
    }
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    switch (c->a.format) {
    case CTL_FMT_STR:
        if (!ctl_utf8_valid(data, len)) {
            rc = ctl_usage(c, "the value is not UTF-8 text; put it with --format bytes");
            break;
        }
        if (msgpack_pack_str(&pk, len) || msgpack_pack_str_body(&pk, data, len))
            rc = ctl_fail(c, XICHAN_ENOMEM, "put");
        break;
    case CTL_FMT_BYTES:
        if (msgpack_pack_bin(&pk, len) || msgpack_pack_bin_body(&pk, data, len))
            rc = ctl_fail(c, XICHAN_ENOMEM, "put");
        break;
    default:
        err = ctl_json_pack(data, len, &pk, jerr, sizeof(jerr));
        if (err == XICHAN_EINVAL)
            rc = ctl_usage(c, "%s", jerr);
        else if (err)
            rc = ctl_fail(c, err, "put");
        break;
    }
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- put */

int ctl_cmd_put(struct ctl *c)
{
    msgpack_sbuffer sb;
    struct ctl_ref r;
    char desc[128];
    int64_t deadline = c->a.timeout >= 0 ? xichan_deadline(c->a.timeout)
                       : c->a.nowait     ? XICHAN_NOWAIT
                                         : XICHAN_FOREVER;
    int rc, err;

    if (c->a.nowait && c->a.wait)
        return ctl_usage(c, "--nowait and --wait exclude each other");
    msgpack_sbuffer_init(&sb);
    if ((rc = ctl_resolve(c, c->a.pos[0], &r)) != CTL_OK || (rc = pack_value(c, &sb)) != CTL_OK)
        goto out;
    ctl_describe(&r, desc, sizeof(desc));
    ctl_catch_signals(c);
    if (r.kind == XICHAN_KIND_QUEUE) {
        err = (c->a.wait ? xichan_queue_handoff : xichan_queue_put)(
            c->cl, (xichan_queue_id){r.id}, XICHAN_FMT_MSGPACK, sb.data, sb.size, c->a.unboundop,
            deadline);
        if (err == XICHAN_EFULL) {
            (void)ctl_fail(c, 0, "%s is full (maxsize %lld)%s", desc, (long long)r.info.maxsize,
                           c->a.timeout > 0 ? " and stayed full" : "; --timeout S waits for room");
            rc = CTL_EEMPTY;
            goto out;
        }
    } else if (!c->a.wait) {
        err = xichan_chan_send_nowait(c->cl, (xichan_chan_id){r.id}, XICHAN_FMT_MSGPACK, sb.data,
                                      sb.size, c->a.unboundop);
        err = err > 0 ? 0 : err;
    } else {
        err = xichan_chan_send(c->cl, (xichan_chan_id){r.id}, XICHAN_FMT_MSGPACK, sb.data, sb.size,
                               c->a.unboundop, deadline);
    }
    if (err == XICHAN_ETIMEDOUT || err == XICHAN_EINTR) {
        (void)ctl_fail(c, 0, "%s: no %s took the item %s; it was withdrawn", desc,
                       r.kind == XICHAN_KIND_QUEUE ? "getter" : "receiver",
                       err == XICHAN_EINTR ? "before the interrupt" : "in time");
        rc = CTL_EEMPTY;
        goto out;
    }
    if (err) {
        rc = ctl_fail(c, err, "cannot put into %s", desc);
        goto out;
    }
    if (c->json)
        printf("{\"kind\":\"%s\",\"id\":%llu,\"bytes\":%zu,\"taken\":%s}\n", ctl_kind_name(r.kind),
               (unsigned long long)r.id, sb.size, c->a.wait ? "true" : "false");
out:
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---------------------------------------------------------------- get */

int ctl_cmd_get(struct ctl *c)
{
    xichan_item item;
    struct ctl_ref r;
    char desc[128];
    double t = c->a.timeout;
    int64_t deadline = t > 0 ? xichan_deadline(t) : XICHAN_NOWAIT;
    int rc = ctl_resolve(c, c->a.pos[0], &r), err;

    if (rc != CTL_OK)
        return rc;
    ctl_describe(&r, desc, sizeof(desc));
    ctl_catch_signals(c);
    err = r.kind == XICHAN_KIND_QUEUE
              ? xichan_queue_get(c->cl, (xichan_queue_id){r.id}, &item, deadline)
              : xichan_chan_recv(c->cl, (xichan_chan_id){r.id}, &item, deadline);
    switch (err) {
    case 0:
        break;
    case XICHAN_EEMPTY:
        if (t > 0)
            ctl_fail(c, 0, "nothing arrived in %s within %g s", desc, t);
        else
            ctl_fail(c, 0, "%s is empty (--timeout S waits for an item)", desc);
        return CTL_EEMPTY;
    case XICHAN_EINTR:
        ctl_fail(c, 0, "interrupted; nothing was taken from %s", desc);
        return CTL_EEMPTY;
    case XICHAN_EUNBOUND:
        return ctl_fail(c, 0, "the next item's producer ended and its unbounditems rule is "
                              "'error': the item was consumed, there is nothing to print");
    default:
        return ctl_fail(c, err, "cannot get from %s", desc);
    }
    rc = ctl_print_item(c, &r, &item, -1);
    xichan_item_release(&item);
    return rc;
}
