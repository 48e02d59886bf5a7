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

struct nccl_comm {
  const struct comm *c;
  ncclComm_t comm;
  cudaStream_t compute; /* the backend's stream (nccl_comm_create) */
  cudaStream_t stream;  /* every collective of this comm, in issue order */
  cudaEvent_t issued;   /* recorded on compute: the work a collective waits for */
  cudaEvent_t done;     /* recorded on stream: the collectives compute waits for */
  cudaEvent_t checked;  /* recorded on stream: the collectives nccl_comm_check waits for */
  double timeout_s;     /* comm_timeout(c): run.comm_timeout_s */
  const char *last;     /* the collective issued last, for a timeout's message */
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
/* Collectives issued next on the comm stream wait for the compute work
 * issued so far. Every collective starts here, so an aborted comm stops
 * here, naming why. */
static int comm_after_compute(struct nccl_comm *n, const char *what, struct ct_err *e) {
  if (!n->comm)
    return err_set(e, CT_ERR_RUNTIME,
                   "rank %d: %s on an NCCL comm aborted after an earlier failure", n->c->rank,
                   what);
  n->last = what;
  CUDA_TRY(cudaEventRecord(n->issued, n->compute));
  CUDA_TRY(cudaStreamWaitEvent(n->stream, n->issued, 0));
  return CT_OK;
}

/* Compute work issued next waits for the collectives issued so far. */
static int compute_after_comm(struct nccl_comm *n, struct ct_err *e) {
  CUDA_TRY(cudaEventRecord(n->done, n->stream));
  CUDA_TRY(cudaStreamWaitEvent(n->compute, n->done, 0));
  return CT_OK;
}

static int make_id(ncclUniqueId *id, struct ct_err *e) {
  NCCL_TRY(NULL, ncclGetUniqueId(id));
  return CT_OK;
}

static int comm_setup(struct nccl_comm *n, const struct comm *c, struct ct_err *e) {
  /* Rank 0's outcome travels with the id, so a failure there stops every
   * rank instead of leaving them in ncclCommInitRank. */
  struct {
    int rc;
    ncclUniqueId id;
  } root;
  memset(&root, 0, sizeof root);
  if (c->rank == 0) root.rc = make_id(&root.id, e);
  if (comm_bcast(c, &root, sizeof root, 0, e)) return e->code;
  if (root.rc != CT_OK)
    return c->rank == 0 ? root.rc
                        : err_set(e, CT_ERR_RUNTIME,
                                  "rank 0 could not create the NCCL unique id (see its message)");
  NCCL_TRY(NULL, ncclCommInitRank(&n->comm, c->size, root.id, c->rank));
#ifndef __CUDACC__
  /* The emulator's collectives wait inside the call: they take the timeout. */
  NCCL_TRY(n->comm, ncclEmuCommSetTimeout(n->comm, n->timeout_s, "run.comm_timeout_s"));
#endif
  /* The greatest priority: a collective the other ranks wait for goes ahead
   * of this rank's queued compute. */
  int least, greatest;
  CUDA_TRY(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  CUDA_TRY(cudaStreamCreateWithPriority(&n->stream, cudaStreamNonBlocking, greatest));
  CUDA_TRY(cudaEventCreateWithFlags(&n->issued, cudaEventDisableTiming));
  CUDA_TRY(cudaEventCreateWithFlags(&n->done, cudaEventDisableTiming));
  CUDA_TRY(cudaEventCreateWithFlags(&n->checked, cudaEventDisableTiming));
  return CT_OK;
}

extern "C" int nccl_comm_create(struct nccl_comm **out, const struct comm *c, void *compute,
                                struct ct_err *e) {
  struct nccl_comm *n = (struct nccl_comm *)calloc(1, sizeof *n);
  if (!n) return err_set(e, CT_ERR_RUNTIME, "out of memory for the NCCL communicator");
  n->c = c;
  n->compute = (cudaStream_t)compute;
  n->timeout_s = comm_timeout(c);
  n->last = "none";
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

/* With a live comm the wait has the timeout; an aborted one's kernels
 * have stopped. */
static int teardown_sync(struct nccl_comm *n, struct ct_err *e) {
  if (n->comm) return nccl_comm_check(n, e);
  CUDA_TRY(cudaStreamSynchronize(n->stream));
  return CT_OK;
}

static int teardown_comm(struct nccl_comm *n, struct ct_err *e) {
  NCCL_TRY(n->comm, ncclCommDestroy(n->comm));
  return CT_OK;
}

static int teardown_cuda(struct nccl_comm *n, struct ct_err *e) {
  if (n->stream) CUDA_TRY(cudaStreamDestroy(n->stream));
  if (n->issued) CUDA_TRY(cudaEventDestroy(n->issued));
  if (n->done) CUDA_TRY(cudaEventDestroy(n->done));
  if (n->checked) CUDA_TRY(cudaEventDestroy(n->checked));
  return CT_OK;
}

extern "C" void nccl_comm_destroy(struct nccl_comm *n) {
  if (!n) return;
  struct ct_err err = {};
  if (n->stream) teardown_step(teardown_sync(n, &err), &err);
  if (n->comm) teardown_step(teardown_comm(n, &err), &err);
  teardown_step(teardown_cuda(n, &err), &err);
  free(n);
}

static int reduce_sum(struct nccl_comm *n, double *buf, int count, struct ct_err *e) {
  if (comm_after_compute(n, "ncclAllReduce (sync BN)", e)) return e->code;
  NCCL_TRY(n->comm,
           ncclAllReduce(buf, buf, (size_t)count, ncclDouble, ncclSum, n->comm, n->stream));
  return compute_after_comm(n, e);
}

extern "C" int nccl_bcast(struct nccl_comm *n, void *buf, size_t bytes, int root,
                          struct ct_err *e) {
  if (comm_after_compute(n, "ncclBroadcast", e)) return e->code;
  NCCL_TRY(n->comm, ncclBroadcast(buf, buf, bytes, ncclUint8, root, n->comm, n->stream));
  return compute_after_comm(n, e);
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
  int waited = 0;
  while (prefix - b->started >= b->bucket || (prefix == b->len && b->started < b->len)) {
    size_t end = prefix - b->started >= b->bucket ? b->started + b->bucket : prefix;
    if (!waited && comm_after_compute(n, "ncclAllReduce (gradient mean)", e)) return e->code;
    waited = 1;
    float *p = b->buf + b->started;
    NCCL_TRY(n->comm,
             ncclAllReduce(p, p, end - b->started, ncclFloat, ncclAvg, n->comm, n->stream));
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
  return compute_after_comm(b->nc, e);
}

/* ---- nccl_comm_check: the host's bounded wait on the comm stream ------------------------- */
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

/* Nothing the comm issued can finish any more: abort it, so its kernels
 * stop and the compute stream waiting on them is released. */
static void abort_comm(struct nccl_comm *n) {
  ncclResult_t rc = ncclCommAbort(n->comm);
  n->comm = NULL;
  if (rc != ncclSuccess)
    log_error("ncclCommAbort failed at %s:%d: %s", __FILE__, __LINE__, ncclGetErrorString(rc));
}

static int timed_out(struct nccl_comm *n, double waited, struct ct_err *e) {
  abort_comm(n);
  return err_set(e, CT_ERR_RUNTIME,
                 "rank %d: %s waited %.0f s for the other ranks; NCCL comm aborted, ending the "
                 "job (run.comm_timeout_s)",
                 n->c->rank, n->last, waited);
}

static int async_failed(struct nccl_comm *n, ncclResult_t async, struct ct_err *e) {
  err_set(e, CT_ERR_RUNTIME,
          "rank %d: the NCCL comm failed (the collective issued last: %s): %s (%s); NCCL comm "
          "aborted",
          n->c->rank, n->last, ncclGetErrorString(async), ncclGetLastError(n->comm));
  abort_comm(n);
  return e->code;
}

/* *done: the collectives before n->checked have finished. */
static int comm_poll(struct nccl_comm *n, int *done, struct ct_err *e) {
  ncclResult_t async = ncclSuccess;
  NCCL_TRY(n->comm, ncclCommGetAsyncError(n->comm, &async));
  if (async != ncclSuccess && async != ncclInProgress) return async_failed(n, async, e);
  cudaError_t q = cudaEventQuery(n->checked);
  *done = q == cudaSuccess;
  if (q == cudaErrorNotReady) {
    /* Not an error: it must not linger for the next launch check. */
    if (cudaPeekAtLastError() == cudaErrorNotReady) cudaGetLastError();
    return CT_OK;
  }
  if (q != cudaSuccess) return cuda_fail(e, q, "cudaEventQuery(n->checked)", __FILE__, __LINE__);
  return CT_OK;
}

extern "C" int nccl_comm_check(struct nccl_comm *n, struct ct_err *e) {
  if (!n->comm)
    return err_set(e, CT_ERR_RUNTIME,
                   "rank %d: the NCCL comm was aborted after a failure (the collective issued "
                   "last: %s)",
                   n->c->rank, n->last);
  CUDA_TRY(cudaEventRecord(n->checked, n->stream));
  const double start = now_s();
  for (int done = 0;;) {
    if (comm_poll(n, &done, e)) return e->code;
    if (done) return CT_OK;
    double waited = now_s() - start;
    if (waited > n->timeout_s) return timed_out(n, waited, e);
    pause_for(waited);
  }
}
