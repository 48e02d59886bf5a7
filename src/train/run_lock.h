/* run_lock.h — one run per run directory: rank 0 holds an exclusive flock
 * on run.dir/.lock for the whole run (the kernel drops it when the process
 * dies); the file names the holder's pid and host. */
#ifndef CTRAIN_RUN_LOCK_H
#define CTRAIN_RUN_LOCK_H

#include "core/error.h"

/* Takes the lock or fails at once (CT_ERR_USAGE when another run holds it,
 * naming the file, pid and host). Returns the lock's descriptor in *fd. */
int run_lock_acquire(const char *dir, int *fd, struct ct_err *e);

/* Drops the lock (a no-op for fd < 0). */
void run_lock_release(int fd);

#endif
