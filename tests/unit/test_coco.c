/* The captioning data layer: synthetic-coco writes the exact CS231n layout,
 * prepare_coco round-trips it, shards cover every caption once with exactly
 * the features they reference, the epoch order is a pure function of (seed,
 * epoch), and every bad input is one line naming the file and the problem,
 * never a partial OUT. */
#include <hdf5.h>
#include <jansson.h>
#include <unistd.h>

#include "data/coco.h"
#include "data/prepare_coco.h"
#include "data_fixtures.h"
#include "testutil.h"

enum { NTR = 60, NVA = 20, PER = 3, T = 17, D = 512 };

static int names(const struct ct_err *e, const char *what) {
  int ok = strstr(e->msg, what) != NULL && !strchr(e->msg, '\n');
  if (!ok) fprintf(stderr, "message '%s' does not name '%s'\n", e->msg, what);
  return ok;
}

static void join(char *buf, const char *dir, const char *name) {
  if (snprintf(buf, 512, "%s/%s", dir, name) >= 512) {
    fprintf(stderr, "fixture path too long: %s/%s\n", dir, name);
    exit(1);
  }
}

/* A dataset read whole, with its file dtype and shape. */
struct arr {
  int rank;
  hsize_t dims[2];
  hid_t ftype;
  void *data;
};

static struct arr h5_get(const char *path, const char *name, hid_t mtype) {
  struct arr a = {0};
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = f < 0 ? -1 : H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) {
    fprintf(stderr, "%s: cannot open %s\n", path, name);
    tu_failures++;
    if (f >= 0) H5Fclose(f);
    a.data = calloc(1, 1);
    return a;
  }
  hid_t s = H5Dget_space(d);
  a.rank = H5Sget_simple_extent_ndims(s);
  H5Sget_simple_extent_dims(s, a.dims, NULL);
  a.ftype = H5Dget_type(d);
  size_t n = (size_t)a.dims[0] * (a.rank == 2 ? (size_t)a.dims[1] : 1);
  a.data = calloc(n ? n : 1, 4);
  TU_CHECK(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data) >= 0);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return a;
}

static void arr_free(struct arr *a) {
  if (a->ftype > 0) H5Tclose(a->ftype);
  free(a->data);
}

static int32_t *ints(const struct arr *a) { return a->data; }
static float *floats(const struct arr *a) { return a->data; }

static size_t numel(const struct arr *a) {
  return (size_t)a->dims[0] * (a->rank == 2 ? (size_t)a->dims[1] : 1);
}

static int same(const struct arr *a, const struct arr *b) {
  return a->rank == b->rank && a->dims[0] == b->dims[0] &&
         (a->rank == 1 || a->dims[1] == b->dims[1]) && !memcmp(a->data, b->data, numel(a) * 4);
}

static void h5_put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
                   const hsize_t *dims, const void *data) {
  hid_t s = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  TU_CHECK(d >= 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(d);
  H5Sclose(s);
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  *n = 0;
  if (f) {
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc((size_t)len + 1, 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
  }
  return buf;
}

static void copy_file(const char *from, const char *to) {
  size_t n;
  char *buf = slurp(from, &n);
  FILE *f = fopen(to, "wb");
  TU_CHECK(buf && f && fwrite(buf, 1, n, f) == n);
  if (f) fclose(f);
  free(buf);
}

static const char *const FILES[] = {"coco2014_captions.h5",       "coco2014_vocab.json",
                                    "train2014_vgg16_fc7_pca.h5", "val2014_vgg16_fc7_pca.h5",
                                    "train2014_urls.txt",         "val2014_urls.txt"};

static void copy_dir(const char *from, const char *to) {
  char a[512], b[512];
  mkdir(to, 0755);
  for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
    join(a, from, FILES[i]);
    join(b, to, FILES[i]);
    copy_file(a, b);
  }
}

static char syn[512], out_dir[512];

/* --- the CS231n layout of synthetic-coco ----------------------------------- */

static void check_vocab_json(const char *dir, int *vocab) {
  char p[512];
  join(p, dir, "coco2014_vocab.json");
  json_error_t je;
  json_t *root = json_load_file(p, 0, &je);
  TU_CHECK(json_is_object(root) && json_object_size(root) == 2);
  json_t *itw = json_object_get(root, "idx_to_word"), *wti = json_object_get(root, "word_to_idx");
  TU_CHECK(json_is_array(itw) && json_is_object(wti));
  size_t n = json_array_size(itw);
  TU_CHECK(n > 30 && n < 100 && json_object_size(wti) == n);
  static const char *const specials[] = {"<NULL>", "<START>", "<END>", "<UNK>"};
  for (size_t i = 0; i < n; i++) {
    const char *w = json_string_value(json_array_get(itw, i));
    TU_CHECK(w && json_integer_value(json_object_get(wti, w)) == (json_int_t)i);
    if (i < 4) TU_CHECK(w && !strcmp(w, specials[i]));
  }
  *vocab = (int)n;
  json_decref(root);
}

static void test_synthetic_layout(void) {
  struct ct_err e = {0};
  TU_CHECK(prepare_synthetic_coco(syn, NTR, NVA, PER, 7, &e) == 0);
  char cap[512], ftr[512], fva[512], p[512];
  join(cap, syn, "coco2014_captions.h5");
  join(ftr, syn, "train2014_vgg16_fc7_pca.h5");
  join(fva, syn, "val2014_vgg16_fc7_pca.h5");
  /* Exactly the four caption datasets, int32 little-endian as in the release. */
  hid_t f = H5Fopen(cap, H5F_ACC_RDONLY, H5P_DEFAULT);
  H5G_info_t gi;
  TU_CHECK(f >= 0 && H5Gget_info(f, &gi) >= 0 && gi.nlinks == 4);
  H5Fclose(f);
  int vocab = 0;
  check_vocab_json(syn, &vocab);
  const char *splits[2] = {"train", "val"};
  const char *feat[2] = {ftr, fva};
  const long nimg[2] = {NTR, NVA};
  for (int s = 0; s < 2; s++) {
    char cn[32], in[32];
    snprintf(cn, sizeof cn, "%s_captions", splits[s]);
    snprintf(in, sizeof in, "%s_image_idxs", splits[s]);
    struct arr c = h5_get(cap, cn, H5T_NATIVE_INT32), x = h5_get(cap, in, H5T_NATIVE_INT32);
    struct arr ft = h5_get(feat[s], "features", H5T_NATIVE_FLOAT);
    TU_CHECK(H5Tequal(c.ftype, H5T_STD_I32LE) > 0 && H5Tequal(x.ftype, H5T_STD_I32LE) > 0);
    TU_CHECK(H5Tequal(ft.ftype, H5T_IEEE_F32LE) > 0);
    TU_CHECK(c.rank == 2 && c.dims[0] == (hsize_t)(nimg[s] * PER) && c.dims[1] == T);
    TU_CHECK(x.rank == 1 && x.dims[0] == c.dims[0]);
    TU_CHECK(ft.rank == 2 && ft.dims[0] == (hsize_t)nimg[s] && ft.dims[1] == D);
    int per_image[NTR] = {0}, in_order = 1;
    for (long r = 0; r < (long)c.dims[0]; r++) {
      const int32_t *row = ints(&c) + r * T;
      int end = 0;
      while (end < T && row[end] != COCO_END)
        end++;
      TU_CHECK(row[0] == COCO_START && end > 3 && end < T);
      for (int j = 1; j < end; j++)
        TU_CHECK(row[j] >= COCO_SPECIALS && row[j] < vocab);
      for (int j = end + 1; j < T; j++)
        TU_CHECK(row[j] == COCO_NULL);
      int32_t img = ints(&x)[r];
      TU_CHECK(img >= 0 && img < nimg[s]);
      if (img >= 0 && img < nimg[s]) per_image[img]++;
      in_order &= r == 0 || img >= ints(&x)[r - 1];
    }
    for (long i = 0; i < nimg[s]; i++)
      TU_CHECK(per_image[i] == PER);
    TU_CHECK(!in_order); /* captions are stored shuffled, as in the release */
    join(p, syn, s ? "val2014_urls.txt" : "train2014_urls.txt");
    size_t n;
    char *urls = slurp(p, &n);
    long lines = 0;
    for (size_t k = 0; k < n; k++)
      lines += urls[k] == '\n';
    TU_CHECK(lines == nimg[s]);
    free(urls);
    arr_free(&c);
    arr_free(&x);
    arr_free(&ft);
  }
}

static void test_synthetic_determinism(void) {
  struct ct_err e = {0};
  char same_seed[512], other_seed[512], bigger[512], a[512], b[512];
  snprintf(same_seed, sizeof same_seed, "%s", fx_path("syn_same"));
  snprintf(other_seed, sizeof other_seed, "%s", fx_path("syn_other"));
  snprintf(bigger, sizeof bigger, "%s", fx_path("syn_bigger"));
  TU_CHECK(prepare_synthetic_coco(same_seed, NTR, NVA, PER, 7, &e) == 0);
  TU_CHECK(prepare_synthetic_coco(other_seed, NTR, NVA, PER, 8, &e) == 0);
  TU_CHECK(prepare_synthetic_coco(bigger, NTR + 40, NVA, PER, 7, &e) == 0);
  const char *sets[] = {"train_captions", "train_image_idxs", "val_captions", "val_image_idxs"};
  join(a, syn, "coco2014_captions.h5");
  join(b, same_seed, "coco2014_captions.h5");
  for (int i = 0; i < 4; i++) {
    struct arr x = h5_get(a, sets[i], H5T_NATIVE_INT32), y = h5_get(b, sets[i], H5T_NATIVE_INT32);
    TU_CHECK(same(&x, &y));
    arr_free(&x);
    arr_free(&y);
  }
  join(a, syn, "train2014_vgg16_fc7_pca.h5");
  join(b, same_seed, "train2014_vgg16_fc7_pca.h5");
  struct arr x = h5_get(a, "features", H5T_NATIVE_FLOAT),
             y = h5_get(b, "features", H5T_NATIVE_FLOAT);
  TU_CHECK(same(&x, &y));
  arr_free(&y);
  join(b, other_seed, "train2014_vgg16_fc7_pca.h5");
  y = h5_get(b, "features", H5T_NATIVE_FLOAT);
  TU_CHECK(!same(&x, &y));
  arr_free(&y);
  /* Image i is a function of (seed, i): a bigger set starts with the smaller one. */
  join(b, bigger, "train2014_vgg16_fc7_pca.h5");
  y = h5_get(b, "features", H5T_NATIVE_FLOAT);
  TU_CHECK(y.dims[0] == NTR + 40 && !memcmp(x.data, y.data, (size_t)NTR * D * 4));
  arr_free(&x);
  arr_free(&y);
  size_t n1, n2;
  join(a, syn, "coco2014_vocab.json");
  join(b, same_seed, "coco2014_vocab.json");
  char *j1 = slurp(a, &n1), *j2 = slurp(b, &n2);
  TU_CHECK(n1 > 0 && n1 == n2 && !memcmp(j1, j2, n1));
  free(j1);
  free(j2);
  TU_CHECK(prepare_synthetic_coco(same_seed, 0, NVA, PER, 7, &e) == CT_ERR_USAGE &&
           names(&e, "syn_same"));
}

/* --- prepare_coco, shards, epochs, batches ---------------------------------- */

static void test_round_trip(const char *out) {
  struct ct_err e = {0};
  TU_CHECK(prepare_coco(syn, out, 0, &e) == 0);
  if (e.code) fprintf(stderr, "%s\n", e.msg);
  struct coco_info info;
  TU_CHECK(coco_read_info(out, &info, &e) == 0);
  int vocab = 0;
  check_vocab_json(syn, &vocab);
  TU_CHECK(info.vocab_size == vocab && info.feature_dim == D && info.max_length == T);
  TU_CHECK(info.n_train == NTR * PER && info.n_val == NVA * PER);
  TU_CHECK(info.n_train_images == NTR && info.n_val_images == NVA);
  struct coco_vocab v;
  TU_CHECK(coco_read_vocab(out, &v, &e) == 0 && v.n == vocab);
  char p[512];
  join(p, syn, "coco2014_vocab.json");
  json_error_t je;
  json_t *root = json_load_file(p, 0, &je);
  json_t *itw = json_object_get(root, "idx_to_word");
  for (int i = 0; i < v.n; i++)
    TU_CHECK(!strcmp(v.words[i], json_string_value(json_array_get(itw, (size_t)i))));
  json_decref(root);
  /* Whole split = shard 0 of 1: identical to the source, features in file order. */
  join(p, syn, "coco2014_captions.h5");
  struct arr c = h5_get(p, "train_captions", H5T_NATIVE_INT32);
  struct arr x = h5_get(p, "train_image_idxs", H5T_NATIVE_INT32);
  join(p, syn, "train2014_vgg16_fc7_pca.h5");
  struct arr ft = h5_get(p, "features", H5T_NATIVE_FLOAT);
  struct coco_shard s;
  TU_CHECK(coco_read_shard(out, "train", 0, 1, &s, &e) == 0);
  TU_CHECK(s.n == NTR * PER && s.t == T && s.d == D && s.n_images == NTR);
  TU_CHECK(!memcmp(s.captions, c.data, numel(&c) * 4));
  TU_CHECK(!memcmp(s.image_idxs, x.data, numel(&x) * 4));
  TU_CHECK(!memcmp(s.features, ft.data, numel(&ft) * 4));
  char text[256];
  int through_end = 0; /* the caption's tokens through its <END> */
  while (through_end < T && s.captions[through_end++] != COCO_END) {
  }
  coco_decode(&v, s.captions, through_end, text, sizeof text);
  TU_CHECK(!strncmp(text, "<START> ", 8) && strstr(text, " <END>") == text + strlen(text) - 6);
  coco_shard_free(&s);
  coco_vocab_free(&v);
  arr_free(&c);
  arr_free(&x);
  arr_free(&ft);
}

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

/* --- bad inputs ----------------------------------------------------------------- */

/* Rewrites DIR/coco2014_captions.h5 from the synthetic one after `edit`. */
struct caps {
  struct arr c[2], x[2];
  const char *skip; /* a dataset left out */
};

static void caps_load(struct caps *k) {
  char p[512];
  join(p, syn, "coco2014_captions.h5");
  k->c[0] = h5_get(p, "train_captions", H5T_NATIVE_INT32);
  k->x[0] = h5_get(p, "train_image_idxs", H5T_NATIVE_INT32);
  k->c[1] = h5_get(p, "val_captions", H5T_NATIVE_INT32);
  k->x[1] = h5_get(p, "val_image_idxs", H5T_NATIVE_INT32);
  k->skip = "";
}

static void caps_free(struct caps *k) {
  for (int s = 0; s < 2; s++) {
    arr_free(&k->c[s]);
    arr_free(&k->x[s]);
  }
}

static void caps_write(const char *dir, const struct caps *k) {
  char p[512];
  join(p, dir, "coco2014_captions.h5");
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const char *names_[2][2] = {{"train_captions", "train_image_idxs"},
                              {"val_captions", "val_image_idxs"}};
  for (int s = 0; s < 2; s++) {
    if (strcmp(k->skip, names_[s][0]))
      h5_put(f, names_[s][0], H5T_STD_I32LE, H5T_NATIVE_INT32, 2, k->c[s].dims, k->c[s].data);
    if (strcmp(k->skip, names_[s][1]))
      h5_put(f, names_[s][1], H5T_STD_I32LE, H5T_NATIVE_INT32, 1, k->x[s].dims, k->x[s].data);
  }
  H5Fclose(f);
}

static void write_json(const char *dir, const char *text) {
  char p[512];
  join(p, dir, "coco2014_vocab.json");
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
}

/* The vocabulary JSON of the synthetic set with one edit applied. */
static void json_edit(const char *dir, int what) {
  char p[512];
  join(p, syn, "coco2014_vocab.json");
  json_error_t je;
  json_t *root = json_load_file(p, 0, &je);
  json_t *itw = json_object_get(root, "idx_to_word"), *wti = json_object_get(root, "word_to_idx");
  if (what == 0) { /* no <NULL>: the word at 0 is renamed consistently */
    json_array_set_new(itw, 0, json_string("<PAD>"));
    json_object_del(wti, "<NULL>");
    json_object_set_new(wti, "<PAD>", json_integer(0));
  } else { /* the two maps disagree */
    json_object_set_new(wti, json_string_value(json_array_get(itw, 10)), json_integer(11));
  }
  join(p, dir, "coco2014_vocab.json");
  TU_CHECK(json_dump_file(root, p, 0) == 0);
  json_decref(root);
}

/* Zero features, except a NaN in row nan_row (when >= 0). */
static void features_write(const char *dir, const char *file, hid_t ftype, hsize_t rows,
                           hsize_t cols, long nan_row) {
  char p[512];
  join(p, dir, file);
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  float *z = calloc((size_t)(rows * cols), sizeof *z);
  if (nan_row >= 0) z[(size_t)nan_row * cols + 1] = NAN;
  hsize_t dims[2] = {rows, cols};
  h5_put(f, "features", ftype, H5T_NATIVE_FLOAT, 2, dims, z);
  free(z);
  H5Fclose(f);
}

/* prepare_coco(dir) must fail with one line naming `file` and `what`, leaving
 * neither OUT nor a temporary in its directory. */
static void expect_fail(const char *dir, int full, const char *file, const char *what) {
  struct ct_err e = {0};
  char out[512];
  join(out, out_dir, "bad.h5");
  int rc = prepare_coco(dir, out, full, &e);
  TU_CHECK(rc != 0);
  if (rc == 0) fprintf(stderr, "prepare_coco accepted a source with bad %s\n", what);
  TU_CHECK(names(&e, file) && names(&e, what));
  TU_CHECK(access(out, F_OK) != 0);
  DIR *d = opendir(out_dir);
  for (struct dirent *de; d && (de = readdir(d));)
    TU_CHECK(!strstr(de->d_name, "bad.h5"));
  if (d) closedir(d);
}

static void test_bad_sources(void) {
  char bad[512], p[512];
  snprintf(bad, sizeof bad, "%s", fx_path("bad"));
  struct caps k;
  caps_load(&k);

  copy_dir(syn, bad);
  join(p, bad, "val2014_vgg16_fc7_pca.h5");
  unlink(p);
  expect_fail(bad, 0, "val2014_vgg16_fc7_pca.h5", "No such file");
  expect_fail(syn, 1, "train2014_vgg16_fc7.h5", "No such file");

  copy_dir(syn, bad);
  k.skip = "val_image_idxs";
  caps_write(bad, &k);
  expect_fail(bad, 0, "coco2014_captions.h5", "val_image_idxs missing");
  k.skip = "";

  k.x[0].dims[0]--;
  caps_write(bad, &k);
  expect_fail(bad, 0, "coco2014_captions.h5", "train_image_idxs has 179 rows but train_captions");
  k.x[0].dims[0]++;

  ints(&k.x[0])[5] = NTR;
  caps_write(bad, &k);
  expect_fail(bad, 0, "coco2014_captions.h5", "train_image_idxs row 5 is 60, outside [0, 60)");
  ints(&k.x[0])[5] = 0;

  int vocab;
  check_vocab_json(syn, &vocab);
  int32_t keep = ints(&k.c[1])[7 * T + 3];
  ints(&k.c[1])[7 * T + 3] = vocab;
  caps_write(bad, &k);
  char msg[128];
  snprintf(msg, sizeof msg, "val_captions row 7 has token id %d", vocab);
  expect_fail(bad, 0, "coco2014_captions.h5", msg);
  ints(&k.c[1])[7 * T + 3] = keep;

  k.c[0].dims[1] = T - 1; /* train captions 16 wide (a prefix of the bytes), val 17 */
  caps_write(bad, &k);
  expect_fail(bad, 0, "coco2014_captions.h5", "val_captions has width 17, want the train width 16");
  caps_free(&k);

  copy_dir(syn, bad);
  write_json(bad, "{\"idx_to_word\": [\"<NULL>\", ");
  expect_fail(bad, 0, "coco2014_vocab.json", "malformed JSON");
  write_json(bad, "{\"idx_to_word\": [\"<NULL>\", \"<START>\", \"<END>\", \"<UNK>\"]}");
  expect_fail(bad, 0, "coco2014_vocab.json", "word_to_idx");
  json_edit(bad, 0);
  expect_fail(bad, 0, "coco2014_vocab.json", "want '<NULL>'");
  json_edit(bad, 1);
  expect_fail(bad, 0, "coco2014_vocab.json", "word_to_idx[");

  copy_dir(syn, bad);
  features_write(bad, "val2014_vgg16_fc7_pca.h5", H5T_IEEE_F32LE, NVA, 256, -1);
  expect_fail(bad, 0, "val2014_vgg16_fc7_pca.h5", "width 256");
  features_write(bad, "val2014_vgg16_fc7_pca.h5", H5T_STD_I32LE, NVA, D, -1);
  expect_fail(bad, 0, "val2014_vgg16_fc7_pca.h5", "dtype int32, want float32");
  /* Too few feature rows for the captions' image indices. */
  features_write(bad, "val2014_vgg16_fc7_pca.h5", H5T_IEEE_F32LE, NVA - 1, D, -1);
  expect_fail(bad, 0, "coco2014_captions.h5", "outside [0, 19) (the rows of val2014");
  /* Found while copying, after OUT's temporary exists: it must be removed. */
  features_write(bad, "val2014_vgg16_fc7_pca.h5", H5T_IEEE_F32LE, NVA, D, 13);
  expect_fail(bad, 0, "val2014_vgg16_fc7_pca.h5", "features row 13 has a non-finite value");
  /* The release's captions file may also hold image URLs: accepted, not imported. */
  copy_dir(syn, bad);
  join(p, bad, "coco2014_captions.h5");
  hid_t cf = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, H5T_VARIABLE);
  const char *urls[NTR] = {0};
  for (int i = 0; i < NTR; i++)
    urls[i] = "http://example.invalid/x.jpg";
  hsize_t nurl = NTR;
  h5_put(cf, "train_urls", st, st, 1, &nurl, urls);
  H5Tclose(st);
  H5Fclose(cf);
  struct ct_err e = {0};
  join(p, out_dir, "urls.h5");
  TU_CHECK(prepare_coco(bad, p, 0, &e) == 0);
  /* --full reads the 4096-d names (here stand-ins of any width). */
  char a[512];
  for (int s = 0; s < 2; s++) {
    join(a, syn, s ? "val2014_vgg16_fc7_pca.h5" : "train2014_vgg16_fc7_pca.h5");
    join(p, bad, s ? "val2014_vgg16_fc7.h5" : "train2014_vgg16_fc7.h5");
    copy_file(a, p);
  }
  join(p, out_dir, "full.h5");
  TU_CHECK(prepare_coco(bad, p, 1, &e) == 0);
  char src[64] = "";
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t at = H5Aopen(f, "features_source", H5P_DEFAULT), ty = H5Aget_type(at);
  TU_CHECK(H5Aread(at, ty, src) >= 0 && !strcmp(src, "vgg16_fc7"));
  H5Tclose(ty);
  H5Aclose(at);
  H5Fclose(f);
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
  snprintf(syn, sizeof syn, "%s", fx_path("syn"));
  snprintf(out_dir, sizeof out_dir, "%s", fx_path("out"));
  mkdir(out_dir, 0755);
  char out[512];
  join(out, out_dir, "coco.h5");
  test_synthetic_layout();
  test_synthetic_determinism();
  test_round_trip(out);
  test_shards(out);
  test_permutation();
  test_batch(out);
  test_bad_sources();
  test_bad_layout(out);
  fx_cleanup();
  TU_DONE();
}
