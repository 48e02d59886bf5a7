/* comm.c — MPI start-up and collectives, every call checked. */
#include "comm/comm.h"

#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define MPI_TRY(call)                                                                              \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != MPI_SUCCESS) return mpi_fail(e, rc_, #call, __FILE__, __LINE__);                    \
  } while (0)

static int mpi_fail(struct ct_err *e, int rc, const char *call, const char *file, int line) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) strcpy(msg, "unknown MPI error");
  return err_set(e, CT_ERR_RUNTIME, "%s failed at %s:%d: %s", call, file, line, msg);
}

struct comm_mpi {
  MPI_Comm world, node;
  double timeout_s; /* run.comm_timeout_s: the longest wait of a collective */
  int rank;
  int has_watchdog;
  timer_t watchdog;           /* armed around each blocking collective */
  _Atomic(const char *) what; /* the collective it watches, for its message */
};

void comm_set_timeout(const struct comm *c, double seconds) {
  if (c->mpi && seconds > 0) c->mpi->timeout_s = seconds;
}

double comm_timeout(const struct comm *c) {
  return c->mpi ? c->mpi->timeout_s : COMM_TIMEOUT_DEFAULT_S;
}

/* Past the deadline: one line, then every rank ends (MPI_Abort), since the
 * ranks still answering would otherwise wait for the silent one for ever. */
static _Noreturn void timed_out(const struct comm *c, const char *what, double waited) {
  log_error("rank %d: %s waited %.0f s for the other ranks; ending the job (run.comm_timeout_s)",
            c->rank, what, waited);
  comm_abort(c, CT_ERR_RUNTIME);
}

/* ---- blocking collectives under a watchdog --------------------------------------------------
 * The floating-point sums stay blocking MPI_Allreduce: Open MPI's
 * non-blocking algorithms add the ranks in another order (measured on 3 and
 * 5 ranks), and the results must stay bitwise what they were. A per-comm
 * POSIX timer, armed for the call, ends the process past the deadline. It
 * fires on a thread of its own, which must not call MPI (the library runs
 * MPI_THREAD_FUNNELED), so it exits: mpirun (or srun --kill-on-bad-exit)
 * then ends the other ranks, as for any rank that dies. */
static void watchdog_fire(union sigval v) {
  struct comm_mpi *m = v.sival_ptr;
  log_error("rank %d: %s waited %.0f s for the other ranks; ending the job (run.comm_timeout_s)",
            m->rank, atomic_load(&m->what), m->timeout_s);
  _exit(CT_ERR_RUNTIME);
}

static int watchdog_create(struct comm_mpi *m, struct ct_err *e) {
  struct sigevent sev = {.sigev_notify = SIGEV_THREAD,
                         .sigev_notify_function = watchdog_fire,
                         .sigev_value = {.sival_ptr = m}};
  if (timer_create(CLOCK_MONOTONIC, &sev, &m->watchdog) != 0)
    return err_set(e, CT_ERR_RUNTIME, "timer_create failed at %s:%d: %s", __FILE__, __LINE__,
                   strerror(errno));
  m->has_watchdog = 1;
  return CT_OK;
}

/* Arms it for `what` (seconds > 0) or disarms it (0). */
static int watchdog_set(struct comm_mpi *m, const char *what, double seconds, struct ct_err *e) {
  if (what) atomic_store(&m->what, what);
  struct itimerspec its = {{0, 0},
                           {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)}};
  if (timer_settime(m->watchdog, 0, &its, NULL) != 0)
    return err_set(e, CT_ERR_RUNTIME, "timer_settime failed at %s:%d: %s", __FILE__, __LINE__,
                   strerror(errno));
  return CT_OK;
}

/* In-place MPI_SUM of n values of `type` with the blocking call, watched. */
static int allreduce_sum_watched(const struct comm *c, void *buf, int n, MPI_Datatype type,
                                 const char *what, struct ct_err *e) {
  if (watchdog_set(c->mpi, what, c->mpi->timeout_s, e)) return e->code;
  int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, type, MPI_SUM, c->mpi->world);
  if (watchdog_set(c->mpi, NULL, 0, e)) return e->code;
  if (rc != MPI_SUCCESS)
    return mpi_fail(e, rc, "MPI_Allreduce(MPI_IN_PLACE, buf, n, type, MPI_SUM, world)", __FILE__,
                    __LINE__);
  return CT_OK;
}

/* ---- non-blocking collectives completed with a deadline ---------------------------------- */
/* Seconds a wait polls without sleeping: a collective among ranks that keep
 * up ends within it, as fast as MPI_Wait's own busy polling. */
#define SPIN_S 1e-3

/* The pause before the next test: 1% of the wait so far (so a wait that ends
 * costs at most about 1% more than MPI_Wait, and Open MPI, which moves
 * non-blocking collectives only inside MPI calls, is called often enough),
 * from 10 us to 1 ms (a long wait for a late rank costs no core). */
static void pause_for(double waited) {
  long ns = (long)(waited * 1e7);
  ns = ns < 10000 ? 10000 : ns > 1000000 ? 1000000 : ns;
  struct timespec ts = {0, ns};
  nanosleep(&ts, NULL);
}

/* Completes the n requests, or ends the job once they have waited longer
 * than the timeout. Tested at once first: the fast path is MPI_Testall. */
static int wait_deadline(const struct comm *c, int n, MPI_Request *req, const char *what,
                         struct ct_err *e) {
  int done = 0;
  MPI_TRY(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
  const double start = MPI_Wtime(), limit = c->mpi->timeout_s;
  while (!done) {
    double waited = MPI_Wtime() - start;
    if (waited > limit) timed_out(c, what, waited);
    if (waited > SPIN_S) pause_for(waited);
    MPI_TRY(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
  }
  return CT_OK;
}

/* ---- MPI_Init under a watchdog -------------------------------------------------------------
 * MPI_Init_thread waits for the launcher and, in Open MPI's fence, for
 * every other rank, so one that never starts (or hangs before it) would
 * hold the rest for ever. Its deadline cannot be run.comm_timeout_s: main
 * starts MPI before any verb reads its arguments, and only `train` has a
 * configuration, which it reads after MPI has started (every rank then
 * reports a bad one the same way, and rank 0 alone prints it). So it is
 * CTRAIN_COMM_TIMEOUT_S from the environment, which a launcher can set for
 * every rank, else run.comm_timeout_s's default. A timer as for the
 * blocking sums, but its own: no rank is known yet, and its line names the
 * setting the deadline came from. */
#define INIT_TIMEOUT_ENV "CTRAIN_COMM_TIMEOUT_S"

struct init_watch {
  double seconds;
  const char *from;
};

static void init_watchdog_fire(union sigval v) {
  const struct init_watch *w = v.sival_ptr;
  log_error("MPI_Init waited %.0f s for the launcher and the other ranks; ending this process "
            "(%s)",
            w->seconds, w->from);
  _exit(CT_ERR_RUNTIME);
}

/* CTRAIN_COMM_TIMEOUT_S: seconds in run.comm_timeout_s's range. */
static int init_timeout(struct init_watch *w, struct ct_err *e) {
  const char *s = getenv(INIT_TIMEOUT_ENV);
  *w = (struct init_watch){COMM_TIMEOUT_DEFAULT_S,
                           "run.comm_timeout_s's default; " INIT_TIMEOUT_ENV " sets it"};
  if (!s) return CT_OK;
  char *end;
  errno = 0;
  double t = strtod(s, &end);
  if (end == s || *end || errno || !(t >= 1 && t <= 86400))
    return err_set(e, CT_ERR_USAGE, "%s=%s: expected seconds from 1 to 86400", INIT_TIMEOUT_ENV, s);
  *w = (struct init_watch){t, INIT_TIMEOUT_ENV};
  return CT_OK;
}

static int init_watched(int *argc, char ***argv, const struct init_watch *w, struct ct_err *e) {
  timer_t timer;
  struct sigevent sev = {.sigev_notify = SIGEV_THREAD,
                         .sigev_notify_function = init_watchdog_fire,
                         .sigev_value = {.sival_ptr = (void *)w}};
  if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0)
    return err_set(e, CT_ERR_RUNTIME, "timer_create failed at %s:%d: %s", __FILE__, __LINE__,
                   strerror(errno));
  struct itimerspec its = {
      {0, 0}, {(time_t)w->seconds, (long)((w->seconds - (double)(time_t)w->seconds) * 1e9)}};
  int rc = CT_OK;
  if (timer_settime(timer, 0, &its, NULL) != 0)
    rc = err_set(e, CT_ERR_RUNTIME, "timer_settime failed at %s:%d: %s", __FILE__, __LINE__,
                 strerror(errno));
  int provided,
      mrc = rc ? MPI_SUCCESS : MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  /* Deleting disarms it; the init_watch it points at is the caller's. */
  if (timer_delete(timer) != 0 && !rc)
    rc = err_set(e, CT_ERR_RUNTIME, "timer_delete failed at %s:%d: %s", __FILE__, __LINE__,
                 strerror(errno));
  if (mrc != MPI_SUCCESS)
    return mpi_fail(e, mrc, "MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)", __FILE__,
                    __LINE__);
  return rc;
}

int comm_init(struct comm *c, int *argc, char ***argv, struct ct_err *e) {
  memset(c, 0, sizeof *c);
  struct init_watch w;
  if (init_timeout(&w, e) || init_watched(argc, argv, &w, e)) return e->code;
  if (!(c->mpi = malloc(sizeof *c->mpi))) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  *c->mpi = (struct comm_mpi){
      .world = MPI_COMM_WORLD, .node = MPI_COMM_NULL, .timeout_s = COMM_TIMEOUT_DEFAULT_S};
  /* Errors come back as codes so that we can name the call, then abort. */
  MPI_TRY(MPI_Comm_set_errhandler(c->mpi->world, MPI_ERRORS_RETURN));
  MPI_TRY(MPI_Comm_rank(c->mpi->world, &c->rank));
  c->mpi->rank = c->rank;
  MPI_TRY(MPI_Comm_size(c->mpi->world, &c->size));
  /* One rank makes no collective calls, so it needs no timer (nor its thread). */
  if (c->size > 1 && watchdog_create(c->mpi, e)) return e->code;
  MPI_TRY(MPI_Comm_split_type(c->mpi->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                              &c->mpi->node));
  MPI_TRY(MPI_Comm_rank(c->mpi->node, &c->local_rank));
  MPI_TRY(MPI_Comm_size(c->mpi->node, &c->local_size));
  return CT_OK;
}

void comm_finalize(struct comm *c) {
  if (c->mpi && c->mpi->node != MPI_COMM_NULL) MPI_Comm_free(&c->mpi->node);
  if (c->mpi && c->mpi->has_watchdog) timer_delete(c->mpi->watchdog);
  free(c->mpi);
  c->mpi = NULL;
  MPI_Finalize();
}

_Noreturn void comm_abort(const struct comm *c, int code) {
  MPI_Abort(c->mpi ? c->mpi->world : MPI_COMM_WORLD, code);
  exit(code);
}

int comm_allreduce_sum_f64(const struct comm *c, double *buf, int n, struct ct_err *e) {
  if (c->size == 1) return CT_OK;
  return allreduce_sum_watched(c, buf, n, MPI_DOUBLE, "MPI_Allreduce (sum)", e);
}

int comm_allreduce_avg_f32(const struct comm *c, float *buf, size_t n, struct ct_err *e) {
  if (c->size == 1) return CT_OK;
  for (size_t off = 0; off < n; off += INT_MAX) {
    int cnt = (int)(n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX);
    if (allreduce_sum_watched(c, buf + off, cnt, MPI_FLOAT, "MPI_Allreduce (gradient mean)", e))
      return e->code;
  }
  float inv = 1.0f / (float)c->size;
  for (size_t i = 0; i < n; i++)
    buf[i] *= inv;
  return CT_OK;
}

int comm_bcast(const struct comm *c, void *buf, size_t bytes, int root, struct ct_err *e) {
  if (c->size == 1) return CT_OK;
  char *p = buf;
  for (size_t off = 0; off < bytes; off += INT_MAX) {
    int cnt = (int)(bytes - off < (size_t)INT_MAX ? bytes - off : (size_t)INT_MAX);
    MPI_Request req;
    MPI_TRY(MPI_Ibcast(p + off, cnt, MPI_BYTE, root, c->mpi->world, &req));
    if (wait_deadline(c, 1, &req, "MPI_Bcast", e)) return e->code;
  }
  return CT_OK;
}

int comm_any(const struct comm *c, int flag, int *any, struct ct_err *e) {
  *any = flag;
  if (c->size == 1) return CT_OK;
  MPI_Request req;
  MPI_TRY(MPI_Iallreduce(&flag, any, 1, MPI_INT, MPI_LOR, c->mpi->world, &req));
  return wait_deadline(c, 1, &req, "MPI_Allreduce (any rank stopping)", e);
}

int comm_gather_u64(const struct comm *c, const uint64_t *mine, int n, uint64_t *all,
                    struct ct_err *e) {
  if (c->size == 1) {
    memcpy(all, mine, (size_t)n * sizeof *mine);
    return CT_OK;
  }
  MPI_Request req;
  MPI_TRY(MPI_Igather(mine, n, MPI_UINT64_T, all, n, MPI_UINT64_T, 0, c->mpi->world, &req));
  return wait_deadline(c, 1, &req, "MPI_Gather", e);
}

#define HOST(names, r) ((names) + (size_t)(r)*MPI_MAX_PROCESSOR_NAME)

/* Whether rank r's host is the host of an earlier rank. */
static int host_seen(const char *names, int r) {
  for (int q = 0; q < r; q++)
    if (!strcmp(HOST(names, q), HOST(names, r))) return 1;
  return 0;
}

/* " HOST (ranks 0-1,4)": each run of consecutive ranks on the host. */
static void placement_host(const char *names, int size, int first, char *out, size_t len) {
  const char *host = HOST(names, first);
  int count = 0;
  for (int r = first; r < size; r++)
    count += !strcmp(HOST(names, r), host);
  size_t at = (size_t)snprintf(out, len, " %s (rank%s ", host, count > 1 ? "s" : "");
  const char *sep = "";
  for (int r = first; r < size && at < len; r++) {
    if (strcmp(HOST(names, r), host) != 0) continue;
    int last = r;
    while (last + 1 < size && !strcmp(HOST(names, last + 1), host))
      last++;
    int w = last > r ? snprintf(out + at, len - at, "%s%d-%d", sep, r, last)
                     : snprintf(out + at, len - at, "%s%d", sep, r);
    at += w > 0 ? (size_t)w : 0;
    sep = ",";
    r = last;
  }
  if (at < len) snprintf(out + at, len - at, ")");
}

static void placement_format(const char *names, int size, char *out, size_t len) {
  int nodes = 0;
  for (int r = 0; r < size; r++)
    nodes += !host_seen(names, r);
  size_t at = (size_t)snprintf(out, len, "%d node%s:", nodes, nodes == 1 ? "" : "s");
  for (int r = 0, listed = 0; r < size; r++) {
    if (host_seen(names, r)) continue;
    char one[512];
    placement_host(names, size, r, one, sizeof one);
    /* Keep room for ", ..." should a later host not fit. */
    if (at + strlen(one) + 2 + 6 > len || strlen(one) + 1 >= sizeof one) {
      snprintf(out + at, len - at, ", ...");
      return;
    }
    at += (size_t)snprintf(out + at, len - at, "%s%s", listed++ ? "," : "", one);
  }
}

int comm_placement(const struct comm *c, char *out, size_t len, struct ct_err *e) {
  char mine[MPI_MAX_PROCESSOR_NAME] = {0};
  int n = 0;
  out[0] = 0;
  MPI_TRY(MPI_Get_processor_name(mine, &n));
  char *all = NULL;
  if (c->rank == 0 && !(all = malloc((size_t)c->size * MPI_MAX_PROCESSOR_NAME)))
    return err_set(e, CT_ERR_RUNTIME, "out of memory");
  int rc = CT_OK;
  if (c->size == 1) {
    memcpy(all, mine, sizeof mine);
  } else {
    MPI_Request req;
    int mrc = MPI_Igather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME,
                          MPI_CHAR, 0, c->mpi->world, &req);
    rc = mrc != MPI_SUCCESS ? mpi_fail(e, mrc, "MPI_Igather", __FILE__, __LINE__)
                            : wait_deadline(c, 1, &req, "MPI_Gather (host names)", e);
  }
  if (!rc && c->rank == 0) placement_format(all, c->size, out, len);
  free(all);
  return rc;
}

void comm_reduce_sum_cb(void *user, double *buf, int n) {
  const struct comm *c = user;
  struct ct_err err = {0}, *e = &err;
  int rc = comm_allreduce_sum_f64(c, buf, n, e);
  if (rc) {
    log_error("sync batch norm: %s", err.msg);
    comm_abort(c, rc);
  }
}

int comm_buckets_init(struct comm_buckets *b, const struct comm *c, float *buf, size_t len,
                      size_t bucket_elems, struct ct_err *e) {
  memset(b, 0, sizeof *b);
  b->c = c;
  b->buf = buf;
  b->len = len;
  /* MPI counts are int; a bucket never needs to be larger. */
  b->bucket = bucket_elems < 1 ? 1 : bucket_elems > INT_MAX ? INT_MAX : bucket_elems;
  b->cap = (int)((len + b->bucket - 1) / b->bucket) + 1;
  b->req = malloc((size_t)b->cap * sizeof(MPI_Request));
  if (!b->req) return err_set(e, CT_ERR_RUNTIME, "out of memory for %d all-reduce buckets", b->cap);
  return CT_OK;
}

/* Starts one bucket; the first failure is kept for comm_buckets_wait. */
static int bucket_start(struct comm_buckets *b, size_t end) {
  struct ct_err *e = &b->err;
  int cnt = (int)(end - b->started);
  MPI_TRY(MPI_Iallreduce(MPI_IN_PLACE, b->buf + b->started, cnt, MPI_FLOAT, MPI_SUM,
                         b->c->mpi->world, (MPI_Request *)b->req + b->nreq));
  b->nreq++;
  b->started = end;
  return CT_OK;
}

static int bucket_progress(struct comm_buckets *b) {
  struct ct_err *e = &b->err;
  int done;
  MPI_TRY(MPI_Testall(b->nreq, (MPI_Request *)b->req, &done, MPI_STATUSES_IGNORE));
  return CT_OK;
}

void comm_buckets_ready(void *user, size_t prefix) {
  struct comm_buckets *b = user;
  if (b->c->size == 1 || b->err.code) return;
  while (prefix - b->started >= b->bucket || (prefix == b->len && b->started < b->len)) {
    size_t end = prefix - b->started >= b->bucket ? b->started + b->bucket : prefix;
    if (bucket_start(b, end)) return;
  }
  /* Open MPI moves non-blocking collectives forward only inside MPI calls:
   * testing here, between backward's nodes, is what makes them overlap. */
  if (b->nreq > 0) bucket_progress(b);
}

int comm_buckets_wait(struct comm_buckets *b, struct ct_err *e) {
  if (b->c->size == 1) return CT_OK;
  if (b->err.code) {
    *e = b->err;
    return e->code;
  }
  comm_buckets_ready(b, b->len);
  if (b->err.code) {
    *e = b->err;
    return e->code;
  }
  if (wait_deadline(b->c, b->nreq, (MPI_Request *)b->req, "MPI_Waitall (gradient buckets)", e))
    return e->code;
  b->nreq = 0;
  b->started = 0;
  float inv = 1.0f / (float)b->c->size;
  for (size_t i = 0; i < b->len; i++)
    b->buf[i] *= inv;
  return CT_OK;
}

void comm_buckets_free(struct comm_buckets *b) {
  free(b->req);
  b->req = NULL;
}
