/*
 * misc.c -- namespace names and the runtime directory (xichan(7):
 * XICHAN_NAME, XICHAN_RUNTIME_DIR), shared by clients, xichand and xichanctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "paths.h"

#define NS_MAX 40

static int fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap ? 0 : XICHAN_ENAMETOOLONG;
}

int xichan__runtime_dir(char *buf, size_t cap, const char *override)
{
    const char *e;

    if (override && *override)
        return fits(snprintf(buf, cap, "%s", override), cap);
    if ((e = getenv("XICHAN_RUNTIME_DIR")) && *e)
        return fits(snprintf(buf, cap, "%s", e), cap);
    if ((e = getenv("XDG_RUNTIME_DIR")) && *e)
        return fits(snprintf(buf, cap, "%s/xichan", e), cap);
    return fits(snprintf(buf, cap, "/tmp/xichan-%u", (unsigned)getuid()), cap);
}

/* A namespace is 1..40 characters of [A-Za-z0-9._-], and not "." or "..". */
static int ns_valid(const char *ns)
{
    size_t n = strlen(ns);

    if (n < 1 || n > NS_MAX || !strcmp(ns, ".") || !strcmp(ns, ".."))
        return 0;
    for (const char *p = ns; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

int xichan__ns_name(char *buf, size_t cap, const char *override)
{
    const char *ns = override && *override ? override : getenv("XICHAN_NAME");

    if (!ns || !*ns)
        ns = "default";
    if (!ns_valid(ns))
        return XICHAN_EINVAL;
    return fits(snprintf(buf, cap, "%s", ns), cap);
}

int xichan__sock_path(char *buf, size_t cap, const char *dir, const char *ns)
{
    return fits(snprintf(buf, cap, "%s/%s.sock", dir, ns), cap);
}

int xichan__lock_path(char *buf, size_t cap, const char *dir, const char *ns)
{
    return fits(snprintf(buf, cap, "%s/%s.lock", dir, ns), cap);
}

int xichan__fd_above_stdio(int fd)
{
    int nfd;

    if (fd < 0 || fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

void xichan__stdio_guard(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            /* open() takes the lowest free number: this one. */
            int nfd = open("/dev/null", O_RDWR);
            if (nfd > 2)
                close(nfd);
        }
}

int xichan__utf8_next(const unsigned char *s, size_t left, uint32_t *cp_out)
{
    unsigned c = s[0], need;
    uint32_t cp;

    if (left == 0)
        return 0;
    if (c < 0x80) {
        *cp_out = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, cp = c & 0x07;
    else
        return 0;
    if (left < need + 1)
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at a NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    /* Overlong forms and code points past U+10FFFF are not UTF-8. */
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    *cp_out = cp;
    return (int)need + 1;
}

/*
 * Names are shown to people (xichanctl, Python's list_all) and decoded as
 * UTF-8 by every Python client: only valid UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF), and no C0 or C1 control character
 * or DEL, which a terminal would act on.
 */
int xichan__name_ok(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t left = strlen(name);

    while (left) {
        uint32_t cp;
        int n = xichan__utf8_next(p, left, &cp);

        if (!n || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n;
        left -= (size_t)n;
    }
    return 1;
}
