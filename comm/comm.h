/* comm.h — ranks, the local rank on the node, and every collective. MPI is
 * called only here. Buffers are host buffers: for a backend with device
 * memory the trainer stages them (graph.h's host views). device.h chooses
 * the backend. */
#ifndef CTRAIN_COMM_H
#define CTRAIN_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct comm_mpi; /* the MPI communicators, known to comm.c only */

struct comm {
  int rank, size;             /* in MPI_COMM_WORLD */
  int local_rank, local_size; /* on this node (MPI_COMM_TYPE_SHARED) */
  struct comm_mpi *mpi;
};

/* MPI_Init_thread, bounded: past CTRAIN_COMM_TIMEOUT_S seconds (from the
 * environment, 1 to 86400; else COMM_TIMEOUT_DEFAULT_S) the process logs
 * one line naming MPI_Init and exits, since no configuration is read yet
 * (comm.c says why). */
int comm_init(struct comm *c, int *argc, char ***argv, struct ct_err *e);
void comm_finalize(struct comm *c);

/* Seconds any collective may wait for the other ranks (run.comm_timeout_s;
 * COMM_TIMEOUT_DEFAULT_S from comm_init). Past it the waiting rank logs one
 * line naming itself, the collective and the seconds, and ends the job
 * (comm_abort(c, 1)): a rank that stopped answering must not hang the rest
 * for ever. The setting lives behind the opaque pointer, so the trainer,
 * which holds the comm as const, sets it once from its configuration. */
#define COMM_TIMEOUT_DEFAULT_S 300.0
void comm_set_timeout(const struct comm *c, double seconds);
double comm_timeout(const struct comm *c);
/* Ends every rank: the job must not hang when one rank fails. */
_Noreturn void comm_abort(const struct comm *c, int code);

/* In-place sum over ranks. */
int comm_allreduce_sum_f64(const struct comm *c, double *buf, int n, struct ct_err *e);
/* In-place mean over ranks. */
int comm_allreduce_avg_f32(const struct comm *c, float *buf, size_t n, struct ct_err *e);
int comm_bcast(const struct comm *c, void *buf, size_t bytes, int root, struct ct_err *e);
/* Logical OR of `flag` over ranks (an error on any rank stops all). */
int comm_any(const struct comm *c, int flag, int *any, struct ct_err *e);
/* Rank 0 receives `n` values from every rank, rank-major, into `all`
 * (size * n, used on rank 0 only). */
int comm_gather_u64(const struct comm *c, const uint64_t *mine, int n, uint64_t *all,
                    struct ct_err *e);

/* Where the ranks run, for the start-up line, on rank 0 (others get ""):
 * "2 nodes: node1 (ranks 0-1), node2 (ranks 2-3)", host names as MPI gives
 * them, each host's ranks as ranges, cut with ", ..." to fit `len`. A
 * collective: every rank calls it. */
int comm_placement(const struct comm *c, char *out, size_t len, struct ct_err *e);

/* The sync-BN reduction as the kernels' ops_ctx.reduce_sum callback: `user`
 * is the struct comm. A failure aborts every rank (the kernels have no error
 * path, and a half-done collective cannot be recovered anyway). */
void comm_reduce_sum_cb(void *user, double *buf, int n);

/* Bucketed gradient all-reduce: backward reports that the prefix [0, k) of
 * the flat gradient buffer is final; every full bucket of that prefix starts
 * a non-blocking sum right away, so communication overlaps the rest of
 * backward. comm_buckets_wait completes them and divides by the world size. */
struct comm_buckets {
  const struct comm *c;
  float *buf;
  size_t len, bucket, started;
  void *req; /* MPI_Request[cap] */
  int nreq, cap;
  struct ct_err err; /* the first failure inside a backward hook */
};

int comm_buckets_init(struct comm_buckets *b, const struct comm *c, float *buf, size_t len,
                      size_t bucket_elems, struct ct_err *e);
/* The graph's backward hook: `user` is the struct comm_buckets. */
void comm_buckets_ready(void *user, size_t prefix);
int comm_buckets_wait(struct comm_buckets *b, struct ct_err *e);
void comm_buckets_free(struct comm_buckets *b);

#endif
