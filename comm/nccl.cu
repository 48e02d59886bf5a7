/* nccl.cu — NCCL start-up (the unique id over comm_bcast) and the collectives of comm/nccl.h,
 * every call checked. Compiled into the CUDA backend: by nvcc against
 * nccl.h, and as host C++ in the SIMT emulator against its NCCL shim. */
#include "comm/nccl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda/cuda_compat.cuh"
#ifdef __CUDACC__
#include <nccl.h>
#else
#include "kernels/cuda/emu/nccl_emu.h"
#endif

extern "C" {
#include "core/log.h"
}

/* One NCCL comm with a stream and events of its own. Two of them, so that
 * sync BN's sums, issued inside forward and backward, are not queued on the
 * GPU behind the gradient buckets issued before them. */
struct lane {
  ncclComm_t comm;
  cudaStream_t stream; /* every collective of this lane, in issue order */
  cudaEvent_t issued;  /* recorded on compute: the work a collective waits for */
  cudaEvent_t done;    /* recorded on stream: the collectives compute waits for */
  cudaEvent_t checked; /* recorded on stream: the collectives nccl_comm_check waits for */
  const char *last;    /* the call issued last, for a timeout's message */
};

struct nccl_comm {
  const struct comm *c;
  cudaStream_t compute; /* the backend's stream (nccl_comm_create) */
  double timeout_s;     /* comm_timeout(c): run.comm_timeout_s */
  struct lane grads;    /* the gradient buckets and the broadcasts */
  struct lane bn;       /* sync BN's sums */
};

static int nccl_fail(struct ct_err *e, ncclResult_t rc, ncclComm_t comm, const char *call,
                     const char *file, int line) {
  const char *detail = ncclGetLastError(comm);
  return err_set(e, CT_ERR_RUNTIME, "%s failed at %s:%d: %s%s%s%s", call, file, line,
                 ncclGetErrorString(rc), detail && detail[0] ? " (" : "", detail ? detail : "",
                 detail && detail[0] ? ")" : "");
}

static int cuda_fail(struct ct_err *e, cudaError_t rc, const char *call, const char *file,
                     int line) {
  err_set(e, CT_ERR_RUNTIME, "%s failed at %s:%d: %s (%s, %d)", call, file, line,
          cudaGetErrorString(rc), cudaGetErrorName(rc), (int)rc);
  cudaGetLastError(); /* clear it: the caller reports and decides */
  return e->code;
}

#define NCCL_TRY(comm, call)                                                                       \
  do {                                                                                             \
    ncclResult_t rc_ = (call);                                                                     \
    if (rc_ != ncclSuccess) return nccl_fail(e, rc_, (comm), #call, __FILE__, __LINE__);           \
  } while (0)
#define CUDA_TRY(call)                                                                             \
  do {                                                                                             \
    cudaError_t rc_ = (call);                                                                      \
    if (rc_ != cudaSuccess) return cuda_fail(e, rc_, #call, __FILE__, __LINE__);                   \
  } while (0)
/* The calls on a nonblocking comm (ncclCommInitRankConfig, blocking = 0)
 * may answer ncclInProgress: the call goes on in NCCL's threads, and the
 * comm takes no other call until ncclCommGetAsyncError stops reporting it
 * (settle). */
#define LANE_TRY(n, l, call)                                                                       \
  do {                                                                                             \
    ncclResult_t rc_ = (call);                                                                     \
    if (rc_ == ncclInProgress && settle((n), (l), e)) return e->code;                              \
    if (rc_ != ncclSuccess && rc_ != ncclInProgress)                                               \
      return nccl_fail(e, rc_, (l)->comm, #call, __FILE__, __LINE__);                              \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The pause before the next poll: 1% of the wait so far (a wait that ends
 * costs about 1% more), from 10 us to 1 ms (a long one costs no core). */
static void pause_for(double waited) {
  long ns = (long)(waited * 1e7);
  ns = ns < 10000 ? 10000 : ns > 1000000 ? 1000000 : ns;
  struct timespec ts = {0, ns};
  nanosleep(&ts, NULL);
}

/* Nothing either comm issued can finish any more: abort both, so their
 * kernels stop and the compute stream waiting on them is released (a lane
 * left alone would hang at its next wait on the peers that are gone). A
 * nonblocking comm may finish its abort in NCCL's threads (ncclInProgress);
 * the handle is NCCL's from the call on either way. */
static void abort_all(struct nccl_comm *n) {
  struct lane *lanes[] = {&n->grads, &n->bn};
  for (struct lane *l : lanes) {
    if (!l->comm) continue;
    ncclResult_t rc = ncclCommAbort(l->comm);
    l->comm = NULL;
    if (rc != ncclSuccess && rc != ncclInProgress)
      log_error("ncclCommAbort failed at %s:%d: %s", __FILE__, __LINE__, ncclGetErrorString(rc));
  }
}

static int timed_out(struct nccl_comm *n, const char *what, double waited, struct ct_err *e) {
  abort_all(n);
  return err_set(e, CT_ERR_RUNTIME,
                 "rank %d: %s waited %.0f s for the other ranks; NCCL comms aborted, ending the "
                 "job (run.comm_timeout_s)",
                 n->c->rank, what, waited);
}

static int lane_failed(struct nccl_comm *n, struct lane *l, ncclResult_t async, struct ct_err *e) {
  err_set(e, CT_ERR_RUNTIME,
          "rank %d: the NCCL comm failed (the call issued last on it: %s): %s (%s); NCCL comms "
          "aborted",
          n->c->rank, l->last, ncclGetErrorString(async), ncclGetLastError(l->comm));
  abort_all(n);
  return e->code;
}

/* Polls l's comm until its last call is no longer in progress, with the
 * deadline: what that call waits for can be the other ranks (the
 * rendezvous of ncclCommInitRank, the connections of a first collective). */
static int settle(struct nccl_comm *n, struct lane *l, struct ct_err *e) {
  const double start = now_s();
  for (;;) {
    ncclResult_t async = ncclSuccess;
    NCCL_TRY(l->comm, ncclCommGetAsyncError(l->comm, &async));
    if (async == ncclSuccess) return CT_OK;
    if (async != ncclInProgress) return lane_failed(n, l, async, e);
    double waited = now_s() - start;
    if (waited > n->timeout_s) return timed_out(n, l->last, waited, e);
    pause_for(waited);
  }
}

/* Collectives issued next on l's stream wait for the compute work issued
 * so far. Every collective starts here, so an aborted comm stops here,
 * naming why. */
static int comm_after_compute(struct nccl_comm *n, struct lane *l, const char *what,
                              struct ct_err *e) {
  if (!l->comm)
    return err_set(e, CT_ERR_RUNTIME,
                   "rank %d: %s on an NCCL comm aborted after an earlier failure", n->c->rank,
                   what);
  l->last = what;
  CUDA_TRY(cudaEventRecord(l->issued, n->compute));
  CUDA_TRY(cudaStreamWaitEvent(l->stream, l->issued, 0));
  return CT_OK;
}

/* Compute work issued next waits for the collectives issued so far on l. */
static int compute_after_comm(struct nccl_comm *n, struct lane *l, struct ct_err *e) {
  CUDA_TRY(cudaEventRecord(l->done, l->stream));
  CUDA_TRY(cudaStreamWaitEvent(n->compute, l->done, 0));
  return CT_OK;
}

/* The ids of the two comms, made on rank 0. */
struct ids {
  ncclUniqueId grads, bn;
};

static int make_ids(struct ids *ids, struct ct_err *e) {
  NCCL_TRY(NULL, ncclGetUniqueId(&ids->grads));
  NCCL_TRY(NULL, ncclGetUniqueId(&ids->bn));
  return CT_OK;
}

/* The greatest priority for both lanes: a collective the other ranks wait
 * for goes ahead of this rank's queued compute. */
static int lane_cuda(struct lane *l, struct ct_err *e) {
  int least, greatest;
  CUDA_TRY(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  CUDA_TRY(cudaStreamCreateWithPriority(&l->stream, cudaStreamNonBlocking, greatest));
  CUDA_TRY(cudaEventCreateWithFlags(&l->issued, cudaEventDisableTiming));
  CUDA_TRY(cudaEventCreateWithFlags(&l->done, cudaEventDisableTiming));
  CUDA_TRY(cudaEventCreateWithFlags(&l->checked, cudaEventDisableTiming));
  return CT_OK;
}

/* Nonblocking, so that NCCL's rendezvous goes on in its threads while
 * settle polls it with the deadline: a rank that never comes stops the
 * others after run.comm_timeout_s instead of never. */
static int lane_connect(struct nccl_comm *n, struct lane *l, const ncclUniqueId *id,
                        struct ct_err *e) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
#ifndef __CUDACC__
  /* The emulator's calls wait inside themselves: they take the deadline. */
  config.emuTimeout = n->timeout_s;
  config.emuTimeoutFrom = "run.comm_timeout_s";
#endif
  l->last = "ncclCommInitRank";
  LANE_TRY(n, l, ncclCommInitRankConfig(&l->comm, n->c->size, *id, n->c->rank, &config));
  return CT_OK;
}

static int comm_setup(struct nccl_comm *n, const struct comm *c, struct ct_err *e) {
  if (lane_cuda(&n->grads, e) || lane_cuda(&n->bn, e)) return e->code;
  /* Rank 0's outcome travels with the ids, so a failure there stops every
   * rank instead of leaving them in ncclCommInitRank. */
  struct {
    int rc;
    struct ids ids;
  } root;
  memset(&root, 0, sizeof root);
  if (c->rank == 0) root.rc = make_ids(&root.ids, e);
  if (comm_bcast(c, &root, sizeof root, 0, e)) return e->code;
  if (root.rc != CT_OK)
    return c->rank == 0 ? root.rc
                        : err_set(e, CT_ERR_RUNTIME,
                                  "rank 0 could not create the NCCL unique ids (see its message)");
  /* In the same order on every rank. A comm that failed, or whose partner
   * did, is aborted: both are live after this, or neither. */
  if (lane_connect(n, &n->grads, &root.ids.grads, e) || lane_connect(n, &n->bn, &root.ids.bn, e)) {
    abort_all(n);
    return e->code;
  }
  return CT_OK;
}

extern "C" int nccl_comm_create(struct nccl_comm **out, const struct comm *c, void *compute,
                                struct ct_err *e) {
  struct nccl_comm *n = (struct nccl_comm *)calloc(1, sizeof *n);
  if (!n) return err_set(e, CT_ERR_RUNTIME, "out of memory for the NCCL communicators");
  n->c = c;
  n->compute = (cudaStream_t)compute;
  n->timeout_s = comm_timeout(c);
  n->grads.last = n->bn.last = "none";
  if (comm_setup(n, c, e)) {
    nccl_comm_destroy(n);
    return e->code;
  }
  *out = n;
  return CT_OK;
}

/* Teardown cannot be undone: a failure is logged and the rest still freed.
 * The collectives still queued finish first (they write the graph's memory). */
static void teardown_step(int failed, const struct ct_err *e) {
  if (failed) log_error("NCCL teardown: %s", e->msg);
}

/* With live comms (both or neither, comm_setup) the wait has the timeout;
 * aborted ones' kernels have stopped. */
static int teardown_sync(struct nccl_comm *n, struct ct_err *e) {
  if (n->grads.comm) return nccl_comm_check(n, e);
  if (n->grads.stream) CUDA_TRY(cudaStreamSynchronize(n->grads.stream));
  if (n->bn.stream) CUDA_TRY(cudaStreamSynchronize(n->bn.stream));
  return CT_OK;
}

/* A nonblocking comm ends in two calls: ncclCommFinalize, which waits for
 * the node's other ranks (settle bounds it), then ncclCommDestroy, which
 * frees this rank's side alone, perhaps in NCCL's threads (ncclInProgress,
 * after which the handle is NCCL's). */
static int teardown_comm(struct nccl_comm *n, struct lane *l, struct ct_err *e) {
  if (!l->comm) return CT_OK;
  l->last = "ncclCommFinalize";
  LANE_TRY(n, l, ncclCommFinalize(l->comm));
  ncclComm_t comm = l->comm;
  l->comm = NULL;
  ncclResult_t rc = ncclCommDestroy(comm);
  if (rc != ncclSuccess && rc != ncclInProgress)
    return nccl_fail(e, rc, comm, "ncclCommDestroy(comm)", __FILE__, __LINE__);
  return CT_OK;
}

static int teardown_cuda(struct lane *l, struct ct_err *e) {
  if (l->stream) CUDA_TRY(cudaStreamDestroy(l->stream));
  if (l->issued) CUDA_TRY(cudaEventDestroy(l->issued));
  if (l->done) CUDA_TRY(cudaEventDestroy(l->done));
  if (l->checked) CUDA_TRY(cudaEventDestroy(l->checked));
  return CT_OK;
}

extern "C" void nccl_comm_destroy(struct nccl_comm *n) {
  if (!n) return;
  struct ct_err err = {};
  teardown_step(teardown_sync(n, &err), &err);
  teardown_step(teardown_comm(n, &n->grads, &err), &err);
  teardown_step(teardown_comm(n, &n->bn, &err), &err);
  teardown_step(teardown_cuda(&n->grads, &err), &err);
  teardown_step(teardown_cuda(&n->bn, &err), &err);
  free(n);
}

/* On sync BN's own lane: in backward it goes ahead of the buckets already
 * queued on the gradients' lane, which it does not depend on. */
static int reduce_sum(struct nccl_comm *n, double *buf, int count, struct ct_err *e) {
  struct lane *l = &n->bn;
  if (comm_after_compute(n, l, "ncclAllReduce (sync BN)", e)) return e->code;
  LANE_TRY(n, l, ncclAllReduce(buf, buf, (size_t)count, ncclDouble, ncclSum, l->comm, l->stream));
  return compute_after_comm(n, l, e);
}

extern "C" int nccl_bcast(struct nccl_comm *n, void *buf, size_t bytes, int root,
                          struct ct_err *e) {
  struct lane *l = &n->grads;
  if (comm_after_compute(n, l, "ncclBroadcast", e)) return e->code;
  LANE_TRY(n, l, ncclBroadcast(buf, buf, bytes, ncclUint8, root, l->comm, l->stream));
  return compute_after_comm(n, l, e);
}

extern "C" void nccl_reduce_sum_cb(void *user, double *buf, int count) {
  struct nccl_comm *n = (struct nccl_comm *)user;
  struct ct_err err = {};
  if (reduce_sum(n, buf, count, &err)) {
    log_error("sync batch norm: %s", err.msg);
    comm_abort(n->c, err.code);
  }
}

extern "C" void nccl_buckets_init(struct nccl_buckets *b, struct nccl_comm *nc, float *buf,
                                  size_t len, size_t bucket_elems) {
  memset(b, 0, sizeof *b);
  b->nc = nc;
  b->buf = buf;
  b->len = len;
  b->bucket = bucket_elems < 1 ? 1 : bucket_elems;
}

/* Issues every full bucket of [0, prefix), and the last partial one once
 * prefix is the whole buffer, after the compute work that produced them. */
static int buckets_issue(struct nccl_buckets *b, size_t prefix, struct ct_err *e) {
  struct nccl_comm *n = b->nc;
  struct lane *l = &n->grads;
  int waited = 0;
  while (prefix - b->started >= b->bucket || (prefix == b->len && b->started < b->len)) {
    size_t end = prefix - b->started >= b->bucket ? b->started + b->bucket : prefix;
    if (!waited && comm_after_compute(n, l, "ncclAllReduce (gradient mean)", e)) return e->code;
    waited = 1;
    float *p = b->buf + b->started;
    LANE_TRY(n, l, ncclAllReduce(p, p, end - b->started, ncclFloat, ncclAvg, l->comm, l->stream));
    b->started = end;
  }
  return CT_OK;
}

extern "C" void nccl_buckets_ready(void *user, size_t prefix) {
  struct nccl_buckets *b = (struct nccl_buckets *)user;
  if (!b->err.code) buckets_issue(b, prefix, &b->err);
}

extern "C" int nccl_buckets_wait(struct nccl_buckets *b, struct ct_err *e) {
  if (!b->err.code) buckets_issue(b, b->len, &b->err);
  if (b->err.code) {
    *e = b->err;
    return e->code;
  }
  b->started = 0;
  return compute_after_comm(b->nc, &b->nc->grads, e);
}

/* ---- nccl_comm_check: the host's bounded wait on both lanes ---------------------------- */
/* *done: the collectives before l->checked have finished. */
static int lane_poll(struct nccl_comm *n, struct lane *l, int *done, struct ct_err *e) {
  ncclResult_t async = ncclSuccess;
  NCCL_TRY(l->comm, ncclCommGetAsyncError(l->comm, &async));
  if (async != ncclSuccess && async != ncclInProgress) return lane_failed(n, l, async, e);
  cudaError_t q = cudaEventQuery(l->checked);
  *done = q == cudaSuccess;
  if (q == cudaErrorNotReady) {
    /* Not an error: it must not linger for the next launch check. */
    if (cudaPeekAtLastError() == cudaErrorNotReady) cudaGetLastError();
    return CT_OK;
  }
  if (q != cudaSuccess) return cuda_fail(e, q, "cudaEventQuery(l->checked)", __FILE__, __LINE__);
  return CT_OK;
}

extern "C" int nccl_comm_check(struct nccl_comm *n, struct ct_err *e) {
  if (!n->grads.comm)
    return err_set(e, CT_ERR_RUNTIME,
                   "rank %d: the NCCL comms were aborted after a failure (the collectives issued "
                   "last: %s; %s)",
                   n->c->rank, n->grads.last, n->bn.last);
  struct lane *lanes[] = {&n->grads, &n->bn};
  for (struct lane *l : lanes)
    CUDA_TRY(cudaEventRecord(l->checked, l->stream));
  const double start = now_s();
  for (;;) {
    struct lane *busy = NULL; /* the first lane still running, for the timeout's message */
    for (struct lane *l : lanes) {
      int done = 0;
      if (lane_poll(n, l, &done, e)) return e->code;
      if (!done && !busy) busy = l;
    }
    if (!busy) return CT_OK;
    double waited = now_s() - start;
    if (waited > n->timeout_s) return timed_out(n, busy->last, waited, e);
    pause_for(waited);
  }
}

extern "C" void nccl_comm_lane(const struct nccl_comm *n, enum nccl_lane which, void **comm,
                               void **stream) {
  const struct lane *l = which == NCCL_LANE_BN ? &n->bn : &n->grads;
  *comm = (void *)l->comm;
  *stream = (void *)l->stream;
}
