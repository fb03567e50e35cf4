/*
 * ctl_list.c -- xichanctl list / show / stats, as a user runs them: the
 * table and the JSON name every queue and channel with its state, counts
 * and sessions; show finds one object by id or name; a missing daemon and a
 * missing object get clear messages and their exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ctl.h"

/* The column at which word starts in the line of out that contains key. */
static int column_of(const char *key, const char *word)
{
    const char *at = strstr(out, key), *line, *w;

    XT_CHECK(at != NULL);
    for (line = at; line > out && line[-1] != '\n'; line--)
        ;
    w = strstr(line, word);
    XT_CHECK(w != NULL && (w < strchr(line, '\n')));
    return (int)(w - line);
}

/* A name longer than the NAME column widens it for every row. */
static void test_long_name_aligned(xichan_client *cl)
{
    static const char name[] = "a.rather.long.queue.name.for.results";
    xichan_queue_id q;

    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.name = name}, &q));
    EXPECT(0, NULL, "xichanctl list");
    XT_EQ_INT(column_of(name, "open"), column_of("KIND", "STATE"));
    XT_EQ_INT(column_of("jobs", "open"), column_of("KIND", "STATE"));
    XT_OK(xichan_queue_destroy(cl, q));
}

int main(void)
{
    xichan_client *cl;
    xichan_queue_id q;
    xichan_chan_id c, c2;

    /* No daemon yet. */
    EXPECT(2, "no xichand runs for namespace", "xichanctl list");
    HAS("xichand --name");

    xt_start_daemon(NULL);
    EXPECT(0, "(no queues or channels)", "xichanctl list");
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.maxsize = 8, .name = "jobs"}, &q));
    XT_OK(xichan_queue_put(cl, q, 0, "abc", 3, 0, XICHAN_NOWAIT));
    XT_OK(xichan_chan_create(cl, NULL, &c));
    XT_CHECK(xichan_chan_send_nowait(cl, c, 0, "x", 1, 0) >= 0);
    XT_OK(xichan_chan_create(cl, NULL, &c2));
    XT_OK(xichan_chan_close(cl, c2, 0));

    EXPECT(0, "KIND", "xichanctl list");
    HAS("jobs");
    HAS("queue");
    HAS("channel");
    HAS("closed");
    test_long_name_aligned(cl);
    EXPECT(0, "\"objects\":[", "xichanctl --json list");
    HAS("{\"kind\":\"queue\",\"id\":1,\"name\":\"jobs\",\"state\":\"open\",\"count\":1,"
        "\"maxsize\":8,\"bytes\":3");
    HAS("{\"kind\":\"channel\",\"id\":0,\"name\":null,\"state\":\"open\",\"count\":1");
    HAS("\"kind\":\"channel\",\"id\":1,\"name\":null,\"state\":\"closed\"");
    EXPECT(0, "\"objects\":[", "xichanctl list --json");

    EXPECT(0, "queue 1", "xichanctl show jobs");
    HAS("maxsize:       8");
    HAS("items:         1 (3 bytes)");
    EXPECT(0, "channel 0", "xichanctl show c:0");
    HAS("send end:      1 associated");
    XT_EQ_INT(run("xichanctl show 1"), 0); /* queue 1 and channel 1 both */
    HAS("queue 1");
    HAS("channel 1");
    EXPECT(0, "\"name\":\"jobs\"", "xichanctl --json show q:1");
    EXPECT(3, "no queue or channel 'nosuch'", "xichanctl show nosuch");
    EXPECT(1, NULL, "xichanctl show");

    EXPECT(0, "objects:   3 of", "xichanctl stats");
    EXPECT(0, "\"objects\":3", "xichanctl --json stats");
    EXPECT(1, "unknown command", "xichanctl frobnicate");
    EXPECT(0, "usage: xichanctl", "xichanctl --help");
    xichan_client_close(cl);
    printf("ctl_list: list, show, stats and their errors behave\n");
    return 0;
}
