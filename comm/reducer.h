/* reducer.h — what a training run sends between ranks, through one object
 * chosen once: the gradient mean (bucketed from the graph's backward hook,
 * or one all-reduce after backward), sync BN's sums, and broadcasts of
 * backend memory from rank 0. Two paths: NCCL on device memory (the cuda
 * backend over more than one rank, in a build with it, unless
 * run.collectives = mpi), else MPI through a host copy (none on a backend
 * whose memory is the host's). On one rank every call is a no-op. */
#ifndef CTRAIN_REDUCER_H
#define CTRAIN_REDUCER_H

#include <stddef.h>

#include "comm/comm.h"
#include "comm/nccl.h"
#include "core/error.h"
#include "kernels/ops.h"

struct reducer {
  const struct comm *c;
  const struct ops_backend *ops;
  int host_memory;    /* the backend's memory is the host's: no staging copy */
  float *grads;       /* the flat gradients, backend memory, len floats */
  float *host;        /* MPI: their host copy (= grads on host memory) */
  size_t len, pulled; /* bucketed MPI: floats copied to host in this backward */
  int bucketed;
  struct comm_buckets mpi;
  double *bn_host;        /* MPI path on device memory: sync BN's host copy */
  struct nccl_comm *nccl; /* NULL: the MPI path */
  struct nccl_buckets nccl_grads;
};

/* The path for run.collectives (auto|nccl|mpi) on this backend and world:
 * *on_device = 1 for NCCL (auto: cuda over more than one rank in a build
 * with NCCL), else 0 for MPI. nccl where it cannot be (another backend, a
 * build without NCCL) is a usage error. */
int reducer_choose(const char *collectives, const struct comm *c, const struct ops_backend *ops,
                   int *on_device, struct ct_err *e);

/* on_device as reducer_choose set it. bucketed: start buckets of
 * bucket_elems floats from the backward hook (reducer_ready) instead of one
 * all-reduce in reducer_wait. */
int reducer_init(struct reducer *r, const struct comm *c, const struct ops_backend *ops,
                 int host_memory, int on_device, float *grads, size_t len, int bucketed,
                 size_t bucket_elems, struct ct_err *e);
void reducer_free(struct reducer *r);

/* The graph's backward hook when bucketed: `user` is the reducer; the
 * gradients [0, prefix) are final. */
void reducer_ready(void *user, size_t prefix);
/* After backward: the mean over ranks is in the gradients (on the device
 * path the optimizer's stream waits for it, the host does not). */
int reducer_wait(struct reducer *r, struct ct_err *e);
/* Before the host waits on the backend's stream (a download): on the NCCL
 * path, waits for the collectives issued so far with run.comm_timeout_s's
 * deadline (nccl_comm_check), since a download behind a collective whose
 * peers stopped answering would never return; an error past it. No-op on
 * the MPI path, whose waits have the deadline already (comm.c). */
int reducer_check(struct reducer *r, struct ct_err *e);
/* `bytes` of backend memory from rank 0 to every rank. */
int reducer_bcast(struct reducer *r, void *dev, size_t bytes, struct ct_err *e);
/* The ops_ctx.reduce_sum callback for sync BN over the same path; on the
 * MPI path for device memory, through a host copy of max_bytes (the most
 * a call sums: the graph's planned scratch). */
int reducer_sync_bn(struct reducer *r, size_t max_bytes, void (**fn)(void *, double *, int),
                    void **user, struct ct_err *e);
/* "no all-reduce", "blocking all-reduce", "bucketed all-reduce", with
 * " over NCCL" on the device path. */
const char *reducer_describe(const struct reducer *r);

#endif
