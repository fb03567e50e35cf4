/*
 * paths.h -- where a namespace's files live (misc.c).
 */
#ifndef XICHAN_PATHS_H
#define XICHAN_PATHS_H

#include <stddef.h>

/* "<dir>/<ns>.sock" and "<dir>/<ns>.lock"; XICHAN_ENAMETOOLONG if they do not fit. */
int xichan__sock_path(char *buf, size_t cap, const char *dir, const char *ns);
int xichan__lock_path(char *buf, size_t cap, const char *dir, const char *ns);

#endif /* XICHAN_PATHS_H */
