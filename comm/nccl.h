/* nccl.h — collectives on the CUDA backend's device memory, through NCCL.
 * Built into the CUDA backend only (comm/nccl.cu: under nvcc with the real
 * NCCL; in the SIMT emulator with kernels/cuda/emu/nccl_emu.h, NCCL over
 * shared memory on host memory); the trainer uses it under CTRAIN_HAVE_NCCL.
 *
 * Streams: the backend runs every op on one compute stream
 * (cuda_backend_stream of its table). The NCCL comm owns a second stream and issues
 * every collective there, in the order the host calls, which is the same on
 * every rank: a collective first waits (cudaEventRecord on the compute
 * stream, cudaStreamWaitEvent on the comm stream) for the compute work
 * issued before the call, and compute work that needs its result waits for
 * the comm stream the same way. The host never blocks on either, except
 * in nccl_comm_check and at teardown, and those waits have a deadline.
 * The comm stream has the greatest priority, so a collective other ranks
 * wait for is not queued behind this rank's compute.
 *
 * Timeout: a collective whose peers stop answering spins on the device for
 * ever, and so would the host at its next download. nccl_comm_check, which
 * the trainer calls before each host synchronisation, polls the comm
 * stream's progress and ncclCommGetAsyncError; after comm_timeout(c)
 * seconds (run.comm_timeout_s) or on an asynchronous error it aborts the
 * comm (ncclCommAbort) and fails naming the rank and the collective. In the
 * emulator, where a collective completes inside the call, the comm's wait
 * itself has that timeout (ncclEmuCommSetTimeout).
 *
 * Errors: every NCCL and CUDA call is checked; a failure names the
 * call, the file and the line. */
#ifndef CTRAIN_NCCL_H
#define CTRAIN_NCCL_H

#include <stddef.h>

#ifdef __cplusplus
/* comm.h and error.h are C17; from C++ (comm/nccl.cu, the emulator's tests)
 * they need C linkage, and _Noreturn is [[noreturn]]. */
#define _Noreturn [[noreturn]]
extern "C" {
#endif

#include "comm/comm.h"
#include "core/error.h"

struct nccl_comm; /* ncclComm_t, the comm stream, its events */

/* Collective over c's ranks, after the device is chosen (comm/device.h):
 * rank 0 calls ncclGetUniqueId, comm_bcast hands the id to every rank, each
 * calls ncclCommInitRank(c->size, id, c->rank). `compute` is the backend's
 * stream (cuda_backend_stream), the one the collectives are ordered
 * against. */
int nccl_comm_create(struct nccl_comm **out, const struct comm *c, void *compute, struct ct_err *e);
void nccl_comm_destroy(struct nccl_comm *n);

/* Waits until every collective issued so far has finished: CT_OK, or an
 * error past the timeout or on an asynchronous NCCL error, after which the
 * comm is aborted (every later call on it fails; destroy still frees). */
int nccl_comm_check(struct nccl_comm *n, struct ct_err *e);

/* The sync-BN reduction as the kernels' ops_ctx.reduce_sum callback on
 * device memory: `user` is the struct nccl_comm, `buf` n device doubles,
 * summed in place (ncclSum) in stream order: after the compute work issued
 * before, before the compute work issued after. A failure aborts every
 * rank, as comm_reduce_sum_cb does. */
void nccl_reduce_sum_cb(void *user, double *buf, int n);

/* `bytes` of device memory from rank `root` to every rank (ncclBroadcast,
 * in place), in stream order like the rest: for the parameters, optimizer
 * state and buffers a resume or an evaluation hands out from rank 0. */
int nccl_bcast(struct nccl_comm *n, void *buf, size_t bytes, int root, struct ct_err *e);

/* Bucketed gradient mean (ncclAvg) over the flat device buffer buf (len
 * floats): as backward reports that the prefix [0, k) is final, every full
 * bucket of it is all-reduced on the comm stream, overlapping the rest of
 * backward; nccl_buckets_wait issues the rest and makes the compute stream
 * (the optimizer) wait for all of it. With bucket_elems >= len it is one
 * all-reduce after backward. Nothing is allocated. */
struct nccl_buckets {
  struct nccl_comm *nc;
  float *buf;
  size_t len, bucket, started;
  struct ct_err err; /* the first failure inside a backward hook */
};

void nccl_buckets_init(struct nccl_buckets *b, struct nccl_comm *nc, float *buf, size_t len,
                       size_t bucket_elems);
/* The graph's backward hook: `user` is the struct nccl_buckets. */
void nccl_buckets_ready(void *user, size_t prefix);
int nccl_buckets_wait(struct nccl_buckets *b, struct ct_err *e);

#ifdef __cplusplus
}
#undef _Noreturn
#endif
#endif
