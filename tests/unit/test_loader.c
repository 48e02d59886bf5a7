/* The loader: every epoch a permutation, deterministic per (seed, epoch),
 * bit-identical when resumed mid-epoch, tail padding and drop_last; the
 * resident mode's batches, made by the backend's augment op, are the
 * threaded loader's bit for bit. */
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

/* All batches of an epoch from first_batch on: xs[b], ys[b], returns count. */
static long run_epoch(struct loader *l, long epoch, long first, float *xs, int32_t *ys, int *rows) {
  loader_start_epoch(l, epoch, first);
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
  loader_start_epoch(l2, 9, 0);
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
  loader_start_epoch(l2, 1, 0);
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

int main(void) {
  make_split();
  test_resident(1);
  test_resident(0);
  test_epochs();
  test_determinism_and_resume();
  image_split_free(&split);
  TU_DONE();
}
