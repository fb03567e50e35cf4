/*
 * daemon.h -- state shared by xichand's files (xichand.c, server.c).
 */
#ifndef XICHAN_DAEMON_H
#define XICHAN_DAEMON_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "internal.h"

enum { XD_ERROR, XD_WARN, XD_INFO, XD_DEBUG };

struct xd {
    char ns[64], dir[400], sock_path[512], lock_path[512], seg_name[64];
    /* The runtime dir as checked (access.c), and its files' names in it:
     * every file there is opened, bound and removed relative to dir_fd. */
    int dir_fd;
    char sock_name[80], lock_name[80];
    int made_dir;  /* this daemon created the runtime dir (removed if start-up fails) */
    const char *pid_file;
    uint64_t size;
    uint32_t nsessions, nobjects, nbindings;
    unsigned given;    /* which of size, sessions, objects, bindings were asked for (bits 0-3) */
    int lock_fd;   /* flock'ed for the daemon's life */
    int ready_fd;  /* --daemon: tells the launcher our exit status, 0 = ready */
    int log_fd;    /* --log-file: becomes stderr once we serve, else -1 */
    int log_level;
    int grouped;   /* --group: the namespace is shared with gid */
    gid_t gid;
    char group_name[64];
    struct xichan_shm *shm;
    xichan_atomic_u32 stopping; /* set before the segment is unmapped (xichand.c) */
};

extern struct xd xd;

/* log.c: the log (its decisions are at its top). */
void xd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "error" | "warn" | "info" | "debug" -> XD_*, or -1. */
int xd_log_level(const char *s);
/* Chooses the sink: --log-file (opened now into xd.log_fd), --syslog, or
 * stderr (timestamped, or journal prefixes); 0, or -1 after saying why. */
int xd_log_init(const char *file, int use_syslog);
/* SIGHUP: opens the --log-file path again and makes it fd 2. */
void xd_log_reopen(void);
/* sd_notify(3) to the service manager, if one asked ($NOTIFY_SOCKET). */
void xd_notify(const char *state);
/* Runs the event loop until SIGTERM/SIGINT; returns the exit status. */
int xd_serve(void);
/* Adopts a segment a dead daemon left: queues cleanups for dead sessions. */
int xd_adopt(void);
/* Start-up succeeded: tells a --daemon launcher, moves stderr to --log-file. */
void xd_ready(void);
/* Unlinks the socket, pid and lock files; unmaps (and so lets go of) the
 * segment, which stays. */
void xd_remove_files(void);

/* access.c: who may use the namespace (the decisions are at its top). */
/* --group G (name or gid; NULL or "" for none): 0, -2 no such group, -1 not a member. */
int xd_access_init(const char *group);
/* Creates or checks the runtime dir, and gives it to the group if any: the
 * descriptor it checked (O_NOFOLLOW, kept for openat), or -1 (logged). */
int xd_prepare_dir(const char *dir);
/* The umask to bind the socket under: it is born 0600. */
mode_t xd_socket_umask(void);
/* The socket's final group and mode (0600, or 0660 with the group), by its
 * name in xd.dir_fd; 0 or -1 with errno. */
int xd_share_socket(const char *name);
/* Checks the segment is ours and gives it its mode and group; 0 or -1 (printed). */
int xd_share_segment(void);
/* 1 if the peer may have a session; else 0 and why says so in full. */
int xd_peer_allowed(int fd, const struct ucred *cred, char *why, size_t cap);

#endif /* XICHAN_DAEMON_H */
