/* nccl.h — collectives on the CUDA backend's device memory, through NCCL.
 * Built into the CUDA backend only (comm/nccl.cu: under nvcc with the real
 * NCCL; in the SIMT emulator with kernels/cuda/emu/nccl_emu.h, NCCL over
 * shared memory on host memory); the trainer uses it under CTRAIN_HAVE_NCCL.
 *
 * Streams: the backend runs every op on one compute stream
 * (cuda_backend_stream of its table). The module holds two lanes, each an
 * NCCL comm with its own stream and events: one for the gradient buckets
 * and the broadcasts, one for sync BN's sums. BN's sums are issued inside
 * forward and backward, and with run.allreduce = bucketed backward has
 * already queued buckets when its first BN layer sums: on one stream (and
 * one comm, whose collectives run in issue order) the sum, and the compute
 * that waits for it, would wait behind every one of them. Each lane issues
 * its collectives in the order the host calls, which is the same on every
 * rank (as NCCL requires of comms used at once): a collective first waits
 * (cudaEventRecord on the compute stream, cudaStreamWaitEvent on the
 * lane's stream) for the compute work issued before the call, and compute
 * work that needs its result waits for the lane's stream the same way; the
 * lanes do not wait for each other. The host never blocks on any stream,
 * except in nccl_comm_check and at teardown, and those waits have a
 * deadline. Both lane streams have the greatest priority, so a collective
 * other ranks wait for is not queued behind this rank's compute.
 *
 * Timeout: a collective whose peers stop answering spins on the device for
 * ever, and so would the host at its next download. nccl_comm_check, which
 * the trainer calls before each host synchronisation, polls both lanes'
 * progress and ncclCommGetAsyncError; after comm_timeout(c) seconds
 * (run.comm_timeout_s) or on an asynchronous error it aborts both comms
 * (ncclCommAbort) and fails naming the rank and the collective. The comms
 * are nonblocking (ncclCommInitRankConfig, blocking = 0), so that
 * ncclCommInitRank, which waits for every rank, is polled with the same
 * deadline, and so is any call NCCL answers with ncclInProgress. In the
 * emulator, where a call completes inside itself, its wait has that
 * timeout (ncclConfig_t's emuTimeout).
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

struct nccl_comm; /* two ncclComm_t, their streams, their events */

/* Collective over c's ranks, after the device is chosen (comm/device.h):
 * rank 0 calls ncclGetUniqueId twice, comm_bcast hands the ids to every
 * rank, each initialises the two comms (the gradients', then sync BN's) of
 * c->size ranks as c->rank, each within comm_timeout(c). `compute` is the
 * backend's stream (cuda_backend_stream), the one the collectives are
 * ordered against. */
int nccl_comm_create(struct nccl_comm **out, const struct comm *c, void *compute, struct ct_err *e);
void nccl_comm_destroy(struct nccl_comm *n);

/* Waits until every collective issued so far, on both lanes, has finished:
 * CT_OK, or an error past the timeout or on an asynchronous NCCL error,
 * after which both comms are aborted (every later call fails; destroy
 * still frees). */
int nccl_comm_check(struct nccl_comm *n, struct ct_err *e);

/* The sync-BN reduction as the kernels' ops_ctx.reduce_sum callback on
 * device memory: `user` is the struct nccl_comm, `buf` n device doubles,
 * summed in place (ncclSum) on the BN lane in stream order: after the
 * compute work issued before, before the compute work issued after, and
 * never behind a gradient bucket. A failure aborts every rank, as
 * comm_reduce_sum_cb does. */
void nccl_reduce_sum_cb(void *user, double *buf, int n);

/* `bytes` of device memory from rank `root` to every rank (ncclBroadcast,
 * in place), in stream order like the rest: for the parameters, optimizer
 * state and buffers a resume or an evaluation hands out from rank 0. */
int nccl_bcast(struct nccl_comm *n, void *buf, size_t bytes, int root, struct ct_err *e);

/* Bucketed gradient mean (ncclAvg) over the flat device buffer buf (len
 * floats): as backward reports that the prefix [0, k) is final, every full
 * bucket of it is all-reduced on the gradients' lane, overlapping the rest of
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

/* The NCCL comm (ncclComm_t) and stream (cudaStream_t) a lane issues on,
 * for the tests, which check that sync BN's are not the buckets'. */
enum nccl_lane { NCCL_LANE_GRADS, NCCL_LANE_BN };
void nccl_comm_lane(const struct nccl_comm *n, enum nccl_lane which, void **comm, void **stream);

#ifdef __cplusplus
}
#undef _Noreturn
#endif
#endif
