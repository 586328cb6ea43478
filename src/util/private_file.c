/* See private_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/private_file.h"

int private_file__open(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (st.st_uid != geteuid()) {
		/* O_TRUNC was not given: nothing of theirs has changed */
		close(fd);
		return -EPERM;
	}
	if (S_ISREG(st.st_mode) && (ftruncate(fd, 0) < 0 || fchmod(fd, 0600) < 0))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

FILE *private_file__fopen(const char *path)
{
	int fd = private_file__open(path);
	FILE *f;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	if (!(f = fdopen(fd, "w"))) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return f;
}

const char *private_file__strerror(int err)
{
	if (err == -ELOOP)
		return "is a symbolic link (not followed: write to the file itself)";
	if (err == -EPERM)
		return "belongs to another user (not overwritten)";
	return strerror(-err);
}
