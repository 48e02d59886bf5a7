/* reducer.c — the run's traffic between ranks: NCCL on device memory or MPI
 * through a host copy, chosen once in reducer_init. */
#include "comm/reducer.h"

#include <stdlib.h>
#include <string.h>

#ifdef CTRAIN_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

int reducer_on_device(const struct comm *c, const struct ops_backend *ops) {
#ifdef CTRAIN_HAVE_CUDA
  return c->size > 1 && strcmp(ops->name, "cuda") == 0;
#else
  (void)c;
  (void)ops;
  return 0;
#endif
}

int reducer_init(struct reducer *r, const struct comm *c, const struct ops_backend *ops,
                 int host_memory, float *grads, size_t len, int bucketed, size_t bucket_elems,
                 struct ct_err *e) {
  *r = (struct reducer){.c = c,
                        .ops = ops,
                        .host_memory = host_memory,
                        .grads = grads,
                        .len = len,
                        .bucketed = bucketed && c->size > 1};
  if (c->size == 1) return CT_OK;
  size_t bucket = r->bucketed ? bucket_elems : len;
#ifdef CTRAIN_HAVE_CUDA
  if (reducer_on_device(c, ops)) {
    if (nccl_comm_create(&r->nccl, c, cuda_backend_stream(ops), e)) return e->code;
    nccl_buckets_init(&r->nccl_grads, r->nccl, grads, len, bucket);
    return CT_OK;
  }
#endif
  r->host = host_memory ? grads : malloc((len ? len : 1) * sizeof(float));
  if (!r->host)
    return err_set(e, CT_ERR_RUNTIME, "out of memory for a host copy of %zu %s gradients", len,
                   ops->name);
  if (r->bucketed && comm_buckets_init(&r->mpi, c, r->host, len, bucket, e)) return e->code;
  return CT_OK;
}

void reducer_free(struct reducer *r) {
#ifdef CTRAIN_HAVE_CUDA
  nccl_comm_destroy(r->nccl); /* finishes its collectives on the gradients' memory */
#endif
  comm_buckets_free(&r->mpi); /* unused (zero) on the NCCL path */
  if (r->host != r->grads) free(r->host);
  memset(r, 0, sizeof *r);
}

/* Backend to host copy of gradients [from, to), MPI path. */
static void pull(const struct reducer *r, size_t from, size_t to) {
  if (!r->host_memory && to > from)
    r->ops->download(r->ops, r->host + from, r->grads + from, (to - from) * sizeof(float));
}

void reducer_ready(void *user, size_t prefix) {
  struct reducer *r = user;
#ifdef CTRAIN_HAVE_CUDA
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
#ifdef CTRAIN_HAVE_CUDA
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

int reducer_bcast(struct reducer *r, void *dev, size_t bytes, struct ct_err *e) {
  const struct comm *c = r->c;
  if (c->size == 1) return CT_OK;
#ifdef CTRAIN_HAVE_CUDA
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

void reducer_sync_bn(struct reducer *r, void (**fn)(void *, double *, int), void **user) {
#ifdef CTRAIN_HAVE_CUDA
  if (r->nccl) {
    *fn = nccl_reduce_sum_cb;
    *user = r->nccl;
    return;
  }
#endif
  *fn = comm_reduce_sum_cb;
  *user = (void *)r->c;
}

const char *reducer_describe(const struct reducer *r) {
  if (r->c->size == 1) return "no all-reduce";
  if (r->nccl)
    return r->bucketed ? "bucketed all-reduce over NCCL" : "blocking all-reduce over NCCL";
  return r->bucketed ? "bucketed all-reduce" : "blocking all-reduce";
}
