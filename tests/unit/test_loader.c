/* The loader: every epoch a permutation, deterministic per (seed, epoch),
 * bit-identical when resumed mid-epoch, tail padding and drop_last. */
#include <stdlib.h>
#include <string.h>

#include "data/loader.h"
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

int main(void) {
  make_split();
  test_epochs();
  test_determinism_and_resume();
  image_split_free(&split);
  TU_DONE();
}
