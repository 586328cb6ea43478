/* Creating the files asynctrace writes (traces, exports): they hold the
 * addresses, names and arguments of someone's program, so they are made
 * 0600, never opened through a symbolic link (one planted in /tmp would
 * redirect the write), and a file another user owns is not overwritten. */
#ifndef ASYNCTRACE_UTIL_PRIVATE_FILE_H
#define ASYNCTRACE_UTIL_PRIVATE_FILE_H

#include <stdio.h>

/* A file descriptor open for writing at path, or a negative errno: -ELOOP
 * (path is a symbolic link), -EPERM (a file another user owns), or what
 * open(2) said. A regular file is truncated and made 0600; a device or
 * pipe (/dev/null, /dev/full, a FIFO) is written as it is. */
int private_file__open(const char *path);
/* The same as a stdio stream ("w"); NULL with errno set. */
FILE *private_file__fopen(const char *path);
/* Words for the errors above: "is a symbolic link (not followed)", ... */
const char *private_file__strerror(int err);

#endif
