#include "util/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int is_executable_file(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	if (!S_ISREG(st.st_mode)) {
		errno = EACCES;
		return 0;
	}
	return access(path, X_OK) == 0;
}

char *spawn_resolve_command(const char *name)
{
	const char *path_env = getenv("PATH");
	char *candidate;

	if (strchr(name, '/')) {
		if (!is_executable_file(name))
			return NULL;
		return realpath(name, NULL);
	}
	if (!path_env || !*path_env)
		path_env = "/usr/local/bin:/usr/bin:/bin";
	for (const char *dir = path_env; dir; dir = strchr(dir, ':') ? strchr(dir, ':') + 1 : NULL) {
		size_t len = strcspn(dir, ":");

		if (asprintf(&candidate, "%.*s/%s", (int)len, len ? dir : ".", name) < 0)
			return NULL;
		if (is_executable_file(candidate)) {
			char *resolved = realpath(candidate, NULL);

			free(candidate);
			return resolved;
		}
		free(candidate);
	}
	errno = ENOENT;
	return NULL;
}

static void run_child(int release_read, int error_write, const char *path, char *const argv[],
		      char *const env[], const struct sigaction *sigchld)
{
	char go;
	int err;

	sigaction(SIGCHLD, sigchld, NULL);
	/* EOF instead of the release byte: the tracer gave up, exit unexecuted. */
	if (read(release_read, &go, 1) != 1)
		_exit(127);
	close(release_read);
	execve(path, argv, env ? env : environ);
	err = errno;
	if (write(error_write, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

int held_child__spawn(struct held_child *child, const char *path, char *const argv[],
		      char *const env[])
{
	int release_pipe[2], error_pipe[2];
	pid_t pid;

	if (pipe2(release_pipe, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(error_pipe, O_CLOEXEC) < 0) {
		int err = -errno;

		close(release_pipe[0]);
		close(release_pipe[1]);
		return err;
	}
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	/* Ignored SIGCHLD would reap the child behind our back (its status lost). */
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &child->inherited_sigchld);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(release_pipe[0]), close(release_pipe[1]);
		close(error_pipe[0]), close(error_pipe[1]);
		return err;
	}
	if (pid == 0) {
		close(release_pipe[1]);
		close(error_pipe[0]);
		run_child(release_pipe[0], error_pipe[1], path, argv, env, &child->inherited_sigchld);
	}
	close(release_pipe[0]);
	close(error_pipe[1]);
	child->pid = pid;
	child->release_fd = release_pipe[1];
	child->error_fd = error_pipe[0];
	return 0;
}

int held_child__release(struct held_child *child)
{
	int exec_errno = 0;
	ssize_t got;

	if (write(child->release_fd, "x", 1) != 1)
		return -errno;
	close(child->release_fd);
	child->release_fd = -1;
	/* The error pipe closes on a successful exec (O_CLOEXEC). */
	do
		got = read(child->error_fd, &exec_errno, sizeof(exec_errno));
	while (got < 0 && errno == EINTR);
	close(child->error_fd);
	child->error_fd = -1;
	return got == sizeof(exec_errno) ? -exec_errno : 0;
}

void held_child__abort(struct held_child *child)
{
	if (child->release_fd >= 0)
		close(child->release_fd);
	if (child->error_fd >= 0)
		close(child->error_fd);
	child->release_fd = child->error_fd = -1;
	if (child->pid > 0)
		waitpid(child->pid, NULL, 0);
	child->pid = 0;
}
