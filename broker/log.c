/*
 * log.c -- xichand's log: where its lines go, what they look like, and
 * reopening the file on SIGHUP.
 *
 * One sink, chosen at start-up:
 *
 *   stderr      (the default) "2026-12-06T13:01:06.123Z xichand[42]: info:
 *               text", UTC with milliseconds.  When stderr is the journal
 *               -- systemd sets $JOURNAL_STREAM to the device and inode of
 *               the stream it gave us -- a line is "<6>text" instead: the
 *               journal stamps time and pid itself and reads the priority
 *               from the prefix (sd-daemon(3)).
 *   --log-file  the same timestamped lines, appended to a file.  Start-up
 *               errors still go to the terminal; once the daemon serves, the
 *               file becomes fd 2 (xd_ready), so whatever else writes to
 *               stderr lands there too.  SIGHUP opens the path again and
 *               moves the new file onto fd 2 (logrotate's create, or
 *               copytruncate without the signal).  The path is made absolute
 *               at start-up so a reopen does not depend on the cwd.
 *   --syslog    syslog(3): ident "xichand", LOG_PID, facility LOG_DAEMON.
 *
 * The file is opened O_NOFOLLOW: a log path in a directory others can write
 * (/tmp) must not let them point the daemon's appends at a file of theirs
 * through a symlink.  Each line is built in a buffer and written with one
 * write(2) to an O_APPEND descriptor, so lines from the loop thread and the
 * cleanup workers never interleave inside a line; a reopen is one dup2(2),
 * which a concurrent write sees either before or after.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

static const char *level_names[] = {"error", "warn", "info", "debug"};
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

static struct {
    int syslog;                /* --syslog */
    int journal;               /* stderr is the journal: "<N>" prefixes, no stamps */
    char path[PATH_MAX];       /* --log-file, absolute; "" if none */
} lg;

int xd_log_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

/* 1 if fd 2 is the stream $JOURNAL_STREAM ("dev:ino") names. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
}

int xd_log_init(const char *file, int use_syslog)
{
    if (use_syslog) {
        lg.syslog = 1;
        openlog("xichand", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        return 0;
    }
    if (!file) {
        lg.journal = stderr_is_journal();
        return 0;
    }
    {
        char cwd[PATH_MAX];
        int r = file[0] == '/'       ? snprintf(lg.path, sizeof(lg.path), "%s", file)
                : getcwd(cwd, sizeof(cwd)) ? snprintf(lg.path, sizeof(lg.path), "%s/%s", cwd, file)
                                           : -1;
        if (r < 0 || r >= (int)sizeof(lg.path)) {
            fprintf(stderr, "xichand: --log-file %s: %s\n", file,
                    r < 0 ? "cannot tell the current directory" : "path too long");
            return -1;
        }
    }
    if ((xd.log_fd = open_file(lg.path)) < 0) {
        fprintf(stderr, "xichand: cannot open log file %s: %s\n", lg.path,
                errno == ELOOP ? "it is a symbolic link (refused: give the file itself)"
                               : strerror(errno));
        return -1;
    }
    return 0;
}

void xd_log_reopen(void)
{
    int fd;

    if (!lg.path[0]) {
        xd_log(XD_INFO, "SIGHUP: no --log-file to reopen");
        return;
    }
    if ((fd = open_file(lg.path)) < 0) {
        xd_log(XD_WARN, "SIGHUP: cannot reopen %s: %s; logging on to the old file", lg.path,
               errno == ELOOP ? "it is a symbolic link" : strerror(errno));
        return;
    }
    if (dup2(fd, 2) < 0)
        xd_log(XD_WARN, "SIGHUP: cannot move the log to the new %s: %s", lg.path, strerror(errno));
    close(fd);
    xd_log(XD_INFO, "SIGHUP: log file %s reopened", lg.path);
}

void xd_log(int level, const char *fmt, ...)
{
    char line[2048];
    size_t n = 0;
    va_list ap;
    int k;

    if (level > xd.log_level)
        return;
    va_start(ap, fmt);
    if (lg.syslog) {
        vsyslog(level_prio[level], fmt, ap);
        va_end(ap);
        return;
    }
    if (lg.journal) {
        k = snprintf(line, sizeof(line), "<%d>", level_prio[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        char stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        k = snprintf(line, sizeof(line), "%s.%03ldZ xichand[%d]: %s: ", stamp,
                     ts.tv_nsec / 1000000, (int)getpid(), level_names[level]);
    }
    n = k > 0 ? (size_t)k : 0;
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    line[n++] = '\n';
    /* One write: a line never interleaves with another thread's.  A log
     * that cannot be written is not worth failing over. */
    if (write(2, line, n) < 0) {
    }
}
