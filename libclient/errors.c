/*
 * errors.c -- messages and names for XICHAN_E* codes.
 *
 * Both tables come from the one XICHAN_ERRNO_MAP in xichan.h, so a code
 * cannot exist without its message.
 *
 * A refusal (XICHAN_EACCES: the daemon or the kernel kept this user out;
 * XICHAN_EPERM: the client would not trust the daemon it found;
 * XICHAN_ENODAEMON: it would not start one in another user's dir) carries
 * facts a fixed text cannot: the namespace, the uids, the group.  The code
 * stays an int, so, as with dlerror(), the detail lives per thread: the
 * connect path records it with xichan__set_refusal() and xichan_strerror()
 * returns it for that same code, until the thread's next client open.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local int refusal_code;
static _Thread_local char refusal_text[512]; /* the ENOSPC text with its sizes and advice runs long */

void xichan__set_refusal(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(refusal_text, sizeof(refusal_text), fmt, ap);
    va_end(ap);
    /* The text may quote the daemon's words: keep it one printable line. */
    for (char *p = refusal_text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    refusal_code = err;
}

void xichan__clear_refusal(void)
{
    refusal_code = 0;
    refusal_text[0] = '\0';
}

const char *xichan_strerror(int err)
{
    if (err != 0 && err == refusal_code && refusal_text[0])
        return refusal_text;
    switch (err) {
    case 0:
        return "success";
#define XICHAN_ERR_MSG_(name, value, msg)                                                          \
    case value:                                                                                    \
        return msg;
        XICHAN_ERRNO_MAP(XICHAN_ERR_MSG_)
#undef XICHAN_ERR_MSG_
    default:
        return "unknown xichan error";
    }
}

const char *xichan_err_name(int err)
{
    switch (err) {
    case 0:
        return "0";
#define XICHAN_ERR_NAME_(name, value, msg)                                                         \
    case value:                                                                                    \
        return "XICHAN_" #name;
        XICHAN_ERRNO_MAP(XICHAN_ERR_NAME_)
#undef XICHAN_ERR_NAME_
    default:
        return "XICHAN_E?";
    }
}
