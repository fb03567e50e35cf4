/*
 * names.c -- object names are UTF-8 text without control characters, and
 * whatever a segment holds is printed safely.
 *
 *   - the library refuses, for every creator (C here, xichanctl below,
 *     Python in tests/python/test_names.py), a name that is not UTF-8 or
 *     holds a C0/C1 control character or DEL, with XICHAN_EBADNAME, and
 *     creates nothing; any other UTF-8 text is fine;
 *   - a name scribbled into the segment (control characters, bytes that
 *     are not UTF-8) is listed escaped by xichanctl list, show and --json,
 *     and no raw escape byte reaches the terminal;
 *   - a session kind with control characters (a client may say anything
 *     in its HELLO) reaches no terminal raw through xichanctl sessions.
 */
#include <string.h>

#include "harness.h"
#include "internal.h"

static const char *bad[] = {
    "esc\x1b[31mred", "bell\a", "nl\nx", "tab\tx", "del\x7f", "c1\xc2\x9b" "2J",
    "latin1\xe9", "overlong\xc0\xaf", "surrogate\xed\xa0\x80", "toobig\xf4\x90\x80\x80",
    "cut\xe2\x82",
};

int main(void)
{
    xichan_queue_opts qo = {0};
    xichan_chan_opts co = {0};
    xichan_client *cl;
    xichan_queue_id q, good;
    xichan_chan_id ch;
    struct xichan_objref ref;
    char out[16384];

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        qo.name = bad[i];
        co.name = bad[i];
        XT_ERR(xichan_queue_create(cl, &qo, &q), XICHAN_EBADNAME);
        XT_ERR(xichan_chan_create(cl, &co, &ch), XICHAN_EBADNAME);
    }
    XT_EQ_INT(xichan_list(cl, NULL, 0), 0); /* nothing was created */
    XT_HAS(xichan_strerror(XICHAN_EBADNAME), "UTF-8");
    qo.name = "caf\xc3\xa9-\xe9\x98\x9f\xe5\x88\x97 \xf0\x9f\x93\xa6"; /* café-队列 📦 */
    XT_OK(xichan_queue_create(cl, &qo, &good));

    /* xichanctl goes through the library: same refusal, clear message. */
    XT_CHECK(xt_sh(out, sizeof(out), "xichanctl create queue --name \"$(printf 'a\\033[2J')\"") != 0);
    XT_HAS(out, "UTF-8");
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl list"), 0);
    XT_HAS(out, "caf\xc3\xa9-\xe9\x98\x9f\xe5\x88\x97");

    /* A segment that already holds a bad name: scribble one in place. */
    XT_OK(xichan__resolve(cl, XICHAN_KIND_QUEUE, good.id, &ref));
    memcpy(ref.o->name, "x\x1b]0;pwned\a\xff\xc2\x9b", 15); /* with its NUL */
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl list"), 0);
    XT_CHECK(!strchr(out, '\x1b') && !strchr(out, '\a') && !strstr(out, "\xc2\x9b"));
    XT_HAS(out, "x\\x1b]0;pwned\\x07\\xff\\u009b");
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl show %llu", (unsigned long long)good.id), 0);
    XT_CHECK(!strchr(out, '\x1b') && !strchr(out, '\a'));
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl list --json"), 0);
    XT_CHECK(!strchr(out, '\x1b') && !strchr(out, '\a'));

    /* A client whose kind has control characters. */
    {
        xichan_client_opts o = {.autostart = 0, .kind = "k\x1b[2J"};
        xichan_client *c2;
        XT_OK(xichan_client_open(&c2, &o));
        XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl sessions"), 0);
        XT_CHECK(!strchr(out, '\x1b'));
        XT_HAS(out, "[2J"); /* the daemon or xichanctl made the ESC harmless */
        xichan_client_close(c2);
    }
    xichan_client_close(cl);
    printf("names: ok\n");
    return 0;
}
