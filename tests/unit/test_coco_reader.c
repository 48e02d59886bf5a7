/* The captioning data layer, reading side, on the synthetic set as
 * prepare_coco imports it: shards cover every caption once with exactly the
 * features they reference, the epoch order is a pure function of (seed,
 * epoch) and looks uniform, batches are the rows the order names (the tail
 * padded and masked), and a damaged prepared file is one line naming the
 * file and the problem. The writing side is test_coco.c. */
#include "coco_fixtures.h"
#include "data/coco.h"
#include "data/prepare_coco.h"

/* --- shards, epochs, batches ------------------------------------------------- */

static void test_shards(const char *out) {
  struct ct_err e = {0};
  const char *splits[2] = {"train", "val"};
  char p[512], cn[32], in[32];
  for (int sp = 0; sp < 2; sp++) {
    join(p, syn, "coco2014_captions.h5");
    snprintf(cn, sizeof cn, "%s_captions", splits[sp]);
    snprintf(in, sizeof in, "%s_image_idxs", splits[sp]);
    struct arr c = h5_get(p, cn, H5T_NATIVE_INT32), x = h5_get(p, in, H5T_NATIVE_INT32);
    join(p, syn, sp ? "val2014_vgg16_fc7_pca.h5" : "train2014_vgg16_fc7_pca.h5");
    struct arr ft = h5_get(p, "features", H5T_NATIVE_FLOAT);
    long n = (long)c.dims[0];
    for (int world = 1; world <= 3; world++) {
      int *seen = calloc((size_t)n, sizeof *seen);
      for (int rank = 0; rank < world; rank++) {
        struct coco_shard s;
        TU_CHECK(coco_read_shard(out, splits[sp], rank, world, &s, &e) == 0);
        int *refs = calloc((size_t)(s.n_images + 1), sizeof *refs);
        for (long i = 0; i < s.n; i++) {
          long r = rank + i * world;
          TU_CHECK(r < n && !memcmp(s.captions + i * T, ints(&c) + r * T, T * 4));
          seen[r]++;
          int32_t li = s.image_idxs[i];
          TU_CHECK(li >= 0 && li < s.n_images);
          refs[li]++;
          TU_CHECK(s.image_rows[li] == ints(&x)[r]);
          TU_CHECK(
              !memcmp(s.features + (size_t)li * D, floats(&ft) + (size_t)ints(&x)[r] * D, D * 4));
        }
        /* Only referenced rows, each once, in file order. */
        for (long k = 0; k < s.n_images; k++) {
          TU_CHECK(refs[k] > 0);
          TU_CHECK(k == 0 || s.image_rows[k] > s.image_rows[k - 1]);
        }
        free(refs);
        coco_shard_free(&s);
      }
      for (long r = 0; r < n; r++)
        TU_CHECK(seen[r] == 1);
      free(seen);
    }
    arr_free(&c);
    arr_free(&x);
    arr_free(&ft);
  }
  /* More ranks than captions: the surplus ranks get empty shards. */
  struct coco_shard s;
  TU_CHECK(coco_read_shard(out, "val", NVA * PER, NVA * PER + 5, &s, &e) == 0 && s.n == 0 &&
           s.n_images == 0);
  coco_shard_free(&s);
  TU_CHECK(coco_read_shard(out, "test", 0, 1, &s, &e) == CT_ERR_USAGE && names(&e, "'test'"));
  TU_CHECK(coco_read_shard(out, "train", 2, 2, &s, &e) == CT_ERR_USAGE && names(&e, "rank 2"));
}

static int is_perm(const long *p, long n) {
  char *hit = calloc((size_t)n, 1);
  int ok = 1;
  for (long i = 0; i < n; i++) {
    ok &= p[i] >= 0 && p[i] < n && !hit[p[i]];
    if (p[i] >= 0 && p[i] < n) hit[p[i]] = 1;
  }
  free(hit);
  return ok;
}

/* The count of the most frequent value of (p[i + 1] - p[i]) mod n (step = 1)
 * or of (p[i] - i) mod n (step = 0). For a uniform permutation each value
 * turns up about Poisson(1) times: P(count >= 12) = 7.7e-10 for one value,
 * under 1e-6 over all n = 1000 values. A rotation (i + s) % n scores n - 1
 * on steps and n on offsets; any i * a + s mod n scores n - 1 on steps. */
static long most_common_difference(const long *p, long n, int step) {
  long *count = calloc((size_t)n, sizeof *count), best = 0;
  CT_CHECK(count);
  for (long i = 0; i + step < n; i++) {
    long d = ((step ? p[i + 1] - p[i] : p[i] - i) % n + n) % n;
    if (++count[d] > best) best = count[d];
  }
  free(count);
  return best;
}

/* Pearson's statistic over `cells` cells, all expected `expect` times. */
static double pearson(const long *observed, long cells, double expect) {
  double x = 0;
  for (long i = 0; i < cells; i++)
    x += (observed[i] - expect) * (observed[i] - expect) / expect;
  return x;
}

static void test_permutation(void) {
  enum { N = 1000 };
  static long a[N], b[N], c[N], d[N];
  coco_permutation(a, N, 5, 0);
  coco_permutation(b, N, 5, 0);
  coco_permutation(c, N, 5, 1);
  coco_permutation(d, N, 6, 0);
  TU_CHECK(is_perm(a, N) && is_perm(c, N) && is_perm(d, N));
  TU_CHECK(!memcmp(a, b, sizeof a));
  TU_CHECK(memcmp(a, c, sizeof a) && memcmp(a, d, sizeof a));
  long fixed = 0;
  for (long i = 0; i < N; i++)
    fixed += a[i] == i;
  TU_CHECK(fixed < 20);
  /* No shift, rotation or other affine map: see most_common_difference. */
  const long *perms[] = {a, c, d};
  for (int k = 0; k < 3; k++) {
    long steps = most_common_difference(perms[k], N, 1);
    long offsets = most_common_difference(perms[k], N, 0);
    TU_CHECK(steps < 12 && offsets < 12);
    if (steps >= 12 || offsets >= 12)
      fprintf(stderr, "permutation %d: one step %ld times, one offset %ld times\n", k, steps,
              offsets);
  }

  /* Uniformity over K = 8 elements, two-sided chi-square tests at alpha =
   * 1e-3 (5e-4 a tail; too even is as suspect as too uneven: seed-cycled
   * rotations fill the cells exactly). Fixed seeds: deterministic, and a
   * correct shuffle fails with probability 1e-3 once, not per run.
   * - Where each element lands, over seeds 1000..: pos[i][j] counts p[i] ==
   *   j. Every row and column sums to SEEDS, so the cells are not
   *   independent: a uniform permutation matrix has covariance P / (K - 1),
   *   P the projector onto matrices with zero row and column sums (rank
   *   (K-1)^2), so Pearson's X over the K^2 cells is K / (K - 1) times a
   *   chi-square with (K-1)^2 = 49 degrees of freedom (checked by
   *   simulation: mean 50.3, variance 101 over 300 draws; 49 and 98 in
   *   theory). chi2(49) quantiles: 22.79 at 5e-4, 88.23 at 1 - 5e-4.
   * - The first two elements, over epochs 0.. of one seed: (p[0], p[1]) is
   *   uniform over K (K - 1) = 56 ordered pairs, a multinomial, so X is
   *   chi-square with 55 degrees of freedom: 26.87 at 5e-4, 96.16 at
   *   1 - 5e-4. A random rotation passes the first test (each element lands
   *   uniformly) but not this one: it puts p[1] = p[0] + 1. */
  enum { K = 8, SEEDS = 4000 };
  static long pos[K * K], pair[K * K];
  long p[K];
  for (int s = 0; s < SEEDS; s++) {
    coco_permutation(p, K, 1000 + (uint64_t)s, 0);
    TU_CHECK(is_perm(p, K));
    for (int i = 0; i < K; i++)
      pos[i * K + p[i]]++;
    coco_permutation(p, K, 77, s);
    TU_CHECK(is_perm(p, K));
    pair[p[0] * K + p[1]]++;
  }
  const double x_pos = pearson(pos, K * K, (double)SEEDS / K) * (K - 1) / K;
  long off[K * (K - 1)], m = 0; /* the off-diagonal cells; p[0] == p[1] is impossible */
  for (int i = 0; i < K; i++)
    for (int j = 0; j < K; j++)
      if (i != j) off[m++] = pair[i * K + j];
  const double x_pair = pearson(off, m, (double)SEEDS / (K * (K - 1)));
  TU_CHECK(x_pos > 22.79 && x_pos < 88.23);
  TU_CHECK(x_pair > 26.87 && x_pair < 96.16);
  if (!(x_pos > 22.79 && x_pos < 88.23 && x_pair > 26.87 && x_pair < 96.16))
    fprintf(stderr, "chi-square: positions %.2f (df 49), first pairs %.2f (df 55)\n", x_pos,
            x_pair);
}

static void test_batch(const char *out) {
  struct ct_err e = {0};
  struct coco_shard s;
  TU_CHECK(coco_read_shard(out, "train", 1, 2, &s, &e) == 0);
  enum { B = 7, W = T - 1 };
  long *perm = malloc((size_t)s.n * sizeof *perm);
  coco_permutation(perm, s.n, 3, 2);
  int32_t in[B * W], outc[B * W];
  float feat[B * D];
  TU_CHECK(coco_batch(&s, perm, 14, B, in, outc, feat) == B);
  for (int b = 0; b < B; b++) {
    long row = perm[14 + b];
    TU_CHECK(!memcmp(in + b * W, s.captions + row * T, W * 4));
    TU_CHECK(!memcmp(outc + b * W, s.captions + row * T + 1, W * 4));
    TU_CHECK(!memcmp(feat + b * D, s.features + (size_t)s.image_idxs[row] * D, D * 4));
  }
  /* The tail: three real rows (identity order), then masked padding. */
  TU_CHECK(coco_batch(&s, NULL, s.n - 3, B, in, outc, feat) == 3);
  TU_CHECK(!memcmp(in + 2 * W, s.captions + (s.n - 1) * T, W * 4));
  for (int k = 3 * W; k < B * W; k++)
    TU_CHECK(in[k] == COCO_NULL && outc[k] == COCO_NULL);
  for (int k = 3 * D; k < B * D; k++)
    TU_CHECK(feat[k] == 0.0f);
  TU_CHECK(coco_batch(&s, perm, s.n, B, in, outc, feat) == 0);
  free(perm);
  coco_shard_free(&s);
}

/* Damages a copy of the prepared file and checks the reader's message. */
static void test_bad_layout(const char *out) {
  struct ct_err e = {0};
  char p[512];
  join(p, out_dir, "damaged.h5");
  struct coco_shard s;
  struct coco_info info;
  int32_t v = 9999;
  const char *sets[] = {"/train/captions", "/train/image_idxs"};
  const char *want[] = {"/train/captions row 4 has token id 9999",
                        "/train/image_idxs row 4 is 9999"};
  for (int k = 0; k < 2; k++) {
    copy_file(out, p);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, sets[k], H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t at[2] = {4, 0}, one[2] = {1, 1};
    hid_t ms = H5Screate_simple(1, one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, at, NULL, one, NULL);
    TU_CHECK(H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);
    TU_CHECK(coco_read_shard(p, "train", 0, 2, &s, &e) != 0 && names(&e, "damaged.h5") &&
             names(&e, want[k]));
    TU_CHECK(s.n == 0 && !s.captions && !s.features);
    /* Rank 1 reads odd rows only, so it never sees the damage in row 4. */
    TU_CHECK(coco_read_shard(p, "train", 1, 2, &s, &e) == 0);
    coco_shard_free(&s);
  }
  copy_file(out, p);
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  TU_CHECK(H5Ldelete(f, "/val", H5P_DEFAULT) >= 0);
  H5Fclose(f);
  TU_CHECK(coco_read_info(p, &info, &e) != 0 && names(&e, "/val/captions missing"));
  join(p, out_dir, "absent.h5");
  TU_CHECK(coco_read_info(p, &info, &e) != 0 && names(&e, "absent.h5: No such file"));
}

int main(void) {
  char out[512];
  coco_fixture_dirs(out);
  struct ct_err e = {0};
  TU_CHECK(prepare_synthetic_coco(syn, NTR, NVA, PER, 7, &e) == 0);
  TU_CHECK(prepare_coco(syn, out, 0, &e) == 0);
  if (e.code) fprintf(stderr, "%s\n", e.msg);
  test_shards(out);
  test_permutation();
  test_batch(out);
  test_bad_layout(out);
  fx_cleanup();
  TU_DONE();
}
