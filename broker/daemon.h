/*
 * daemon.h -- state shared by xichand's files (xichand.c, server.c).
 */
#ifndef XICHAN_DAEMON_H
#define XICHAN_DAEMON_H

#include <stdint.h>

#include "internal.h"

enum { XD_ERROR, XD_WARN, XD_INFO, XD_DEBUG };

struct xd {
    char ns[64], dir[400], sock_path[512], lock_path[512], seg_name[64];
    const char *pid_file;
    uint64_t size;
    uint32_t nsessions, nobjects, nbindings;
    int lock_fd;   /* flock'ed for the daemon's life */
    int ready_fd;  /* --daemon: tells the launcher our exit status, 0 = ready */
    int log_fd;    /* --log-file: becomes stderr once we serve, else -1 */
    int log_level;
    struct xichan_shm *shm;
};

extern struct xd xd;

void xd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs the event loop until SIGTERM/SIGINT; returns the exit status. */
int xd_serve(void);
/* Adopts a segment a dead daemon left: queues cleanups for dead sessions. */
int xd_adopt(void);
/* Start-up succeeded: tells a --daemon launcher, moves stderr to --log-file. */
void xd_ready(void);
/* Unlinks the segment, socket, pid and lock files. */
void xd_remove_files(void);

#endif /* XICHAN_DAEMON_H */
