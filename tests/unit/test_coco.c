/* The captioning data layer, writing side: synthetic-coco writes the exact
 * CS231n layout and is a pure function of its seed, prepare_coco
 * round-trips it, and every bad input is one line naming the file and the
 * problem, never a partial OUT. The reading side (shards, epochs, batches,
 * a damaged prepared file) is test_coco_reader.c. */
#include <jansson.h>
#include <unistd.h>

#include "coco_fixtures.h"
#include "data/coco.h"
#include "data/prepare_coco.h"

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

/* --- prepare_coco ----------------------------------------------------------- */

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

int main(void) {
  char out[512];
  coco_fixture_dirs(out);
  test_synthetic_layout();
  test_synthetic_determinism();
  test_round_trip(out);
  test_bad_sources();
  fx_cleanup();
  TU_DONE();
}
