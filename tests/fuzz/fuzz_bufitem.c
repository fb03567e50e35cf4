/*
 * fuzz_bufitem.c -- libFuzzer target: the payload of an XICHAN_FMT_BUFFER
 * item (bufitem.c), which a receiver parses from another process's bytes.
 *
 * The input is parsed with xichan_bufitem_parse.  If that succeeds the
 * descriptor must be valid for the encoder (xichan_bufitem_size > 0), its
 * size must be the input's length (the format is exact: no trailing bytes),
 * except that an empty format string re-encodes as "B" (xichan.h: "NULL or
 * "" means "B"); encoding it and parsing the result must give the same
 * descriptor (mode, readonly, itemsize, shape, nbytes, format, mode fields,
 * and the same data bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xichan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_bufitem: %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *fmt_norm(const char *f)
{
    return f && f[0] ? f : "B";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t shape1[XICHAN_BUF_MAXDIM], shape2[XICHAN_BUF_MAXDIM];
    char fmt1[256], fmt2[256];
    xichan_bufdesc d1, d2;
    uint8_t *copy, *enc;
    size_t n;
    int err;

    /* A private copy, so that ASan sees any read past the payload. */
    copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    err = xichan_bufitem_parse(copy, size, &d1, fmt1, shape1);
    CHECK(err == 0 || err == XICHAN_ECORRUPT);
    if (err) {
        free(copy);
        return 0;
    }
    CHECK(d1.mode >= XICHAN_BUF_COPY && d1.mode <= XICHAN_BUF_LOCAL);
    CHECK(d1.ndim >= 0 && d1.ndim <= XICHAN_BUF_MAXDIM && d1.itemsize >= 1);
    CHECK(strlen(d1.format) < 256);
    if (d1.mode != XICHAN_BUF_SHARED) {
        CHECK(d1.data != NULL || d1.nbytes == 0);
        CHECK(!d1.nbytes || ((const uint8_t *)d1.data >= copy &&
                             (const uint8_t *)d1.data + d1.nbytes <= copy + size));
    }
    n = xichan_bufitem_size(&d1);
    CHECK(n > 0);
    CHECK(n == size || (!d1.format[0] && n == size + 8));
    enc = malloc(n);
    CHECK(enc != NULL);
    CHECK(xichan_bufitem_encode(&d1, enc, n) == 0);
    CHECK(xichan_bufitem_encode(&d1, enc, n - 1) == XICHAN_EINVAL);
    CHECK(xichan_bufitem_parse(enc, n, &d2, fmt2, shape2) == 0);
    CHECK(d2.mode == d1.mode && d2.readonly == d1.readonly && d2.itemsize == d1.itemsize);
    CHECK(d2.ndim == d1.ndim && d2.nbytes == d1.nbytes);
    CHECK(memcmp(shape1, shape2, 8u * (size_t)d1.ndim) == 0);
    CHECK(strcmp(fmt_norm(d1.format), d2.format) == 0);
    if (d1.mode == XICHAN_BUF_SHARED) {
        CHECK(d2.buf.id == d1.buf.id && d2.offset == d1.offset);
    } else {
        CHECK(!d1.nbytes || memcmp(d1.data, d2.data, d1.nbytes) == 0);
        if (d1.mode == XICHAN_BUF_LOCAL)
            CHECK(d2.local_pid == d1.local_pid && d2.local_token == d1.local_token &&
                  d2.local_addr == d1.local_addr);
    }
    /* A canonical payload re-encodes to itself, byte for byte. */
    if (n == size) {
        uint8_t *enc2 = malloc(n);
        CHECK(enc2 && xichan_bufitem_encode(&d2, enc2, n) == 0 && memcmp(enc, enc2, n) == 0);
        free(enc2);
    }
    free(enc);
    free(copy);
    return 0;
}
