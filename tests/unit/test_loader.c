/* The loader: every epoch a permutation, deterministic per (seed, epoch),
 * bit-identical when resumed mid-epoch, tail padding and drop_last; the
 * resident mode's batches, made by the backend's augment op, are the
 * threaded loader's bit for bit; every rank of a sharded loader, the last
 * included, fetches and hands out exactly its rows of the epoch. */
#include <stdlib.h>
#include <string.h>

#include "data/loader.h"
#include "kernels/ops.h"
#include "testutil.h"

enum { N = 50, B = 8, IMG = 3 * 32 * 32 };

static struct image_split split;

/* Image i is filled with the value i, so a plain batch row tells its index. */
static void make_split(void) {
  struct ct_err e;
  CT_CHECK(image_split_alloc(&split, N, &e) == 0);
  for (int i = 0; i < N; i++) {
    memset(split.images + (size_t)i * IMG, i, IMG);
    split.labels[i] = i % 10;
  }
}

static struct loader_cfg cfg_plain(int shuffle, int drop_last) {
  struct loader_cfg c = {.batch = B, .shuffle = shuffle, .drop_last = drop_last, .seed = 42};
  c.aug = augment_defaults();
  return c;
}

static struct loader_cfg cfg_augmented(void) {
  struct loader_cfg c = cfg_plain(1, 0);
  c.aug.flags = AUG_CROP | AUG_FLIP | AUG_ROTATE | AUG_CUTOUT;
  c.normalize = 1;
  for (int k = 0; k < 3; k++)
    c.mean[k] = 0.5, c.std[k] = 0.25;
  return c;
}

/* loader_begin_epoch, which on an unsharded loader cannot fail. */
static void start_epoch(struct loader *l, long epoch, long first) {
  struct ct_err e;
  TU_CHECK(loader_begin_epoch(l, epoch, first, &e) == CT_OK);
}

/* All batches of an epoch from first_batch on: xs[b], ys[b], returns count. */
static long run_epoch(struct loader *l, long epoch, long first, float *xs, int32_t *ys, int *rows) {
  start_epoch(l, epoch, first);
  long b = 0;
  for (int r; (r = loader_next(l, xs + (size_t)b * B * IMG, ys + (size_t)b * B)) > 0; b++)
    rows[b] = r;
  return b;
}

static void test_epochs(void) {
  struct ct_err e;
  struct loader *l;
  struct loader_cfg c = cfg_plain(1, 0);
  TU_CHECK(loader_create(&l, &split, &c, &e) == 0);
  TU_CHECK(loader_batches(l) == 7);
  static float xs[7 * B * IMG];
  static int32_t ys[7 * B];
  int rows[7], order0[N], order1[N];
  TU_CHECK(loader_next(l, xs, ys) == 0); /* no epoch started yet */
  for (int epoch = 0; epoch < 2; epoch++) {
    TU_CHECK(run_epoch(l, epoch, 0, xs, ys, rows) == 7);
    TU_CHECK(rows[5] == B && rows[6] == N - 6 * B);
    int seen[N] = {0};
    for (int k = 0; k < N; k++) {
      int idx = (int)lrintf(xs[(size_t)k * IMG + 1000] * 255.0f);
      TU_CHECK(idx >= 0 && idx < N && ys[k] == idx % 10);
      if (idx >= 0 && idx < N) seen[idx]++;
      (epoch ? order1 : order0)[k] = idx;
    }
    for (int i = 0; i < N; i++)
      TU_CHECK(seen[i] == 1);
    /* Padded tail rows: label -1, zero pixels. */
    for (int k = N; k < 7 * B; k++)
      TU_CHECK(ys[k] == -1 && xs[(size_t)k * IMG + 5] == 0.0f);
    TU_CHECK(loader_next(l, xs, ys) == 0);
  }
  TU_CHECK(memcmp(order0, order1, sizeof order0) != 0);
  loader_free(l);

  c = cfg_plain(0, 1);
  TU_CHECK(loader_create(&l, &split, &c, &e) == 0);
  TU_CHECK(loader_batches(l) == 6);
  TU_CHECK(run_epoch(l, 3, 0, xs, ys, rows) == 6);
  for (int b = 0; b < 6; b++)
    TU_CHECK(rows[b] == B);
  for (int k = 0; k < 6 * B; k++)
    TU_CHECK(lrintf(xs[(size_t)k * IMG] * 255.0f) == k);
  loader_free(l);
}

static void test_determinism_and_resume(void) {
  struct ct_err e;
  struct loader *l1, *l2;
  struct loader_cfg c = cfg_augmented();
  TU_CHECK(loader_create(&l1, &split, &c, &e) == 0);
  TU_CHECK(loader_create(&l2, &split, &c, &e) == 0);
  static float a[7 * B * IMG], b[7 * B * IMG];
  static int32_t ya[7 * B], yb[7 * B];
  int ra[7], rb[7];
  TU_CHECK(run_epoch(l1, 5, 0, a, ya, ra) == 7);
  TU_CHECK(run_epoch(l2, 5, 0, b, yb, rb) == 7);
  TU_CHECK(!memcmp(a, b, sizeof a) && !memcmp(ya, yb, sizeof ya));

  /* Resume at batch 3: the same batches 3.. bit for bit. */
  TU_CHECK(run_epoch(l2, 5, 3, b, yb, rb) == 4);
  TU_CHECK(!memcmp(a + (size_t)3 * B * IMG, b, (size_t)4 * B * IMG * sizeof(float)));
  TU_CHECK(!memcmp(ya + 3 * B, yb, (size_t)4 * B * sizeof(int32_t)));

  /* Abandon an epoch half way, then restart: no stale batches leak in. */
  start_epoch(l2, 9, 0);
  TU_CHECK(loader_next(l2, b, yb) == B);
  TU_CHECK(run_epoch(l2, 5, 0, b, yb, rb) == 7);
  TU_CHECK(!memcmp(a, b, sizeof a));

  /* Another seed, another epoch: different batches. */
  TU_CHECK(run_epoch(l2, 6, 0, b, yb, rb) == 7);
  TU_CHECK(memcmp(a, b, sizeof a) != 0);
  loader_free(l2);
  c.seed = 43;
  TU_CHECK(loader_create(&l2, &split, &c, &e) == 0);
  TU_CHECK(run_epoch(l2, 5, 0, b, yb, rb) == 7);
  TU_CHECK(memcmp(a, b, sizeof a) != 0);
  /* Freed mid-epoch with the thread busy or waiting: clean shutdown. */
  start_epoch(l2, 1, 0);
  loader_free(l2);
  loader_free(l1);
  loader_free(NULL);

  c.batch = 0;
  TU_CHECK(loader_create(&l1, &split, &c, &e) == CT_ERR_USAGE && l1 == NULL);
  c.batch = B;
  c.std[1] = 0.0;
  TU_CHECK(loader_create(&l1, &split, &c, &e) == CT_ERR_USAGE);
}

static int fetch_split(void *user, const long *rows, long count, uint8_t *images, int32_t *labels,
                       struct ct_err *e) {
  (void)e;
  const struct image_split *sp = user;
  for (long i = 0; i < count; i++) {
    memcpy(images + (size_t)i * IMG, sp->images + (size_t)rows[i] * IMG, IMG);
    labels[i] = sp->labels[rows[i]];
  }
  return CT_OK;
}

/* Rank 1 of 3 over two epochs (the second resumed at batch 1), with and
 * without drop_last (a short last batch on this rank). */
static void test_resident(int drop_last) {
  struct ct_err e;
  struct loader *threaded, *resident;
  struct loader_cfg c = cfg_augmented();
  c.drop_last = drop_last;
  c.rank = 1;
  c.ranks = 3;
  TU_CHECK(loader_create_sharded(&threaded, N, &c, fetch_split, &split, &e) == 0);
  c.resident = 1;
  TU_CHECK(loader_create_sharded(&resident, N, &c, fetch_split, &split, &e) == 0);
  const struct ops_backend *ops = ops_cpu();
  const struct ops_ctx ctx = {.threads = 2};
  const struct augment_params a = augment_params(&c.aug, c.mean, c.std, 0);
  static float want[B * IMG], got[B * IMG];
  int32_t want_y[B], got_y[B];
  long batches = 0;
  for (long epoch = 0; epoch < 2; epoch++) {
    long first = epoch; /* 0, then a resume at batch 1 */
    TU_CHECK(loader_begin_epoch(threaded, epoch, first, &e) == 0);
    TU_CHECK(loader_begin_epoch(resident, epoch, first, &e) == 0);
    const uint8_t *images;
    const int32_t *labels;
    long from, count;
    unsigned long gen;
    loader_shard(resident, &images, &labels, &from, &count, &gen);
    TU_CHECK(from == first * B && gen == (unsigned long)epoch + 1);
    struct loader_batch b;
    int rows;
    while ((rows = loader_next(threaded, want, want_y)) > 0) {
      TU_CHECK(loader_take(resident, &b) == 1 && b.valid == rows);
      struct augment_params ab = a;
      ab.key = b.key;
      memset(got, 0xff, sizeof got);
      ops->augment(&ctx, &ab, B, b.valid, images + (size_t)b.index * B * IMG,
                   labels + (size_t)b.index * B, b.pos0, b.pos_step, got, got_y);
      TU_CHECK(memcmp(got, want, sizeof got) == 0 && memcmp(got_y, want_y, sizeof got_y) == 0);
      batches++;
    }
    TU_CHECK(loader_take(resident, &b) == 0);
  }
  /* 50 rows over 3 ranks: 3 global batches of 24 (drop_last: 2), then resumed at 1 */
  TU_CHECK(batches == (drop_last ? 2 + 1 : 3 + 2));
  loader_free(threaded);
  loader_free(resident);
}

/* What a sharded loader asked its fetch for: the last call's rows. */
struct fetch_log {
  long rows[N];
  long count, calls;
};

static int fetch_logged(void *user, const long *rows, long count, uint8_t *images, int32_t *labels,
                        struct ct_err *e) {
  struct fetch_log *f = user;
  f->calls++;
  f->count = count;
  TU_CHECK(count >= 0 && count <= N);
  if (count < 0 || count > N) return err_set(e, CT_ERR_RUNTIME, "fetch of %ld rows", count);
  memcpy(f->rows, rows, (size_t)count * sizeof *rows);
  return fetch_split(&split, rows, count, images, labels, e);
}

/* The ids (image i holds the value i) of the valid rows of the loader's
 * batches from the current one to the epoch's end, in order, into ids, and
 * each batch's loader_next count into counts; padding must be zeros with
 * label -1. Returns the batches. */
static long drain_ids(struct loader *l, int batch, long *ids, int *counts) {
  float *x = malloc((size_t)batch * IMG * sizeof *x);
  int32_t *y = malloc((size_t)batch * sizeof *y);
  CT_CHECK(x && y);
  long b = 0, k = 0;
  for (int rows; (rows = loader_next(l, x, y)) > 0; b++) {
    TU_CHECK(b < N && k + rows <= N);
    if (b >= N || k + rows > N) break;
    counts[b] = rows;
    for (int i = 0; i < batch; i++) {
      long id = lrintf(x[(size_t)i * IMG + 7] * 255.0f);
      if (i < rows) {
        TU_CHECK(id >= 0 && id < N && y[i] == id % 10);
        ids[k++] = id;
      } else {
        TU_CHECK(y[i] == -1 && id == 0);
      }
    }
  }
  free(x);
  free(y);
  return b;
}

/* loader.h's contract for n rows over `ranks` ranks, for every rank, the last
 * one included: rank r fetches exactly the rows at positions r, r + ranks, ...
 * of the epoch's permutation (under drop_last only those of the kept global
 * batches), in batch order; its batches hand them out `batch` at a time, the
 * last one partial and padded, and a global batch where it has no row ends
 * its epoch. The permutation comes from a one-rank loader with the global
 * batch (another code path: perm[pos] rather than fetched rows) and is the
 * identity without shuffle. Over the ranks, every row the epoch keeps is
 * fetched exactly once, and only those. */
static void check_shards(long n, int ranks, int shuffle, int drop_last) {
  enum { SB = 4 };
  struct ct_err e;
  const long global = (long)SB * ranks;
  const long nb = drop_last ? n / global : (n + global - 1) / global;
  const long used = drop_last ? nb * global : n; /* positions the epoch keeps */
  struct image_split sub = {.n = (int)n, .images = split.images, .labels = split.labels};
  struct loader_cfg c = cfg_plain(shuffle, drop_last);
  c.batch = (int)global;
  struct loader *one, *l[3], *res[3];
  TU_CHECK(loader_create(&one, &sub, &c, &e) == 0);
  c.batch = SB;
  c.ranks = ranks;
  static struct fetch_log logs[3];
  for (int r = 0; r < ranks; r++) {
    logs[r] = (struct fetch_log){0};
    c.rank = r;
    TU_CHECK(loader_create_sharded(&l[r], n, &c, fetch_logged, &logs[r], &e) == 0);
    c.resident = 1;
    TU_CHECK(loader_create_sharded(&res[r], n, &c, fetch_split, &split, &e) == 0);
    c.resident = 0;
    TU_CHECK(loader_batches(l[r]) == nb);
  }
  for (long epoch = 0; epoch < 2; epoch++) {
    long perm[N], ids[N];
    int counts[N];
    start_epoch(one, epoch, 0);
    TU_CHECK(drain_ids(one, (int)global, perm, counts) == nb);
    for (long p = 0; p < used && !shuffle; p++)
      TU_CHECK(perm[p] == p);
    int seen[N] = {0}, kept[N] = {0};
    for (int r = 0; r < ranks; r++) {
      long want[N], wantc = 0;
      for (long j = 0; j * ranks + r < used; j++)
        want[wantc++] = perm[j * ranks + r];
      const long calls = logs[r].calls, rest = wantc > SB ? wantc - SB : 0;
      TU_CHECK(loader_begin_epoch(l[r], epoch, 0, &e) == 0);
      /* Without shuffle every epoch has the same rows: fetched once. */
      TU_CHECK(logs[r].calls == calls + (shuffle || epoch == 0));
      TU_CHECK(logs[r].count == wantc && !memcmp(logs[r].rows, want, (size_t)wantc * sizeof *want));
      const uint8_t *images;
      const int32_t *labels;
      long from, count;
      unsigned long gen;
      loader_shard(l[r], &images, &labels, &from, &count, &gen);
      TU_CHECK(from == 0 && count == wantc);
      for (long j = 0; j < count && j < wantc; j++)
        TU_CHECK(images[(size_t)j * IMG + 3] == want[j] && labels[j] == want[j] % 10);
      /* Batches with at least one of this rank's rows; only the last partial. */
      const long full = wantc / SB, tail = wantc % SB;
      const long batches = drain_ids(l[r], SB, ids, counts);
      TU_CHECK(batches == full + (tail > 0));
      for (long b = 0; b < batches && b < N; b++)
        TU_CHECK(counts[b] == (b < full ? SB : tail));
      TU_CHECK(!memcmp(ids, want, (size_t)wantc * sizeof *want));
      TU_CHECK(drain_ids(l[r], SB, ids, counts) == 0);
      /* The resident mode's batch list says the same. */
      struct loader_batch lb;
      TU_CHECK(loader_begin_epoch(res[r], epoch, 0, &e) == 0);
      for (long b = 0; b < batches; b++)
        TU_CHECK(loader_take(res[r], &lb) == 1 && lb.index == b &&
                 lb.valid == (b < full ? SB : tail) && lb.pos0 == (uint64_t)(b * SB * ranks + r) &&
                 lb.pos_step == (uint64_t)ranks);
      TU_CHECK(loader_take(res[r], &lb) == 0);
      for (long j = 0; j < wantc; j++)
        seen[want[j]]++;
      /* Resumed at batch 1: shuffled, the rows of batches 1.. are fetched
       * again, to their places; unshuffled, the epoch's rows are still there. */
      TU_CHECK(loader_begin_epoch(l[r], epoch, 1, &e) == 0);
      loader_shard(l[r], &images, &labels, &from, &count, &gen);
      if (shuffle)
        TU_CHECK(from == SB && count == rest && logs[r].count == rest &&
                 !memcmp(logs[r].rows, want + SB, (size_t)rest * sizeof *want));
      else
        TU_CHECK(from == 0 && count == wantc);
      TU_CHECK(drain_ids(l[r], SB, ids, counts) == (batches > 1 ? batches - 1 : 0));
      TU_CHECK(!memcmp(ids, want + SB, (size_t)rest * sizeof *want));
    }
    for (long p = 0; p < used; p++)
      kept[perm[p]]++;
    /* Without drop_last the epoch keeps every row once; with it, unshuffled,
     * exactly rows [0, used) (perm is the identity). */
    for (long i = 0; i < n; i++)
      TU_CHECK(seen[i] == kept[i] && kept[i] == (drop_last ? kept[i] != 0 : 1));
    long total = 0;
    for (long i = 0; i < n; i++)
      total += seen[i];
    TU_CHECK(total == used);
  }
  for (int r = 0; r < ranks; r++) {
    loader_free(l[r]);
    loader_free(res[r]);
  }
  loader_free(one);
}

/* Sizes that 1, 2 and 3 ranks of 4-row batches mostly do not divide: the
 * last global batch leaves the last rank (or all but rank 0) short or
 * empty. 36 divides for every world size, as the control. */
static void test_shards(void) {
  const long sizes[] = {36, 37, 41, 46, 47, 50};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    for (int ranks = 1; ranks <= 3; ranks++)
      for (int shuffle = 0; shuffle < 2; shuffle++)
        for (int drop_last = 0; drop_last < 2; drop_last++) {
          int before = tu_failures;
          check_shards(sizes[i], ranks, shuffle, drop_last);
          if (tu_failures != before)
            fprintf(stderr, "  in: n %ld, %d ranks, shuffle %d, drop_last %d\n", sizes[i], ranks,
                    shuffle, drop_last);
        }
}

int main(void) {
  make_split();
  test_resident(1);
  test_resident(0);
  test_epochs();
  test_determinism_and_resume();
  test_shards();
  image_split_free(&split);
  TU_DONE();
}
