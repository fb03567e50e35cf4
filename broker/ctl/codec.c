/*
 * codec.c -- xichanctl's two conversions: JSON text to one msgpack value
 * (put --format json), and a received item to text (get).
 *
 * JSON -> msgpack, so that a Python getter receives the natural value
 * (pyext/_xichan/codec.c decodes map -> dict, array -> tuple):
 *
 *   null, true, false     nil, true, false
 *   integer               int64 (uint64 above INT64_MAX); larger is an error
 *   number with . or e    float64
 *   string                str (escapes decoded; a lone \uD800 is kept as
 *                         Python's surrogatepass writes it)
 *   array, object         array, map (keys are str)
 *
 * The parser is strict RFC 8259 (no comments, no trailing commas, UTF-8
 * input) and says where it stopped.  A container's element count is only
 * known at its end, so each container is packed into a buffer of its own
 * and copied behind its header: O(depth x size), with depth capped at
 * CTL_JSON_MAX_DEPTH -- the nesting msgpack-c can unpack again.
 *
 * Item -> text.  JSON-like: str as "text", bin as a Python bytes literal
 * b'...', UNBOUND as UNBOUND.  With --json, valid JSON: bytes as
 * {"$bytes":"<hex>"}, and the item's metadata around the value.  The ext
 * types are the Python binding's (pyext/_xichan/codec.c): 1 a queue or
 * channel handle, 2 a buffer.  Consuming an item ends the trip of the
 * handles and shared buffers in it, so their in-flight references are
 * given back, as a Python receiver does after binding them.
 */
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"


/* ------------------------------------------------------ JSON parser */

struct jp {
    const char *s, *p, *end;
    char *err;
    size_t errcap;
};

static int jfail(struct jp *j, const char *what)
{
    int line = 1, col = 1;

    for (const char *q = j->s; q < j->p; q++, col++)
        if (*q == '\n')
            line++, col = 0;
    snprintf(j->err, j->errcap, "bad JSON at line %d, column %d: %s", line, col, what);
    return XICHAN_EINVAL;
}

static void ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int lit(struct jp *j, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
        return 0;
    j->p += n;
    return 1;
}

static int hex4(struct jp *j, unsigned *out)
{
    *out = 0;
    for (int i = 0; i < 4; i++, j->p++) {
        char ch = j->p < j->end ? *j->p : 0;
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (v < 0)
            return jfail(j, "\\u needs four hex digits");
        *out = *out << 4 | (unsigned)v;
    }
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string at j->p (a '"') into *out (malloc'd; decoded text is
 * never longer than its JSON form). */
static int string(struct jp *j, char **out, size_t *len)
{
    char *o = malloc((size_t)(j->end - j->p) + 1);
    size_t n = 0;
    unsigned cp, lo;
    int err;

    if (!o)
        return XICHAN_ENOMEM;
    for (j->p++;; j->p++) {
        if (j->p >= j->end) {
            err = jfail(j, "unterminated string");
            goto fail;
        }
        if (*j->p == '"')
            break;
        if ((unsigned char)*j->p < 0x20) {
            err = jfail(j, "control character in a string (write it as \\n, \\t or \\u00XX)");
            goto fail;
        }
        if (*j->p != '\\') {
            o[n++] = *j->p; /* UTF-8 was checked for the whole text */
            continue;
        }
        if (++j->p >= j->end) {
            err = jfail(j, "unterminated string");
            goto fail;
        }
        switch (*j->p) {
        case '"': case '\\': case '/': o[n++] = *j->p; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u':
            j->p++;
            if ((err = hex4(j, &cp)))
                goto fail;
            /* A surrogate pair makes one code point; a lone half stays. */
            if (cp >= 0xD800 && cp <= 0xDBFF && j->end - j->p >= 6 && j->p[0] == '\\' &&
                j->p[1] == 'u') {
                const char *save = j->p;
                j->p += 2;
                if ((err = hex4(j, &lo)))
                    goto fail;
                if (lo >= 0xDC00 && lo <= 0xDFFF)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    j->p = save;
            }
            n += put_utf8(o + n, cp);
            j->p--;
            break;
        default:
            err = jfail(j, "unknown escape (use \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
            goto fail;
        }
    }
    j->p++;
    *out = o;
    *len = n;
    return 0;
fail:
    free(o);
    return err;
}

static int number(struct jp *j, msgpack_packer *pk)
{
    const char *start = j->p;
    char buf[512], *end;
    int is_float = 0;

    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (j->p < j->end && *j->p >= '1' && *j->p <= '9')
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    else
        return jfail(j, "expected a value (a number, string, true, false, null, [ or {)");
    if (j->p < j->end && *j->p == '.') {
        is_float = 1;
        if (++j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jfail(j, "expected digits after '.'");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        is_float = 1;
        if (++j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jfail(j, "expected digits in the exponent");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if ((size_t)(j->p - start) >= sizeof(buf))
        return jfail(j, "number too long");
    memcpy(buf, start, (size_t)(j->p - start));
    buf[j->p - start] = '\0';
    errno = 0;
    if (is_float) {
        double d = strtod(buf, &end);
        if (isinf(d))
            return jfail(j, "number too large for a 64-bit float");
        return msgpack_pack_double(pk, d) ? XICHAN_ENOMEM : 0;
    }
    if (buf[0] == '-') {
        long long v = strtoll(buf, &end, 10);
        if (errno == ERANGE)
            return jfail(j, "integer below -2^63 (write it as a string or a float)");
        return msgpack_pack_int64(pk, v) ? XICHAN_ENOMEM : 0;
    } else {
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno == ERANGE)
            return jfail(j, "integer above 2^64-1 (write it as a string or a float)");
        return (v <= INT64_MAX ? msgpack_pack_int64(pk, (int64_t)v) : msgpack_pack_uint64(pk, v))
                   ? XICHAN_ENOMEM : 0;
    }
}

static int value(struct jp *j, msgpack_packer *pk, int depth);

/* An array or object: packed into its own buffer, then header + buffer. */
static int container(struct jp *j, msgpack_packer *pk, int depth)
{
    int is_map = *j->p == '{', err = 0;
    char close = is_map ? '}' : ']';
    msgpack_sbuffer sb;
    msgpack_packer sub;
    uint32_t n = 0;

    if (depth >= CTL_JSON_MAX_DEPTH)
        return jfail(j, "nested deeper than 32 levels (msgpack-c readers stop there)");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&sub, &sb, msgpack_sbuffer_write);
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == close)
        goto done;
    for (;;) {
        ws(j);
        if (is_map) {
            char *key;
            size_t klen;
            if (j->p >= j->end || *j->p != '"') {
                err = jfail(j, "expected a string key");
                goto out;
            }
            if ((err = string(j, &key, &klen)))
                goto out;
            err = msgpack_pack_str(&sub, klen) || msgpack_pack_str_body(&sub, key, klen);
            free(key);
            if (err) {
                err = XICHAN_ENOMEM;
                goto out;
            }
            ws(j);
            if (j->p >= j->end || *j->p != ':') {
                err = jfail(j, "expected ':' after the key");
                goto out;
            }
            j->p++;
        }
        if ((err = value(j, &sub, depth + 1)))
            goto out;
        if (++n == UINT32_MAX) {
            err = jfail(j, "too many elements");
            goto out;
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close)
            break;
        err = jfail(j, is_map ? "expected ',' or '}'" : "expected ',' or ']'");
        goto out;
    }
done:
    j->p++;
    if ((is_map ? msgpack_pack_map(pk, n) : msgpack_pack_array(pk, n)) ||
        (sb.size && pk->callback(pk->data, sb.data, sb.size)))
        err = XICHAN_ENOMEM;
out:
    msgpack_sbuffer_destroy(&sb);
    return err;
}

static int value(struct jp *j, msgpack_packer *pk, int depth)
{
    char *s;
    size_t n;
    int err;

    ws(j);
    if (j->p >= j->end)
        return jfail(j, "expected a value, found the end of the input");
    switch (*j->p) {
    case '{':
    case '[':
        return container(j, pk, depth);
    case '"':
        if ((err = string(j, &s, &n)))
            return err;
        err = msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n) ? XICHAN_ENOMEM : 0;
        free(s);
        return err;
    case 't':
        if (lit(j, "true"))
            return msgpack_pack_true(pk) ? XICHAN_ENOMEM : 0;
        break;
    case 'f':
        if (lit(j, "false"))
            return msgpack_pack_false(pk) ? XICHAN_ENOMEM : 0;
        break;
    case 'n':
        if (lit(j, "null"))
            return msgpack_pack_nil(pk) ? XICHAN_ENOMEM : 0;
        break;
    default:
        return number(j, pk);
    }
    return jfail(j, "expected a value (true, false and null are lower case)");
}

int ctl_json_pack(const char *text, size_t len, msgpack_packer *pk, char *err, size_t errcap)
{
    struct jp j = {text, text, text + len, err, errcap};
    int rc;

    if (!ctl_utf8_valid(text, len))
        return jfail(&j, "the input is not UTF-8");
    ws(&j);
    if (j.p == j.end)
        return jfail(&j, "empty input: give one JSON value, e.g. 1, \"text\", [1,2] or {\"a\":1}");
    if ((rc = value(&j, pk, 0)))
        return rc;
    ws(&j);
    if (j.p != j.end)
        return jfail(&j, "more text after the JSON value");
    return 0;
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
    static const char *names[] = {"raw", "msgpack", "pickle", "buffer"};
    return fmt >= 0 && fmt <= 3 ? names[fmt] : "other";
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
