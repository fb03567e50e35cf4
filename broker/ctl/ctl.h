/*
 * ctl.h -- what xichanctl's files share: broker/xichanctl.c (options,
 * help, dispatch) and the command files in broker/ctl/, linked into xichanctl
 * only (xichanctl_SRCS in the Makefile).
 *
 *   util.c      exit codes, error messages, naming objects, JSON strings
 *   inspect.c   list, show, stats, sessions, watch
 *   items.c     create, destroy, put, get
 *   peek.c      peek, purge
 *   metrics.c   metrics (Prometheus text format)
 *   codec.c     JSON text -> msgpack (put --format json); items -> text
 *   cleanup.c   cleanup (gc): stale segments and runtime files
 *   stop.c      stop (keeps the namespace), stop --discard (removes it)
 *
 * Every command returns an exit status (CTL_*), having said on stderr what
 * went wrong and what to do about it.
 */
#ifndef XICHAN_CTL_H
#define XICHAN_CTL_H

#include <stdint.h>
#include <stdio.h>

#include "internal.h"

/* Exit statuses (man/xichanctl.1, EXIT STATUS). */
enum {
    CTL_OK = 0,
    CTL_EUSAGE = 1,    /* bad command line, bad value, bad JSON */
    CTL_ENODAEMON = 2, /* no daemon, or cannot attach */
    CTL_ENOTFOUND = 3, /* no such queue or channel */
    CTL_EEMPTY = 4,    /* nothing to get, not taken in time, interrupted */
    CTL_EFAIL = 5,     /* anything else */
};

/* put --format */
enum { CTL_FMT_STR = 1, CTL_FMT_BYTES, CTL_FMT_JSON };

/* Command options (after the command); which apply is per command. */
struct ctl_args {
    const char *objname;   /* create --name */
    int64_t maxsize;       /* create --maxsize; 0: unbounded */
    int unboundop;         /* --unbound; 0: the object's default */
    int kind;              /* --kind; 0: either */
    int format;            /* put --format */
    double timeout;        /* --timeout seconds; < 0: not given */
    double interval;       /* watch, stats --interval */
    int interval_given;    /* --interval was on the command line */
    long count;            /* watch --count (0: forever), peek --count (0: 10) */
    const char *output;    /* metrics --output FILE */
    int yes, nowait, wait, raw;
    int discard, force;    /* stop --discard [--force] */
    int npos;              /* positional arguments after the command */
    char **pos;
};

struct ctl {
    xichan_client *cl;     /* NULL for commands that need no daemon */
    xichan_client_opts co; /* namespace and runtime dir, as given */
    int json;
    const char *cmd;       /* the command's name, for messages */
    struct ctl_args a;
};

/* ------------------------------------------------------------ util.c */

/* Set from SIGINT/SIGTERM while a command waits (ctl_catch_signals). */
extern volatile int ctl_interrupted;
/* Makes SIGINT/SIGTERM end waits (XICHAN_EINTR) instead of the process. */
void ctl_catch_signals(struct ctl *c);

/* The exit status that fits a XICHAN_E* code. */
int ctl_exit_for(int err);
/* Prints "xichanctl CMD: <message>[: <xichan_strerror(err)>]" and returns
 * ctl_exit_for(err) (CTL_EFAIL for err 0). */
int ctl_fail(struct ctl *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a usage error: returns CTL_EUSAGE and points at the help. */
int ctl_usage(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *ctl_kind_name(int kind);
const char *ctl_state_name(int state);
const char *ctl_op_name(int op);
/* "replace" | "error" | "remove" -> XICHAN_UNBOUND_*, or 0. */
int ctl_parse_op(const char *s);

/* One object named on the command line. */
struct ctl_ref {
    int kind;
    uint64_t id;
    xichan_obj_info info;
};

/*
 * Finds the objects ARG names: q:N or c:N (that kind, by id), a number
 * (by id, either kind; by name if no id matches), else a name.  kind (from
 * --kind) restricts the search.  Fills up to cap refs and returns how many
 * matched, or a negative XICHAN_E* code.
 */
int ctl_find(struct ctl *c, const char *arg, int kind, struct ctl_ref *out, int cap);
/* Exactly one object: CTL_OK, or an exit status after saying why. */
int ctl_resolve(struct ctl *c, const char *arg, struct ctl_ref *out);
/* "queue 3 'jobs'" into buf. */
const char *ctl_describe(const struct ctl_ref *r, char *buf, size_t cap);

/* s[0..len) as a JSON string; invalid UTF-8 becomes U+FFFD. */
void ctl_json_strn(FILE *f, const char *s, size_t len);
/*
 * s made safe to print on a terminal, into buf: valid UTF-8 text stays as
 * it is; control characters (C0, DEL, C1), backslashes and bytes that are
 * not UTF-8 become \xNN (\u0080..\u009f for C1).  Everything xichanctl
 * prints as text from the segment (names, session kinds) goes through it.
 */
const char *ctl_esc(const char *s, char *buf, size_t cap);
void ctl_json_str(FILE *f, const char *s);
/* CLOCK_REALTIME ns as "2026-11-22T20:01:02Z" (utc) or local "2026-11-22 21:01:02". */
const char *ctl_time_str(uint64_t ns, int utc, char *buf, size_t cap);
/* 3725 s as "1h02m05s". */
const char *ctl_duration_str(double s, char *buf, size_t cap);

/* ---------------------------------------------------------- codec.c */

/* The deepest JSON nesting put accepts: what msgpack-c's unpacker (and so
 * every C and Python reader) can read back. */
#define CTL_JSON_MAX_DEPTH 32

#if defined(MSGPACK_SBUFFER_H)
/* Packs one JSON value; XICHAN_EINVAL with a message in err on bad JSON. */
int ctl_json_pack(const char *text, size_t len, msgpack_packer *pk, char *err, size_t errcap);
#endif
/* 1 if s[0..len) is valid UTF-8. */
int ctl_utf8_valid(const char *s, size_t len);
/*
 * Prints one item on stdout: in --json mode as an object with its
 * metadata; with --raw the bare bytes of a str, bytes or raw item; else as
 * JSON-like text.  index < 0: a received item (get), whose in-flight
 * references are given back; else a peeked copy, printed with its index
 * and leaving the references to the queued item.  Returns CTL_OK or an
 * exit status.
 */
int ctl_print_item(struct ctl *c, const struct ctl_ref *r, xichan_item *item, long index);

/* ------------------------------------------------------- commands */

int ctl_cmd_list(struct ctl *c);
int ctl_cmd_show(struct ctl *c);
int ctl_cmd_stats(struct ctl *c);
int ctl_cmd_sessions(struct ctl *c);
int ctl_cmd_watch(struct ctl *c);
/* create's checks of its command line, made before attaching. */
int ctl_check_create(struct ctl *c);
int ctl_cmd_create(struct ctl *c);
int ctl_cmd_destroy(struct ctl *c);
int ctl_cmd_put(struct ctl *c);
int ctl_cmd_get(struct ctl *c);
int ctl_cmd_cleanup(struct ctl *c);
int ctl_cmd_peek(struct ctl *c);
int ctl_cmd_purge(struct ctl *c);
/* metrics' check: no --json. */
int ctl_check_metrics(struct ctl *c);
int ctl_cmd_metrics(struct ctl *c);
int ctl_cmd_stop(struct ctl *c);


/* ----------------------------------------------------------- bridge.c */

/* What the state file of xichan-bridge says (bridge/status.c). */
#define CTL_BRIDGE_MAXQ 64
struct ctl_bridge_q {
    char name[64], stream[96];
    int64_t maxsize;
    uint64_t out, in, dups_out, dups_in, refused, unbound, full_waits;
    int held, pending_acks;
};
struct ctl_bridge {
    int present, running, pid, connected, nq;
    char state[16], server[256], last_error[256];
    int64_t max_payload;
    struct ctl_bridge_q q[CTL_BRIDGE_MAXQ];
};
/* 1 if the namespace has a bridge state file (read into *b), else 0. */
int ctl_bridge_load(struct ctl *c, struct ctl_bridge *b);
/* The spanned queue of that name if a running bridge spans it, else NULL. */
const struct ctl_bridge_q *ctl_bridge_find(const struct ctl_bridge *b, const char *name);
/* The bridge's lines (text), or ,"bridge":{...} (JSON); nothing without one. */
void ctl_bridge_print(struct ctl *c, const struct ctl_bridge *b);
/* show's line for a queue (text), or ,"spanned":{...}|null (JSON). */
void ctl_bridge_print_q(struct ctl *c, const struct ctl_bridge_q *q);

#endif /* XICHAN_CTL_H */
