/*
 * proto.h -- the control protocol between a client and xichand.
 *
 * Transport: a SOCK_SEQPACKET Unix socket at <runtime_dir>/<namespace>.sock,
 * so each message arrives whole or not at all.  One connection per session,
 * kept open for the session's whole life: its EOF is the session's death
 * notice.  The data plane never uses this socket.
 *
 *   client                           daemon
 *   HELLO  ------------------------>  checks the peer (SO_PEERCRED and its
 *                                     groups, broker/access.c: a refused one
 *                                     gets WELCOME with XICHAN_EACCES and a
 *                                     message naming namespace, uid and
 *                                     group, then EOF), protocol and layout
 *                                     hash; claims a session slot
 *          <------------------------  WELCOME (status 0: sid, slot, segment)
 *   ... works on the segment directly ...
 *   BYE    ------------------------>  releases the session's state (the
 *                                     UNBIND flag: and applies the unbound
 *                                     ops to the items it put)
 *          <------------------------  BYE_ACK
 *   close
 *
 * WELCOME's seg_name is authoritative: it embeds the daemon's uid, which is
 * not the client's when a group shares the namespace.
 *
 * A client that dies skips BYE: the daemon sees EOF (or the pidfd of the
 * peer process becoming readable) and does the same cleanup as for a BYE
 * without UNBIND: the items the session put stay deliverable.
 *
 * If the daemon dies, clients keep working on the segment; a new daemon
 * adopts it and watches the old sessions' processes through pidfds.  A
 * client that then closes its session finds its connection dead, and
 * reconnects with HELLO carrying reattach_sid/slot: the daemon checks that
 * the slot still holds that live session of that very process, and treats
 * the new connection as the session's own (so BYE and BYE_ACK work).
 *
 * Every field is fixed-size and native-endian (client and daemon share a
 * machine).  The daemon checks the length of every message it reads.
 */
#ifndef XICHAN_PROTO_H
#define XICHAN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define XICHAN_PROTO_MAGIC 0x58434831u /* "XCH1" */
#define XICHAN_PROTO_VERSION 1u

enum xichan_msg_type {
    XICHAN_MSG_HELLO = 1,
    XICHAN_MSG_WELCOME = 2,
    XICHAN_MSG_BYE = 3,
    XICHAN_MSG_BYE_ACK = 4,
};

struct xichan_msg_hello {
    uint32_t magic;
    uint32_t type;          /* XICHAN_MSG_HELLO */
    uint32_t version;       /* XICHAN_PROTO_VERSION */
    uint32_t layout_hash;   /* xichan__layout_hash() of the client */
    uint32_t pid;
    uint32_t reattach_sid;  /* 0, or the session this process had with a daemon that died */
    uint32_t reattach_slot;
    uint32_t reserved;
    char kind[16];          /* NUL-terminated label */
};

struct xichan_msg_welcome {
    uint32_t magic;
    uint32_t type;          /* XICHAN_MSG_WELCOME */
    int32_t status;         /* 0 or a XICHAN_E* code; then message says why */
    uint32_t sid;
    uint32_t slot;
    uint32_t layout_hash;
    uint64_t seg_size;
    char seg_name[64];      /* shm_open name */
    char message[160];
};

/* BYE flags. */
#define XICHAN_BYE_UNBIND 1u /* apply the unbound ops (xichan_client_close_unbind) */

struct xichan_msg_bye {
    uint32_t magic;
    uint32_t type;          /* XICHAN_MSG_BYE or XICHAN_MSG_BYE_ACK */
    int32_t status;
    uint32_t flags;         /* BYE: XICHAN_BYE_*; unknown bits are ignored */
};

/* Check untrusted bytes (proto.c): 0, XICHAN_EINVAL or XICHAN_EVERSION. */
int xichan__proto_hello(const void *buf, size_t n, struct xichan_msg_hello *out);
/* 0 and the BYE's flags in *flags, or XICHAN_EINVAL. */
int xichan__proto_bye(const void *buf, size_t n, uint32_t *flags);

#endif /* XICHAN_PROTO_H */
