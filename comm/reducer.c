/* reducer.c — the run's traffic between ranks: NCCL on device memory or MPI
 * through a host copy, chosen once (reducer_choose, reducer_init). */
#include "comm/reducer.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#ifdef CTRAIN_HAVE_NCCL
#include "kernels/cuda/cuda_backend.h"
#endif

int reducer_choose(const char *collectives, const struct comm *c, const struct ops_backend *ops,
                   int *on_device, struct ct_err *e) {
  const int cuda = strcmp(ops->name, "cuda") == 0;
  *on_device = 0;
  if (strcmp(collectives, "mpi") == 0) return CT_OK;
  if (strcmp(collectives, "nccl") == 0 && !cuda)
    return err_set(e, CT_ERR_USAGE,
                   "run.collectives = nccl needs run.device = cuda (this run computes on %s)",
                   ops->name);
#ifdef CTRAIN_HAVE_NCCL
  *on_device = cuda && c->size > 1;
#else
  if (strcmp(collectives, "nccl") == 0)
    return err_set(e, CT_ERR_USAGE,
                   "run.collectives = nccl: this build of ctrain has no NCCL (set NCCL_ROOT when "
                   "configuring it, or run.collectives = auto or mpi)");
  if (cuda && c->size > 1)
    log_info("collectives: this build has no NCCL, so the CUDA gradients go through host memory "
             "over MPI");
#endif
  return CT_OK;
}

int reducer_init(struct reducer *r, const struct comm *c, const struct ops_backend *ops,
                 int host_memory, int on_device, float *grads, size_t len, int bucketed,
                 size_t bucket_elems, struct ct_err *e) {
  *r = (struct reducer){.c = c,
                        .ops = ops,
                        .host_memory = host_memory,
                        .grads = grads,
                        .len = len,
                        .bucketed = bucketed && c->size > 1};
  if (c->size == 1) return CT_OK;
  size_t bucket = r->bucketed ? bucket_elems : len;
#ifdef CTRAIN_HAVE_NCCL
  if (on_device) {
    if (nccl_comm_create(&r->nccl, c, cuda_backend_stream(ops), e)) return e->code;
    nccl_buckets_init(&r->nccl_grads, r->nccl, grads, len, bucket);
    return CT_OK;
  }
#else
  (void)on_device; /* reducer_choose never sets it in a build without NCCL */
#endif
  r->host = host_memory ? grads : malloc((len ? len : 1) * sizeof(float));
  if (!r->host)
    return err_set(e, CT_ERR_RUNTIME, "out of memory for a host copy of %zu %s gradients", len,
                   ops->name);
  if (r->bucketed && comm_buckets_init(&r->mpi, c, r->host, len, bucket, e)) return e->code;
  return CT_OK;
}

void reducer_free(struct reducer *r) {
#ifdef CTRAIN_HAVE_NCCL
  nccl_comm_destroy(r->nccl); /* finishes its collectives on the gradients' memory */
#endif
  comm_buckets_free(&r->mpi); /* unused (zero) on the NCCL path */
  if (r->host != r->grads) free(r->host);
  free(r->bn_host);
  memset(r, 0, sizeof *r);
}

/* Backend to host copy of gradients [from, to), MPI path. */
static void pull(const struct reducer *r, size_t from, size_t to) {
  if (!r->host_memory && to > from)
    r->ops->download(r->ops, r->host + from, r->grads + from, (to - from) * sizeof(float));
}

void reducer_ready(void *user, size_t prefix) {
  struct reducer *r = user;
#ifdef CTRAIN_HAVE_NCCL
  if (r->nccl) {
    nccl_buckets_ready(&r->nccl_grads, prefix);
    return;
  }
#endif
  pull(r, r->pulled, prefix);
  r->pulled = prefix;
  comm_buckets_ready(&r->mpi, prefix);
}

int reducer_wait(struct reducer *r, struct ct_err *e) {
  if (r->c->size == 1) return CT_OK;
#ifdef CTRAIN_HAVE_NCCL
  if (r->nccl) return nccl_buckets_wait(&r->nccl_grads, e);
#endif
  if (r->bucketed) {
    if (comm_buckets_wait(&r->mpi, e)) return e->code;
    r->pulled = 0;
  } else {
    pull(r, 0, r->len);
    if (comm_allreduce_avg_f32(r->c, r->host, r->len, e)) return e->code;
  }
  if (!r->host_memory) r->ops->upload(r->ops, r->grads, r->host, r->len * sizeof(float));
  return CT_OK;
}

int reducer_check(struct reducer *r, struct ct_err *e) {
#ifdef CTRAIN_HAVE_NCCL
  if (r->nccl) return nccl_comm_check(r->nccl, e);
#endif
  (void)r;
  (void)e;
  return CT_OK;
}

int reducer_bcast(struct reducer *r, void *dev, size_t bytes, struct ct_err *e) {
  const struct comm *c = r->c;
  if (c->size == 1) return CT_OK;
#ifdef CTRAIN_HAVE_NCCL
  if (r->nccl) return nccl_bcast(r->nccl, dev, bytes, 0, e);
#endif
  if (r->host_memory) return comm_bcast(c, dev, bytes, 0, e);
  /* Through the gradients' host copy (idle outside the step) when it is
   * large enough, as it is for parameters and optimizer state. */
  void *stage = bytes <= r->len * sizeof(float) ? (void *)r->host : malloc(bytes ? bytes : 1);
  if (!stage) return err_set(e, CT_ERR_RUNTIME, "out of memory for a %zu-byte broadcast", bytes);
  if (c->rank == 0) r->ops->download(r->ops, stage, dev, bytes);
  int rc = comm_bcast(c, stage, bytes, 0, e);
  if (!rc && c->rank != 0) r->ops->upload(r->ops, dev, stage, bytes);
  if (stage != r->host) free(stage);
  return rc;
}

/* Sync BN's sums in device memory over MPI: through the host, in stream
 * order (the copies finish before they return). */
static void staged_sum_cb(void *user, double *buf, int n) {
  struct reducer *r = user;
  r->ops->download(r->ops, r->bn_host, buf, (size_t)n * sizeof(double));
  comm_reduce_sum_cb((void *)r->c, r->bn_host, n);
  r->ops->upload(r->ops, buf, r->bn_host, (size_t)n * sizeof(double));
}

int reducer_sync_bn(struct reducer *r, size_t max_bytes, void (**fn)(void *, double *, int),
                    void **user, struct ct_err *e) {
#ifdef CTRAIN_HAVE_NCCL
  if (r->nccl) {
    *fn = nccl_reduce_sum_cb;
    *user = r->nccl;
    return CT_OK;
  }
#endif
  *fn = comm_reduce_sum_cb;
  *user = (void *)r->c;
  if (r->host_memory) return CT_OK;
  if (!(r->bn_host = malloc(max_bytes ? max_bytes : 1)))
    return err_set(e, CT_ERR_RUNTIME, "out of memory for sync BN's %zu-byte host copy", max_bytes);
  *fn = staged_sum_cb;
  *user = r;
  return CT_OK;
}

const char *reducer_describe(const struct reducer *r) {
  if (r->c->size == 1) return "no all-reduce";
  if (r->nccl)
    return r->bucketed ? "bucketed all-reduce over NCCL" : "blocking all-reduce over NCCL";
  return r->bucketed ? "bucketed all-reduce" : "blocking all-reduce";
}
