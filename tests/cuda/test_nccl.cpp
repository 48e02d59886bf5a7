/* test_nccl.cpp — comm/nccl.h over the emulator's NCCL shim, on 2 ranks
 * (mpirun -np 2), on emulated device memory (AddressSanitizer watches the
 * buffers). Every expected value is exact: rank r holds small integers plus
 * r / 2, whose sums and halves float32 and float64 represent exactly.
 *
 * - The shim alone: ncclAllReduce with ncclSum and ncclAvg on float and
 *   double buffers, in place and out of place; ranks holding different
 *   unique ids fail ncclCommInitRank with ncclInvalidUsage on every rank.
 * - The module's buckets: a gradient buffer of odd length LEN in buckets of
 *   BUCKET elements (the last one partial), with the ready prefix reported
 *   in uneven steps as backward would. After each report exactly the full
 *   buckets inside the prefix hold the mean (they were issued then, which
 *   is the overlap with backward); the rest is untouched until
 *   nccl_buckets_wait, after which all of it is the mean. Twice, as two
 *   training steps would, the first with a sync-BN sum in the middle, as
 *   backward makes them. Then the blocking form (one bucket).
 * - nccl_reduce_sum_cb (sync BN) on device doubles: the exact sum, on a
 *   comm and a stream of its own, neither the buckets' nor the compute
 *   stream (nccl_comm_lane), so that it never queues behind them.
 * - nccl_bcast: an odd number of bytes from rank 1 reaches rank 0 exactly,
 *   and rank 1's copy is unchanged.
 *
 * `test_nccl timeout` instead: a rank that stops answering. With
 * comm_set_timeout(c, 2) (run.comm_timeout_s = 2), rank 1 skips a broadcast
 * that rank 0 makes; rank 0's fails after 2 s (not the emulator's default
 * 300), naming rank 0 and ncclBroadcast, and rank 1, polling
 * nccl_comm_check meanwhile, sees the comm stopped (ncclCommGetAsyncError),
 * which aborts it (ncclCommAbort). Both then end cleanly.
 *
 * `test_nccl lanes`: sync BN's comm is not the gradients'. Rank 1 skips a
 * broadcast, so rank 0's fails after 2 s and the emulator stops that comm
 * on both ranks; after an MPI handshake (whose own timeout is longer) both
 * sum on the sync-BN path, which must still give the exact sum (on the
 * stopped comm it would fail and end the job), and only then does
 * nccl_comm_check report the stop.
 *
 * `test_nccl init-timeout`: a rank that never calls ncclCommInitRank. Both
 * ranks create the comms as ranks 0 and 1 of 3 (run.comm_timeout_s = 2);
 * rank 2 never comes, so each must fail within seconds, not at the shim's
 * default 300, with one line naming itself and ncclCommInitRank, and then
 * create the comms of the real 2 ranks as if nothing had happened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/nccl.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/emu/nccl_emu.h"

enum { LEN = 1001, BUCKET = 64, NSUM = 37 };

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                         \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#define CUDA_OK(call) CHECK((call) == cudaSuccess, "%s", #call)
#define NCCL_OK(call) CHECK((call) == ncclSuccess, "%s", #call)

/* Rank r's value i in round k: an integer plus r / 2. */
static double value(int rank, int i, int k) { return (double)(i % 97 + 3 * k) + 0.5 * rank; }
/* Its mean and sum over `ranks`. */
static double mean(int ranks, int i, int k) {
  double s = 0;
  for (int r = 0; r < ranks; r++)
    s += value(r, i, k);
  return s / ranks;
}

template <class T> static T *device_copy(const T *host, size_t n) {
  T *d = nullptr;
  CUDA_OK(cudaMalloc(&d, n * sizeof(T)));
  CUDA_OK(cudaMemcpy(d, host, n * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <class T>
static void shim_case(const struct comm *c, ncclComm_t nc, ncclDataType_t type, ncclRedOp_t op,
                      int in_place) {
  T host[NSUM], out[NSUM];
  for (int i = 0; i < NSUM; i++)
    host[i] = (T)value(c->rank, i, 0);
  T *src = device_copy(host, NSUM), *dst = in_place ? src : device_copy(host, NSUM);
  NCCL_OK(ncclAllReduce(src, dst, NSUM, type, op, nc, nullptr));
  CUDA_OK(cudaMemcpy(out, dst, sizeof out, cudaMemcpyDeviceToHost));
  for (int i = 0; i < NSUM; i++) {
    double want = op == ncclAvg ? mean(c->size, i, 0) : mean(c->size, i, 0) * c->size;
    CHECK(out[i] == (T)want, "%s %s %s [%d]: %.17g, want %.17g",
          type == ncclFloat ? "float" : "double", op == ncclAvg ? "avg" : "sum",
          in_place ? "in place" : "out of place", i, (double)out[i], want);
  }
  CUDA_OK(cudaFree(src));
  if (!in_place) CUDA_OK(cudaFree(dst));
}

static void test_shim(const struct comm *c) {
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (c->rank == 0) NCCL_OK(ncclGetUniqueId(&id));
  struct ct_err e = {};
  CHECK(comm_bcast(c, &id, sizeof id, 0, &e) == CT_OK, "comm_bcast: %s", e.msg);
  ncclComm_t nc = nullptr;
  NCCL_OK(ncclCommInitRank(&nc, c->size, id, c->rank));
  if (!nc) return;
  for (int in_place = 0; in_place < 2; in_place++) {
    shim_case<float>(c, nc, ncclFloat, ncclSum, in_place);
    shim_case<float>(c, nc, ncclFloat, ncclAvg, in_place);
    shim_case<double>(c, nc, ncclDouble, ncclSum, in_place);
    shim_case<double>(c, nc, ncclDouble, ncclAvg, in_place);
  }
  NCCL_OK(ncclCommDestroy(nc));

  /* Without the broadcast every rank has its own id: every rank must fail. */
  ncclUniqueId own;
  NCCL_OK(ncclGetUniqueId(&own));
  ncclComm_t bad = nullptr;
  ncclResult_t rc = ncclCommInitRank(&bad, c->size, own, c->rank);
  CHECK(rc == ncclInvalidUsage && !bad, "ncclCommInitRank with unshared ids returned %d (%s)",
        (int)rc, ncclGetErrorString(rc));
}

/* Element i of the device buffer after the reports so far: the mean for
 * the buckets issued (below `issued`), the rank's own value above. */
static void check_buffer(const struct comm *c, const float *dev, size_t issued, int k,
                         const char *when) {
  static float host[LEN];
  CUDA_OK(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost));
  int bad = 0;
  for (int i = 0; i < LEN; i++) {
    double want = (size_t)i < issued ? mean(c->size, i, k) : value(c->rank, i, k);
    if (host[i] != (float)want && bad++ < 3)
      CHECK(0, "round %d, %s: [%d] = %.9g, want %.9g", k, when, i, (double)host[i], want);
  }
}

static void test_reduce_sum(const struct comm *c, struct nccl_comm *nc);

static void test_buckets(const struct comm *c, struct nccl_comm *nc) {
  float *grads = nullptr;
  CUDA_OK(cudaMalloc(&grads, LEN * sizeof(float)));
  struct nccl_buckets b;
  nccl_buckets_init(&b, nc, grads, LEN, BUCKET);
  const size_t prefixes[] = {0, 10, 64, 65, 200, 200, 700, 1000, LEN};
  for (int k = 0; k < 2; k++) {
    static float host[LEN];
    for (int i = 0; i < LEN; i++)
      host[i] = (float)value(c->rank, i, k);
    CUDA_OK(cudaMemcpy(grads, host, sizeof host, cudaMemcpyHostToDevice));
    for (size_t p : prefixes) {
      nccl_buckets_ready(&b, p);
      size_t issued = p == LEN ? (size_t)LEN : p / BUCKET * BUCKET;
      char when[64];
      snprintf(when, sizeof when, "after prefix %zu", p);
      check_buffer(c, grads, issued, k, when);
      if (k == 0 && p == 700) {
        test_reduce_sum(c, nc); /* on its own lane: the buckets stay as they were */
        check_buffer(c, grads, issued, k, "after a sync-BN sum");
      }
    }
    struct ct_err e = {};
    CHECK(nccl_buckets_wait(&b, &e) == CT_OK, "nccl_buckets_wait: %s", e.msg);
    check_buffer(c, grads, LEN, k, "after wait");
  }

  /* Blocking: one bucket of the whole buffer, issued by the wait. */
  static float host[LEN];
  for (int i = 0; i < LEN; i++)
    host[i] = (float)value(c->rank, i, 2);
  CUDA_OK(cudaMemcpy(grads, host, sizeof host, cudaMemcpyHostToDevice));
  nccl_buckets_init(&b, nc, grads, LEN, LEN);
  nccl_buckets_ready(&b, 1000);
  check_buffer(c, grads, 0, 2, "blocking, before the wait");
  struct ct_err e = {};
  CHECK(nccl_buckets_wait(&b, &e) == CT_OK, "nccl_buckets_wait: %s", e.msg);
  check_buffer(c, grads, LEN, 2, "blocking, after the wait");
  CUDA_OK(cudaFree(grads));
}

static void test_reduce_sum(const struct comm *c, struct nccl_comm *nc) {
  double host[NSUM];
  for (int i = 0; i < NSUM; i++)
    host[i] = value(c->rank, i, 0);
  double *dev = device_copy(host, NSUM);
  nccl_reduce_sum_cb(nc, dev, NSUM);
  CUDA_OK(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost));
  for (int i = 0; i < NSUM; i++)
    CHECK(host[i] == mean(c->size, i, 0) * c->size, "reduce_sum [%d] = %.17g, want %.17g", i,
          host[i], mean(c->size, i, 0) * c->size);
  CUDA_OK(cudaFree(dev));
}

/* Sync BN's lane is not the buckets': another comm, another stream, and
 * neither is the compute stream. */
static void test_lanes(struct nccl_comm *nc, void *compute) {
  void *grads_comm, *grads_stream, *bn_comm, *bn_stream;
  nccl_comm_lane(nc, NCCL_LANE_GRADS, &grads_comm, &grads_stream);
  nccl_comm_lane(nc, NCCL_LANE_BN, &bn_comm, &bn_stream);
  CHECK(grads_comm && bn_comm && bn_comm != grads_comm,
        "sync BN's comm %p is not one of its own (the buckets': %p)", bn_comm, grads_comm);
  CHECK(grads_stream && bn_stream && bn_stream != grads_stream && bn_stream != compute &&
            grads_stream != compute,
        "streams: sync BN's %p, the buckets' %p, compute %p: not three", bn_stream, grads_stream,
        compute);
}

static void test_bcast(const struct comm *c, struct nccl_comm *nc) {
  enum { BYTES = 1003 };
  unsigned char host[BYTES];
  for (int i = 0; i < BYTES; i++)
    host[i] = (unsigned char)(i * 7 + 100 * c->rank);
  unsigned char *dev = device_copy(host, BYTES);
  struct ct_err e = {};
  CHECK(nccl_bcast(nc, dev, BYTES, 1, &e) == CT_OK, "nccl_bcast: %s", e.msg);
  CUDA_OK(cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost));
  for (int i = 0; i < BYTES; i++)
    CHECK(host[i] == (unsigned char)(i * 7 + 100), "bcast [%d] = %d, want %d", i, host[i],
          (unsigned char)(i * 7 + 100));
  CUDA_OK(cudaFree(dev));
}

static double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { TIMEOUT_S = 2, SLACK_S = 10 };

/* Rank 0: the broadcast rank 1 never joins. */
static void timeout_rank0(struct nccl_comm *nc, unsigned char *dev) {
  struct ct_err e = {};
  double t0 = now_s();
  int rc = nccl_bcast(nc, dev, 64, 0, &e);
  double took = now_s() - t0;
  CHECK(rc != CT_OK, "nccl_bcast succeeded without rank 1");
  CHECK(took >= TIMEOUT_S && took < TIMEOUT_S + SLACK_S, "nccl_bcast failed after %.1f s, not %d",
        took, TIMEOUT_S);
  CHECK(strstr(e.msg, "rank 0: ncclBroadcast waited 2 s for the other ranks (run.comm_timeout_s)"),
        "the message names neither the rank, the collective nor the timeout: %s", e.msg);
  printf("rank 0: the broadcast failed after %.1f s: %s\n", took, e.msg);
  struct ct_err after = {};
  CHECK(nccl_comm_check(nc, &after) != CT_OK, "nccl_comm_check passed on a stopped comm");
  printf("rank 0: then nccl_comm_check: %s\n", after.msg);
}

/* Rank 1: skips the broadcast and polls until rank 0's timeout stops the
 * comm. */
static void timeout_rank1(struct nccl_comm *nc) {
  struct ct_err e = {};
  double t0 = now_s();
  int rc;
  while ((rc = nccl_comm_check(nc, &e)) == CT_OK && now_s() - t0 < TIMEOUT_S + SLACK_S) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  CHECK(rc != CT_OK, "rank 1's comm still works %d s after rank 0's timeout", SLACK_S);
  CHECK(strstr(e.msg, "rank 1: the NCCL comm failed") && strstr(e.msg, "rank 0: ncclBroadcast"),
        "rank 1's message does not name the stop: %s", e.msg);
  printf("rank 1: nccl_comm_check after %.1f s: %s\n", now_s() - t0, e.msg);
}

/* The CUDA backend and an NCCL comm on its stream, or the job ends. */
static void open_comm(struct comm *c, const struct ops_backend **be, struct nccl_comm **nc) {
  char msg[256];
  struct ct_err e = {};
  *be = cuda_backend_open(0, msg, sizeof msg);
  if (!*be || nccl_comm_create(nc, c, cuda_backend_stream(*be), &e)) {
    fprintf(stderr, "rank %d: %s\n", c->rank, *be ? e.msg : msg);
    comm_abort(c, 1);
  }
}

static int test_timeout(struct comm *c) {
  comm_set_timeout(c, TIMEOUT_S);
  const struct ops_backend *be = nullptr;
  struct nccl_comm *nc = nullptr;
  struct ct_err e = {};
  open_comm(c, &be, &nc);
  unsigned char *dev = nullptr;
  CUDA_OK(cudaMalloc(&dev, 64));
  if (c->rank == 0)
    timeout_rank0(nc, dev);
  else
    timeout_rank1(nc);
  nccl_comm_destroy(nc); /* aborted on both ranks: frees without waiting */
  CUDA_OK(cudaFree(dev));
  cuda_backend_close(be);
  int any = 0;
  comm_any(c, failures != 0, &any, &e);
  if (c->rank == 0 && !any)
    printf("NCCL timeout: a skipped collective failed within run.comm_timeout_s on both ranks\n");
  comm_finalize(c);
  return any ? 1 : 0;
}

static int test_lanes_apart(struct comm *c) {
  comm_set_timeout(c, TIMEOUT_S);
  const struct ops_backend *be = nullptr;
  struct nccl_comm *nc = nullptr;
  struct ct_err e = {};
  open_comm(c, &be, &nc);
  /* The MPI handshake below waits for rank 0's broadcast timeout. */
  comm_set_timeout(c, TIMEOUT_S + SLACK_S);
  unsigned char *dev = nullptr;
  CUDA_OK(cudaMalloc(&dev, 64));
  if (c->rank == 0)
    CHECK(nccl_bcast(nc, dev, 64, 0, &e) != CT_OK, "nccl_bcast succeeded without rank 1");
  int any = 0;
  CHECK(comm_any(c, 0, &any, &e) == CT_OK, "comm_any: %s", e.msg);
  test_reduce_sum(c, nc); /* ends the job if it goes over the stopped comm */
  struct ct_err after = {};
  CHECK(nccl_comm_check(nc, &after) != CT_OK, "nccl_comm_check passed on a stopped comm");
  printf("rank %d: a sync-BN sum after the gradients' comm stopped: exact; then "
         "nccl_comm_check: %s\n",
         c->rank, after.msg);
  nccl_comm_destroy(nc);
  CUDA_OK(cudaFree(dev));
  cuda_backend_close(be);
  comm_any(c, failures != 0, &any, &e);
  if (c->rank == 0 && !any)
    printf("NCCL lanes: sync BN summed on its own comm while the gradients' was stopped\n");
  comm_finalize(c);
  return any ? 1 : 0;
}

/* Ranks 0 and 1 of 3: the rendezvous waits for a rank 2 that never comes. */
static int test_init_timeout(struct comm *c) {
  comm_set_timeout(c, TIMEOUT_S);
  char msg[256];
  const struct ops_backend *be = cuda_backend_open(0, msg, sizeof msg);
  if (!be) {
    fprintf(stderr, "rank %d: %s\n", c->rank, msg);
    comm_abort(c, 1);
  }
  struct comm three = *c; /* the same MPI world, for the ids' broadcast */
  three.size = 3;
  struct nccl_comm *nc = nullptr;
  struct ct_err e = {};
  double t0 = now_s();
  int rc = nccl_comm_create(&nc, &three, cuda_backend_stream(be), &e);
  double took = now_s() - t0;
  CHECK(rc != CT_OK && !nc, "nccl_comm_create succeeded without rank 2");
  /* The rank that timed out first stops the comm; the other sees that. */
  CHECK(took > TIMEOUT_S - 1 && took < TIMEOUT_S + SLACK_S,
        "nccl_comm_create failed after %.1f s, not %d", took, TIMEOUT_S);
  char want[128];
  snprintf(want, sizeof want,
           "rank %d: the NCCL comm failed (the call issued last on it: "
           "ncclCommInitRank)",
           c->rank);
  CHECK(strstr(e.msg, want) &&
            strstr(e.msg, "waited 2 s for the other ranks (run.comm_timeout_s)") &&
            !strchr(e.msg, '\n'),
        "the message is not one line naming the rank, ncclCommInitRank and the timeout: %s", e.msg);
  printf("rank %d: nccl_comm_create failed after %.1f s: %s\n", c->rank, took, e.msg);
  /* Nothing of the failed comms is left in the way of the real ones. */
  struct ct_err again = {};
  CHECK(nccl_comm_create(&nc, c, cuda_backend_stream(be), &again) == CT_OK,
        "nccl_comm_create on 2 ranks after the failure: %s", again.msg);
  if (nc) test_reduce_sum(c, nc);
  nccl_comm_destroy(nc);
  cuda_backend_close(be);
  int any = 0;
  comm_any(c, failures != 0, &any, &e);
  if (c->rank == 0 && !any)
    printf("NCCL init timeout: a rank that never came failed ncclCommInitRank within "
           "run.comm_timeout_s on both ranks\n");
  comm_finalize(c);
  return any ? 1 : 0;
}

int main(int argc, char **argv) {
  struct comm c;
  struct ct_err e = {};
  if (comm_init(&c, &argc, &argv, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  if (c.size != 2) {
    fprintf(stderr, "test_nccl runs on 2 ranks (mpirun -np 2), not %d\n", c.size);
    comm_abort(&c, 2);
  }
  if (argc > 1 && strcmp(argv[1], "timeout") == 0) return test_timeout(&c);
  if (argc > 1 && strcmp(argv[1], "lanes") == 0) return test_lanes_apart(&c);
  if (argc > 1 && strcmp(argv[1], "init-timeout") == 0) return test_init_timeout(&c);
  test_shim(&c);
  char msg[256];
  const struct ops_backend *be = cuda_backend_open(0, msg, sizeof msg);
  if (!be) {
    fprintf(stderr, "rank %d: %s\n", c.rank, msg);
    comm_abort(&c, 1);
  }
  struct nccl_comm *nc = nullptr;
  if (nccl_comm_create(&nc, &c, cuda_backend_stream(be), &e)) {
    fprintf(stderr, "rank %d: %s\n", c.rank, e.msg);
    comm_abort(&c, 1);
  }
  test_lanes(nc, cuda_backend_stream(be));
  test_buckets(&c, nc);
  test_reduce_sum(&c, nc);
  test_bcast(&c, nc);
  nccl_comm_destroy(nc);
  cuda_backend_close(be);

  int any = 0;
  comm_any(&c, failures != 0, &any, &e);
  if (c.rank == 0 && !any)
    printf("NCCL over the emulator: sum/avg of float/double, %d-element gradients in %d-element "
           "buckets (overlap and mean), sync-BN sums on a lane of their own, a broadcast, on %d "
           "ranks: exact\n",
           LEN, BUCKET, c.size);
  comm_finalize(&c);
  return any ? 1 : 0;
}
