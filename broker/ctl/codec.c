/*
 * codec.c -- xichanctl's two conversions: JSON text to one msgpack value
 * (put --format json), and a received item to text (get).
 *
 * JSON -> msgpack, so that a Python getter receives the natural value
 * (pyext/_xichan/codec.c decodes map -> dict, array -> tuple).  jansson
 * parses (strict RFC 8259, UTF-8 checked, where it stopped in its errors);
 * this file only walks its tree:
 *
 *   null, true, false     nil, true, false
 *   integer               int64; beyond it, jansson's "too big integer"
 *   number with . or e    float64
 *   string                str (\u0000 allowed; a lone surrogate is an error)
 *   array, object         array, map (keys are str, in the text's order)
 *
 * Nesting is capped at CTL_JSON_MAX_DEPTH, the depth msgpack-c can unpack
 * again.
 *
 * Item -> text.  JSON-like: str as "text", bin as a Python bytes literal
 * b'...', UNBOUND as UNBOUND.  With --json, valid JSON: bytes as
 * {"$bytes":"<hex>"}, and the item's metadata around the value.  The ext
 * types are the Python binding's (pyext/_xichan/codec.c): 1 a queue or
 * channel handle, 2 a buffer.  Consuming an item ends the trip of the
 * handles and shared buffers in it, so their in-flight references are
 * given back, as a Python receiver does after binding them.
 */
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"


/* ------------------------------------------------------ JSON -> msgpack */

static int pack_json(const json_t *v, msgpack_packer *pk, int depth, char *err, size_t errcap);

static int too_deep(char *err, size_t errcap)
{
    snprintf(err, errcap, "bad JSON: nested deeper than %d levels (msgpack-c readers stop there)",
             CTL_JSON_MAX_DEPTH);
    return XICHAN_EINVAL;
}

static int pack_json(const json_t *v, msgpack_packer *pk, int depth, char *err, size_t errcap)
{
    const char *key, *str;
    json_t *elt;
    size_t i, n;
    int rc;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth >= CTL_JSON_MAX_DEPTH)
            return too_deep(err, errcap);
        if (msgpack_pack_map(pk, (uint32_t)json_object_size(v)))
            return XICHAN_ENOMEM;
        /* jansson keeps an object's keys in the order of the text. */
        json_object_foreach ((json_t *)v, key, elt) {
            n = strlen(key); /* JSON_ALLOW_NUL does not reach keys: no NUL in them */
            if (msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, key, n))
                return XICHAN_ENOMEM;
            if ((rc = pack_json(elt, pk, depth + 1, err, errcap)))
                return rc;
        }
        return 0;
    case JSON_ARRAY:
        if (depth >= CTL_JSON_MAX_DEPTH)
            return too_deep(err, errcap);
        if (msgpack_pack_array(pk, (uint32_t)json_array_size(v)))
            return XICHAN_ENOMEM;
        json_array_foreach (v, i, elt)
            if ((rc = pack_json(elt, pk, depth + 1, err, errcap)))
                return rc;
        return 0;
    case JSON_STRING:
        str = json_string_value(v);
        n = json_string_length(v);
        return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, str, n) ? XICHAN_ENOMEM : 0;
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(v)) ? XICHAN_ENOMEM : 0;
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v)) ? XICHAN_ENOMEM : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? XICHAN_ENOMEM : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? XICHAN_ENOMEM : 0;
    default:
        return msgpack_pack_nil(pk) ? XICHAN_ENOMEM : 0;
    }
}

int ctl_json_pack(const char *text, size_t len, msgpack_packer *pk, char *err, size_t errcap)
{
    json_error_t je;
    json_t *v;
    size_t i = 0;
    int rc;

    while (i < len && strchr(" \t\r\n", text[i]))
        i++;
    if (i == len) {
        snprintf(err, errcap,
                 "bad JSON: empty input: give one JSON value, e.g. 1, \"text\", [1,2] or {\"a\":1}");
        return XICHAN_EINVAL;
    }
    /* Strict RFC 8259 (jansson checks UTF-8 too); any value at the top;
     * \u0000 allowed in strings; a repeated key is an error, not a guess. */
    v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        snprintf(err, errcap, "bad JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return XICHAN_EINVAL;
    }
    rc = pack_json(v, pk, 0, err, errcap);
    json_decref(v);
    return rc;
}

/* ---------------------------------------------------------- printing */

struct pr {
    struct ctl *c;
    FILE *f;
    int json; /* strict JSON (--json) rather than JSON-like text */
    int peek; /* a copy of a queued item: its references stay the item's */
};

static void put_hex(FILE *f, const void *data, size_t len)
{
    const unsigned char *p = data;

    fputc('"', f);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", p[i]);
    fputc('"', f);
}

/* bytes as Python writes them: b'ab\x00\'' */
static void put_bytes(struct pr *pr, const void *data, size_t len)
{
    const unsigned char *p = data;

    if (pr->json) {
        fprintf(pr->f, "{\"$bytes\":");
        put_hex(pr->f, data, len);
        fputc('}', pr->f);
        return;
    }
    fputs("b'", pr->f);
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' || p[i] == '\'')
            fprintf(pr->f, "\\%c", p[i]);
        else if (p[i] == '\n')
            fputs("\\n", pr->f);
        else if (p[i] == '\t')
            fputs("\\t", pr->f);
        else if (p[i] == '\r')
            fputs("\\r", pr->f);
        else if (p[i] < 0x20 || p[i] >= 0x7F)
            fprintf(pr->f, "\\x%02x", p[i]);
        else
            fputc(p[i], pr->f);
    }
    fputc('\'', pr->f);
}

/* The shortest %g that reads back as d, always with a '.' or an 'e'. */
static void put_double(struct pr *pr, double d)
{
    char buf[40];

    if (isnan(d) || isinf(d)) {
        const char *s = isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity";
        if (pr->json)
            fprintf(pr->f, "{\"$float\":\"%s\"}", s);
        else
            fputs(s, pr->f);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    fputs(buf, pr->f);
    if (!strpbrk(buf, ".e"))
        fputs(".0", pr->f);
}

/* A buffer payload's description, and its bytes when we have them. */
static void put_buffer(struct pr *pr, const xichan_bufdesc *d, const void *bytes)
{
    static const char *modes[] = {"copy", "shared", "local"};
    const char *mode = d->mode >= 0 && d->mode <= 2 ? modes[d->mode] : "?";

    if (pr->json) {
        fprintf(pr->f, "{\"$buffer\":{\"format\":");
        ctl_json_str(pr->f, d->format ? d->format : "B");
        fprintf(pr->f, ",\"itemsize\":%zu,\"shape\":[", d->itemsize);
        for (int i = 0; i < d->ndim; i++)
            fprintf(pr->f, "%s%lld", i ? "," : "", (long long)d->shape[i]);
        fprintf(pr->f, "],\"readonly\":%s,\"mode\":\"%s\"", d->readonly ? "true" : "false", mode);
        if (d->mode == XICHAN_BUF_SHARED)
            fprintf(pr->f, ",\"buffer\":%llu", (unsigned long long)d->buf.id);
        if (bytes) {
            fprintf(pr->f, ",\"data\":");
            put_hex(pr->f, bytes, d->nbytes);
        }
        fprintf(pr->f, "}}");
        return;
    }
    fprintf(pr->f, "buffer(format='%s', itemsize=%zu, shape=(", d->format ? d->format : "B",
            d->itemsize);
    for (int i = 0; i < d->ndim; i++)
        fprintf(pr->f, "%s%lld%s", i ? ", " : "", (long long)d->shape[i], d->ndim == 1 ? "," : "");
    fprintf(pr->f, "), readonly=%s, mode=%s", d->readonly ? "True" : "False", mode);
    if (d->mode == XICHAN_BUF_SHARED)
        fprintf(pr->f, ", buffer=%llu", (unsigned long long)d->buf.id);
    if (bytes) {
        fputs(", ", pr->f);
        put_bytes(pr, bytes, d->nbytes);
    }
    fputc(')', pr->f);
}

static void put_ext(struct pr *pr, const msgpack_object_ext *e)
{
    const unsigned char *p = (const unsigned char *)e->ptr;
    xichan_bufdesc d;
    char fmtbuf[256];
    int64_t shape[XICHAN_BUF_MAXDIM];

    if (e->type == XICHAN_EXT_HANDLE && e->size == XICHAN_EXT_HANDLE_SIZE &&
        (p[0] == XICHAN_KIND_QUEUE || p[0] == XICHAN_KIND_CHANNEL || p[0] == XICHAN_KIND_BUFFER)) {
        uint64_t id = 0;
        const char *end = p[0] != XICHAN_KIND_CHANNEL ? NULL : (p[1] & XICHAN_HANDLE_SEND) ? "send"
                          : (p[1] & XICHAN_HANDLE_RECV) ? "recv" : NULL;
        for (int i = 0; i < 8; i++)
            id |= (uint64_t)p[2 + i] << (8 * i);
        if (pr->json) {
            fprintf(pr->f, "{\"$%s\":%llu", ctl_kind_name(p[0]), (unsigned long long)id);
            if (end)
                fprintf(pr->f, ",\"end\":\"%s\"", end);
            fputc('}', pr->f);
        } else {
            fprintf(pr->f, "<%s %llu%s%s>", ctl_kind_name(p[0]), (unsigned long long)id,
                    end ? " " : "", end ? end : "");
        }
        /* The trip is over: give back the reference that kept it alive. */
        if (!pr->peek)
            (void)xichan_obj_inflight(pr->c->cl, p[0], id, -1);
        return;
    }
    if (e->type == XICHAN_EXT_BUFFER && xichan_bufitem_parse(e->ptr, e->size, &d, fmtbuf, shape) == 0) {
        put_buffer(pr, &d, d.mode == XICHAN_BUF_SHARED ? NULL : d.data);
        if (d.mode == XICHAN_BUF_SHARED && !pr->peek)
            (void)xichan_obj_inflight(pr->c->cl, XICHAN_KIND_BUFFER, d.buf.id, -1);
        return;
    }
    if (pr->json) {
        fprintf(pr->f, "{\"$ext\":%d,\"data\":", e->type);
        put_hex(pr->f, e->ptr, e->size);
        fputc('}', pr->f);
    } else {
        fprintf(pr->f, "ext(%d, ", e->type);
        put_bytes(pr, e->ptr, e->size);
        fputc(')', pr->f);
    }
}

static void put_obj(struct pr *pr, const msgpack_object *o)
{
    const char *sep = pr->json ? "," : ", ", *colon = pr->json ? ":" : ": ";

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", pr->f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", pr->f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(pr->f, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(pr->f, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        put_double(pr, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        ctl_json_strn(pr->f, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        put_bytes(pr, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', pr->f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                fputs(sep, pr->f);
            put_obj(pr, &o->via.array.ptr[i]);
        }
        fputc(']', pr->f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', pr->f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i)
                fputs(sep, pr->f);
            if (pr->json && k->type != MSGPACK_OBJECT_STR) {
                /* JSON keys are strings: the key's own JSON, quoted. */
                char *buf = NULL;
                size_t n = 0;
                FILE *m = open_memstream(&buf, &n);
                struct pr sub = {pr->c, m, 1, pr->peek};
                if (m) {
                    put_obj(&sub, k);
                    fclose(m);
                    ctl_json_strn(pr->f, buf, n);
                }
                free(buf);
            } else {
                put_obj(pr, k);
            }
            fputs(colon, pr->f);
            put_obj(pr, &o->via.map.ptr[i].val);
        }
        fputc('}', pr->f);
        break;
    case MSGPACK_OBJECT_EXT:
        put_ext(pr, &o->via.ext);
        break;
    }
}

/* --raw: the bare bytes of a str, bin or raw item; 0 if it is none of them. */
static int put_raw(const xichan_item *item, const msgpack_object *o)
{
    if (item->fmt == XICHAN_FMT_RAW)
        fwrite(item->data, 1, item->len, stdout);
    else if (o && o->type == MSGPACK_OBJECT_STR)
        fwrite(o->via.str.ptr, 1, o->via.str.size, stdout);
    else if (o && o->type == MSGPACK_OBJECT_BIN)
        fwrite(o->via.bin.ptr, 1, o->via.bin.size, stdout);
    else
        return 0;
    return 1;
}

static const char *fmt_name(int fmt)
{
    static const char *names[] = {"raw", "msgpack", "pickle", "buffer", "pickle-oob"};
    return fmt >= 0 && fmt <= 4 ? names[fmt] : "other";
}

/*
 * A pickle with out-of-band buffers: its pickle and the size of each buffer
 * (not their bytes: they are what makes such an item big), the first
 * PICKLE_BUFS of them.  Text: pickle-oob(b'...', buffers=[N bytes, M bytes
 * read-only]); JSON: {"pickle": {"$bytes": ...}, "nbuf": 2, "buffers":
 * [{"bytes": N, "readonly": false}, ...]}.  Unparsable: its bytes, and -1.
 */
#define PICKLE_BUFS 64
static int put_pickle_oob(struct pr *pr, const xichan_item *item)
{
    xichan_picklebuf b[PICKLE_BUFS];
    const void *pk;
    size_t pklen;
    int n = xichan_pickleitem_parse(item->data, item->len, &pk, &pklen, b, PICKLE_BUFS);

    if (n < 0) {
        put_bytes(pr, item->data, item->len);
        return -1;
    }
    fputs(pr->json ? "{\"pickle\":" : "pickle-oob(", pr->f);
    put_bytes(pr, pk, pklen);
    if (pr->json)
        fprintf(pr->f, ",\"nbuf\":%d,\"buffers\":[", n);
    else
        fputs(", buffers=[", pr->f);
    for (int i = 0; i < n && i < PICKLE_BUFS; i++) {
        if (pr->json)
            fprintf(pr->f, "%s{\"bytes\":%zu,\"readonly\":%s}", i ? "," : "", b[i].len,
                    b[i].readonly ? "true" : "false");
        else
            fprintf(pr->f, "%s%zu bytes%s", i ? ", " : "", b[i].len,
                    b[i].readonly ? " read-only" : "");
    }
    if (!pr->json && n > PICKLE_BUFS)
        fprintf(pr->f, ", and %d more", n - PICKLE_BUFS);
    fputs(pr->json ? "]}" : "])", pr->f);
    return 0;
}

int ctl_print_item(struct ctl *c, const struct ctl_ref *r, xichan_item *item, long index)
{
    struct pr pr = {c, stdout, c->json, index >= 0};
    msgpack_unpacked u;
    xichan_bufdesc d;
    char fmtbuf[256];
    int64_t shape[XICHAN_BUF_MAXDIM];
    void *ptr = NULL;
    int rc = CTL_OK, have_obj = 0, err;

    msgpack_unpacked_init(&u);
    if (!item->unbound && item->fmt == XICHAN_FMT_MSGPACK) {
        if (xichan_item_unpack(item, &u) == 0)
            have_obj = 1;
        else
            rc = ctl_fail(c, 0, "the item says msgpack but is not one msgpack value; its bytes:");
    }
    if (c->a.raw && !c->json && !item->unbound) {
        if (put_raw(item, have_obj ? &u.data : NULL))
            goto out;
        fprintf(stderr, "xichanctl %s: --raw prints str, bytes and raw items only; "
                        "this is a %s item:\n", c->cmd, fmt_name(item->fmt));
    }
    if (c->json) {
        printf("{\"kind\":\"%s\",\"id\":%llu,\"name\":", ctl_kind_name(r->kind),
               (unsigned long long)r->id);
        if (r->info.name[0])
            ctl_json_str(stdout, r->info.name);
        else
            printf("null");
        if (index >= 0)
            printf(",\"index\":%ld", index);
        printf(",\"producer\":%u,\"format\":\"%s\",\"unbound\":%s,", item->producer,
               fmt_name(item->fmt), item->unbound ? "true" : "false");
        if (item->unbound == 2) /* peek: the get that meets it fails */
            printf("\"unbounditems\":\"error\",");
        printf("\"value\":");
    } else if (index >= 0) {
        printf("%ld: ", index);
    }
    if (item->unbound) {
        fputs(c->json ? "null" : item->unbound == 2 ? "UNBOUND (unbounditems error: its get fails)"
                                                     : "UNBOUND",
              stdout);
    } else if (have_obj) {
        put_obj(&pr, &u.data);
    } else if (item->fmt == XICHAN_FMT_BUFFER && pr.peek) {
        /* A copy: describe it without binding its buffer or taking its reference. */
        if (xichan_bufitem_parse(item->data, item->len, &d, fmtbuf, shape) == 0) {
            put_buffer(&pr, &d, d.mode == XICHAN_BUF_SHARED ? NULL : d.data);
        } else {
            rc = ctl_fail(c, 0, "the buffer item does not parse; its bytes:");
            put_bytes(&pr, item->data, item->len);
        }
    } else if (item->fmt == XICHAN_FMT_BUFFER) {
        if ((err = xichan_item_buffer(c->cl, item, &d, fmtbuf, shape, &ptr)) == 0) {
            put_buffer(&pr, &d, ptr);
            if (d.mode == XICHAN_BUF_SHARED)
                (void)xichan_buf_unbind(c->cl, d.buf); /* the binding item_buffer made */
        } else {
            rc = ctl_fail(c, err, "cannot read the buffer item; its bytes:");
            put_bytes(&pr, item->data, item->len);
        }
    } else if (item->fmt == XICHAN_FMT_PICKLE_OOB) {
        rc = put_pickle_oob(&pr, item) ? ctl_fail(c, 0, "the pickled item does not parse; its bytes:")
                                       : rc;
    } else if (item->fmt == XICHAN_FMT_PICKLE && !c->json) {
        printf("pickle(");
        put_bytes(&pr, item->data, item->len);
        printf(")");
    } else {
        put_bytes(&pr, item->data, item->len);
    }
    printf(c->json ? "}\n" : "\n");
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}
