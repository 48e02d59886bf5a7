/* bench_allreduce — latency and bandwidth of the collective ctrain's blocking
 * gradient mean issues: in-place MPI_Allreduce of floats with MPI_SUM on
 * MPI_COMM_WORLD. One JSON line per message size on rank 0, the input of
 * `tests/bench/scaling_model.py fit`, which calibrates the alpha-beta model.
 *
 * Per size: a few warm-up calls (connections, registration, eager/rendezvous
 * switch), then iterations sized so their total is about --min-time-s. Each
 * timed iteration starts after a barrier and its time is the slowest rank's
 * (an all-reduce is done only when every rank has its result); the median
 * over iterations resists the shared machine's outliers, the minimum shows
 * the undisturbed cost.
 *
 * usage: bench_allreduce [--max-bytes N | --sizes B1,B2,...] [--min-time-s S]
 *   --max-bytes  end of the sweep 4, 16, 64, ... bytes (default 16 MiB)
 *   --sizes      these sizes instead of the sweep
 *   --min-time-s timed all-reduce time to aim for per size (default 0.2; at least 5, at
 *                most 100000 iterations; the barriers add to the wall time) */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                                      \
  "usage: bench_allreduce [--max-bytes N | --sizes B1,B2,...] [--min-time-s S] "                   \
  "(bytes: multiples of 4 from 4 to 2^30)"

enum { WARMUP = 3, MIN_ITERS = 5, MAX_ITERS = 100000, MAX_SIZES = 64 };
/* INT_MAX floats would overflow the int count; 1 GiB is far past any model here. */
static const unsigned long long MAX_MSG = 1ull << 30;

static void check(int rc, const char *call, const char *file, int line) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
  fprintf(stderr, "bench_allreduce: %s failed (%s:%d): %s\n", call, file, line, msg);
  MPI_Abort(MPI_COMM_WORLD, 1);
}
#define CHECK(call) check((call), #call, __FILE__, __LINE__)

struct opts {
  unsigned long long sizes[MAX_SIZES];
  int nsizes;
  double min_time_s;
};

/* A byte count: decimal digits only, a positive multiple of 4, at most MAX_MSG. */
static int parse_bytes(const char *s, unsigned long long *out) {
  if (*s < '0' || *s > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || (*end && *end != ',')) return -1;
  if (v < 4 || v % 4 || v > MAX_MSG) return -1;
  *out = v;
  return (int)(end - s);
}

/* The argument parse() stopped at, for the usage line. */
static const char *bad_arg = "";

static int parse(int argc, char **argv, struct opts *o) {
  unsigned long long max_bytes = 16ull << 20;
  int have_max = 0, have_sizes = 0;
  o->nsizes = 0;
  o->min_time_s = 0.2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bad_arg = a;
    if (strcmp(a, "--help") == 0) return 1;
    if (i + 1 >= argc) return -1;
    const char *v = argv[++i];
    if (strcmp(a, "--max-bytes") == 0) {
      int n = parse_bytes(v, &max_bytes);
      if (n < 0 || v[n]) return -1;
      have_max = 1;
    } else if (strcmp(a, "--min-time-s") == 0) {
      char *end;
      errno = 0;
      o->min_time_s = strtod(v, &end);
      if (errno || end == v || *end || !isfinite(o->min_time_s) || o->min_time_s <= 0 ||
          o->min_time_s > 3600)
        return -1;
    } else if (strcmp(a, "--sizes") == 0) {
      if (have_sizes) return -1;
      have_sizes = 1;
      const char *p = v;
      for (;;) {
        if (o->nsizes == MAX_SIZES) return -1;
        int n = parse_bytes(p, &o->sizes[o->nsizes++]);
        if (n < 0) return -1;
        p += n;
        if (!*p) break;
        p++; /* the comma; a trailing one fails the next parse_bytes */
      }
    } else {
      return -1;
    }
  }
  /* An explicit list is the sweep; a cap on top of it would silently drop sizes. */
  if (have_max && have_sizes) return -1;
  if (!have_sizes)
    for (unsigned long long b = 4; b <= max_bytes && o->nsizes < MAX_SIZES; b *= 4)
      o->sizes[o->nsizes++] = b;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nodes = ranks that lead their shared-memory domain (what MPI counts as a node). */
static int count_nodes(void) {
  MPI_Comm node;
  int local, leader, nodes;
  CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  CHECK(MPI_Comm_rank(node, &local));
  leader = local == 0;
  CHECK(MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  CHECK(MPI_Comm_free(&node));
  return nodes;
}

/* SLURM_NNODES only when it is a plain positive integer, so the JSON stays valid. */
static long slurm_nnodes(void) {
  const char *s = getenv("SLURM_NNODES");
  if (!s || *s < '0' || *s > '9') return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  return errno || *end || v <= 0 ? -1 : v;
}

/* Each rank contributes rank + 1; every element must come back as p(p+1)/2
 * (every partial sum is an integer below 2^24 up to p = 5792, so exact in
 * float in any order), so a broken transport fails loudly instead of timing
 * garbage. */
static void verify(float *buf, int count, int rank, int p) {
  for (int i = 0; i < count; i++)
    buf[i] = (float)(rank + 1);
  CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
  const float want = (float)((double)p * (p + 1) / 2);
  int bad = 0, any_bad = 0;
  for (int i = 0; i < count; i++)
    if (buf[i] != want) bad = 1;
  CHECK(MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (any_bad) {
    if (rank == 0)
      fprintf(stderr, "bench_allreduce: MPI_Allreduce of %d floats gave a wrong sum\n", count);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

static void bench_size(unsigned long long bytes, float *buf, double *times, double *max_times,
                       const struct opts *o, int rank, int p, int nodes, long nn) {
  const int count = (int)(bytes / 4);
  verify(buf, count, rank, p);
  /* Zeros keep every later sum at zero: no overflow to inf, no denormals. */
  memset(buf, 0, bytes);
  double warm = 0;
  for (int i = 0; i < WARMUP; i++) {
    CHECK(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = MPI_Wtime();
    CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    if (i > 0) warm += MPI_Wtime() - t0; /* the first call pays one-off set-up */
  }
  double warm_max = 0;
  CHECK(MPI_Allreduce(&warm, &warm_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  /* Every rank derives the same count from the same maximum: no broadcast needed. */
  double per = warm_max / (WARMUP - 1);
  double want = per > 0 ? ceil(o->min_time_s / per) : MAX_ITERS;
  int iters = want < MIN_ITERS ? MIN_ITERS : want > MAX_ITERS ? MAX_ITERS : (int)want;
  for (int i = 0; i < iters; i++) {
    CHECK(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = MPI_Wtime();
    CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    times[i] = MPI_Wtime() - t0;
  }
  /* One reduction after the loop, so nothing but the barrier sits between iterations. */
  CHECK(MPI_Reduce(times, max_times, iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
  if (rank != 0) return;
  qsort(max_times, (size_t)iters, sizeof *max_times, cmp_double);
  double median =
      iters % 2 ? max_times[iters / 2] : 0.5 * (max_times[iters / 2 - 1] + max_times[iters / 2]);
  /* NCCL's bus bandwidth: what each link carries in a ring, comparable across p. */
  double busbw = p > 1 && median > 0 ? (double)bytes / median * 2.0 * (p - 1) / p / 1e9 : 0.0;
  printf("{\"ranks\":%d,\"nodes\":%d,", p, nodes);
  if (nn > 0) printf("\"slurm_nnodes\":%ld,", nn);
  printf("\"bytes\":%llu,\"median_us\":%.3f,\"min_us\":%.3f,\"iters\":%d,\"busbw_gbs\":%.4f}\n",
         bytes, 1e6 * median, 1e6 * max_times[0], iters, busbw);
  fflush(stdout);
}

int main(int argc, char **argv) {
  CHECK(MPI_Init(&argc, &argv));
  CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  int rank, p;
  CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  CHECK(MPI_Comm_size(MPI_COMM_WORLD, &p));
  struct opts o;
  int bad = parse(argc, argv, &o);
  if (bad) {
    if (rank == 0 && bad > 0) printf("%s\n", USAGE);
    if (rank == 0 && bad < 0)
      fprintf(stderr, "bench_allreduce: bad argument '%s'; %s\n", bad_arg, USAGE);
    CHECK(MPI_Finalize());
    return bad > 0 ? 0 : 2;
  }
  unsigned long long largest = 0;
  for (int i = 0; i < o.nsizes; i++)
    if (o.sizes[i] > largest) largest = o.sizes[i];
  float *buf = malloc(largest);
  double *times = malloc(MAX_ITERS * sizeof *times);
  double *max_times = malloc(MAX_ITERS * sizeof *max_times);
  if (!buf || !times || !max_times) {
    fprintf(stderr, "bench_allreduce: rank %d: out of memory for %llu bytes\n", rank, largest);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const int nodes = count_nodes();
  const long nn = slurm_nnodes();
  for (int i = 0; i < o.nsizes; i++)
    bench_size(o.sizes[i], buf, times, max_times, &o, rank, p, nodes, nn);
  free(buf);
  free(times);
  free(max_times);
  CHECK(MPI_Finalize());
  return 0;
}
