/* Starting a command that runs no instruction of its own until released:
 * the child is forked and waits on a pipe before exec, so the tracer can
 * attach probes to its pid first. */
#ifndef ASYNCTRACE_UTIL_SPAWN_H
#define ASYNCTRACE_UTIL_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include <signal.h>

struct held_child {
	pid_t pid;
	struct sigaction inherited_sigchld; /* the child gets it back before exec */
	int release_fd; /* write end: one byte releases the child, closing aborts it */
	int error_fd;   /* read end: the child's exec errno, or EOF on success */
};

/* Resolves a command name like execvp does. Returns a malloc'ed path, or
 * NULL with errno set (ENOENT, EACCES). */
char *spawn_resolve_command(const char *name);
/* Forks a child that will execve(path, argv, env) once released (env NULL:
 * ours). SIGCHLD goes back to its default in the caller, so the child can
 * be waited for even when we were started with it ignored; the child gets
 * the disposition we inherited. Returns 0 or a negative errno. */
int held_child__spawn(struct held_child *child, const char *path, char *const argv[],
		      char *const env[]);
/* Lets the child exec. Returns 0, or the negative errno of a failed exec
 * (the child has then exited with 127). */
int held_child__release(struct held_child *child);
/* Aborts a child that was never released, and reaps it. */
void held_child__abort(struct held_child *child);

#endif
