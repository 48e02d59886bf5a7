#define _GNU_SOURCE
#include "train/run_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int run_lock_acquire(const char *dir, int *fd, struct ct_err *e) {
  char path[4200];
  snprintf(path, sizeof path, "%s/.lock", dir);
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (*fd < 0) return err_set(e, CT_ERR_RUNTIME, "%s: open failed: %s", path, strerror(errno));
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char holder[256] = "";
    ssize_t n = pread(*fd, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = '\0';
    holder[strcspn(holder, "\n")] = '\0';
    close(*fd);
    *fd = -1;
    if (err != EWOULDBLOCK)
      return err_set(e, CT_ERR_RUNTIME, "%s: flock failed: %s", path, strerror(err));
    return err_set(e, CT_ERR_USAGE,
                   "%s: another run holds this run.dir (%s); wait for it or set a new run.dir",
                   path, *holder ? holder : "holder unknown");
  }
  char host[256] = "?";
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
  host[sizeof host - 1] = '\0';
  char line[400];
  int len = snprintf(line, sizeof line, "pid %ld on host %s\n", (long)getpid(), host);
  if (ftruncate(*fd, 0) != 0 || pwrite(*fd, line, (size_t)len, 0) != len) {
    int err = errno;
    close(*fd);
    *fd = -1;
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot write the holder: %s", path, strerror(err));
  }
  return CT_OK;
}

void run_lock_release(int fd) {
  if (fd >= 0) close(fd);
}
