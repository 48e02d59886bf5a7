/* The HDF5 layout: round trip, strided shard reads, attribute formats, and
 * malformed files, each refused with a message naming the file. */
#include <dirent.h>
#include <hdf5.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data_fixtures.h"
#include "testutil.h"

static void fill_split(struct image_split *s, int n, int salt, int classes) {
  struct ct_err e;
  CT_CHECK(image_split_alloc(s, n, &e) == 0);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < DATASET_IMAGE_BYTES; k++)
      s->images[(size_t)i * DATASET_IMAGE_BYTES + k] = (uint8_t)(i * 31 + k * 7 + salt);
    s->labels[i] = (i + salt) % classes;
  }
}

static int same_row(const struct image_split *a, int ia, const struct image_split *b, int ib) {
  return a->labels[ia] == b->labels[ib] &&
         !memcmp(a->images + (size_t)ia * DATASET_IMAGE_BYTES,
                 b->images + (size_t)ib * DATASET_IMAGE_BYTES, DATASET_IMAGE_BYTES);
}

static int names(const struct ct_err *e, const char *what) { return strstr(e->msg, what) != NULL; }

static void test_round_trip(void) {
  struct image_split tr, va, te, got;
  struct ct_err e = {0};
  fill_split(&tr, 100, 1, 3);
  fill_split(&va, 7, 2, 3);
  fill_split(&te, 13, 3, 3);
  const char *classes[] = {"ant", "bee", "cat"};
  const char *out = fx_path("rt.h5");
  TU_CHECK(dataset_write(out, 3, classes, &tr, &va, &te, &e) == 0);

  struct dataset_info info;
  TU_CHECK(dataset_read_info(out, &info, &e) == 0);
  TU_CHECK(info.num_classes == 3 && !strcmp(info.classes[2], "cat"));
  TU_CHECK(info.n_train == 100 && info.n_val == 7 && info.n_test == 13);
  for (int c = 0; c < 3; c++) {
    double s = 0, sq = 0, cnt = 100.0 * 1024;
    for (int i = 0; i < 100; i++)
      for (int p = 0; p < 1024; p++) {
        double v = tr.images[(size_t)i * DATASET_IMAGE_BYTES + c * 1024 + p] / 255.0;
        s += v;
        sq += v * v;
      }
    TU_CLOSE(info.mean[c], s / cnt, 1e-12, 1e-12);
    TU_CLOSE(info.std[c], sqrt(sq / cnt - (s / cnt) * (s / cnt)), 1e-9, 1e-12);
  }

  TU_CHECK(dataset_read_split(out, "train", 0, 1, -1, &got, &e) == 0);
  TU_CHECK(got.n == 100);
  for (int i = 0; i < got.n; i++)
    TU_CHECK(same_row(&got, i, &tr, i));
  image_split_free(&got);

  /* The shard of rank 2 of 3 ranks, and a bounded count. */
  TU_CHECK(dataset_read_split(out, "train", 2, 3, -1, &got, &e) == 0);
  TU_CHECK(got.n == 33);
  for (int i = 0; i < got.n; i++)
    TU_CHECK(same_row(&got, i, &tr, 2 + 3 * i));
  image_split_free(&got);
  TU_CHECK(dataset_read_split(out, "test", 5, 4, 2, &got, &e) == 0);
  TU_CHECK(got.n == 2 && same_row(&got, 0, &te, 5) && same_row(&got, 1, &te, 9));
  image_split_free(&got);
  TU_CHECK(dataset_read_split(out, "val", 0, 1, -1, &got, &e) == 0);
  TU_CHECK(got.n == 7 && same_row(&got, 6, &va, 6));
  image_split_free(&got);
  TU_CHECK(dataset_read_split(out, "test", 13, 2, -1, &got, &e) == 0 && got.n == 0);
  image_split_free(&got);

  TU_CHECK(dataset_read_split(out, "test", 5, 4, 3, &got, &e) == CT_ERR_USAGE);
  TU_CHECK(names(&e, out) && got.n == 0 && got.images == NULL);
  TU_CHECK(dataset_read_split(out, "holdout", 0, 1, -1, &got, &e) == CT_ERR_USAGE);
  TU_CHECK(names(&e, "holdout"));

  /* No val: info says 0 and reading it names the missing dataset. */
  TU_CHECK(dataset_write(out, 3, classes, &tr, NULL, &te, &e) == 0);
  TU_CHECK(dataset_read_info(out, &info, &e) == 0 && info.n_val == 0);
  TU_CHECK(dataset_read_split(out, "val", 0, 1, -1, &got, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, out) && names(&e, "/val/images"));
  image_split_free(&tr);
  image_split_free(&va);
  image_split_free(&te);
}

static void test_split_val(void) {
  struct image_split a, b, va, vb;
  struct ct_err e;
  fill_split(&a, 50, 0, 10);
  fill_split(&b, 50, 0, 10);
  TU_CHECK(dataset_split_val(&a, 12, 99, &va, &e) == 0);
  TU_CHECK(dataset_split_val(&b, 12, 99, &vb, &e) == 0);
  TU_CHECK(a.n == 38 && va.n == 12);
  TU_CHECK(!memcmp(va.images, vb.images, (size_t)12 * DATASET_IMAGE_BYTES));
  /* Train keeps its original order: labels of fill_split rise by 1 mod 10. */
  int ordered = 1;
  struct image_split orig;
  fill_split(&orig, 50, 0, 10);
  for (int i = 0, j = 0; i < a.n; i++, j++) {
    while (j < 50 && !same_row(&a, i, &orig, j))
      j++;
    ordered &= j < 50;
  }
  TU_CHECK(ordered);
  image_split_free(&b);
  image_split_free(&vb);
  fill_split(&b, 50, 0, 10);
  TU_CHECK(dataset_split_val(&b, 12, 100, &vb, &e) == 0);
  TU_CHECK(memcmp(va.images, vb.images, (size_t)12 * DATASET_IMAGE_BYTES) != 0);
  image_split_free(&vb);
  TU_CHECK(dataset_split_val(&b, 38, 1, &vb, &e) == CT_ERR_USAGE);
  image_split_free(&a);
  image_split_free(&b);
  image_split_free(&va);
  image_split_free(&vb);
  image_split_free(&orig);
}

/* A hand-made file: which dataset to spoil and how. */
enum { OK_FILE, NO_TEST, FLOAT_IMAGES, BAD_SHAPE, BAD_LABEL, SHORT_LABELS, NO_CLASSES, FIXED_STR };

static void raw_dset(hid_t g, const char *name, hid_t type, int rank, const hsize_t *dims,
                     hid_t mtype, const void *data) {
  hid_t s = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(g, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(d);
  H5Sclose(s);
}

static void raw_file(const char *path, int spoil) {
  enum { N = 4 };
  static uint8_t img[N * DATASET_IMAGE_BYTES];
  static float fimg[N * DATASET_IMAGE_BYTES];
  int32_t lab[N] = {0, 1, 1, spoil == BAD_LABEL ? 2 : 0};
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  for (int s = 0; s < 2; s++) {
    if (s == 1 && spoil == NO_TEST) break;
    hid_t g = H5Gcreate2(f, s ? "test" : "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {N, 3, 32, spoil == BAD_SHAPE && s ? 31 : 32};
    if (spoil == FLOAT_IMAGES && !s)
      raw_dset(g, "images", H5T_IEEE_F32LE, 4, dims, H5T_NATIVE_FLOAT, fimg);
    else
      raw_dset(g, "images", H5T_STD_U8LE, 4, dims, H5T_NATIVE_UINT8, img);
    hsize_t nl = spoil == SHORT_LABELS ? N - 1 : N;
    raw_dset(g, "labels", H5T_STD_I64LE, 1, &nl, H5T_NATIVE_INT32, lab);
    H5Gclose(g);
  }
  hsize_t two = 2, three = 3;
  if (spoil != NO_CLASSES) {
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate_simple(1, &two, NULL);
    if (spoil == FIXED_STR) {
      H5Tset_size(t, 6);
      H5Tset_strpad(t, H5T_STR_NULLPAD);
      hid_t a = H5Acreate2(f, "classes", t, s, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, t, "apple\0banana");
      H5Aclose(a);
    } else {
      const char *v[2] = {"apple", "banana"};
      H5Tset_size(t, H5T_VARIABLE);
      hid_t a = H5Acreate2(f, "classes", t, s, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, t, v);
      H5Aclose(a);
    }
    H5Sclose(s);
    H5Tclose(t);
  }
  double m[3] = {0.5, 0.5, 0.5}, sd[3] = {0.25, 0.25, 0.25};
  hid_t s = H5Screate_simple(1, &three, NULL);
  hid_t a = H5Acreate2(f, "mean", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, m);
  H5Aclose(a);
  a = H5Acreate2(f, "std", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, sd);
  H5Aclose(a);
  H5Sclose(s);
  H5Fclose(f);
}

static void test_bad_files(void) {
  struct ct_err e = {0};
  struct dataset_info info;
  struct image_split got;
  const char *p = fx_path("raw.h5");

  raw_file(p, OK_FILE);
  TU_CHECK(dataset_read_info(p, &info, &e) == 0 && info.n_train == 4 && info.num_classes == 2);
  TU_CHECK(dataset_read_split(p, "train", 0, 1, -1, &got, &e) == 0 && got.labels[2] == 1);
  image_split_free(&got);
  raw_file(p, FIXED_STR);
  TU_CHECK(dataset_read_info(p, &info, &e) == 0 && !strcmp(info.classes[1], "banana"));

  struct {
    int spoil;
    const char *want;
  } cases[] = {{NO_TEST, "/test/images missing"},
               {FLOAT_IMAGES, "dtype float32, want uint8"},
               {BAD_SHAPE, "/test/images has shape (4,3,32,31)"},
               {SHORT_LABELS, "/train/labels has 3 rows"},
               {NO_CLASSES, "'classes' missing"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    raw_file(p, cases[i].spoil);
    e.msg[0] = 0;
    TU_CHECK(dataset_read_info(p, &info, &e) == CT_ERR_RUNTIME);
    if (!names(&e, p) || !names(&e, cases[i].want))
      fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, e.msg, cases[i].want);
    TU_CHECK(names(&e, p) && names(&e, cases[i].want) && !strchr(e.msg, '\n'));
  }
  raw_file(p, BAD_LABEL);
  TU_CHECK(dataset_read_split(p, "train", 0, 1, -1, &got, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, p) && names(&e, "/train/labels row 3 is 2"));
  TU_CHECK(got.images == NULL && got.n == 0);

  const char *missing = fx_path("nope.h5");
  TU_CHECK(dataset_read_info(missing, &info, &e) == CT_ERR_RUNTIME && names(&e, missing));
  const char *text = fx_path("text.h5");
  fx_write("text.h5", "not hdf5\n", 9);
  TU_CHECK(dataset_read_info(text, &info, &e) == CT_ERR_RUNTIME && names(&e, text));
}

static void test_atomic_write(void) {
  struct image_split tr, te;
  struct ct_err e = {0};
  const char *classes[] = {"a", "b"};
  fill_split(&tr, 3, 0, 2);
  fill_split(&te, 2, 0, 2);
  const char *nodir = fx_path("no/such/dir/out.h5");
  TU_CHECK(dataset_write(nodir, 2, classes, &tr, NULL, &te, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, nodir));
  /* The rename onto a directory fails after the file was written: the
   * temporary must be gone and the directory untouched. */
  fx_mkdirs("atomic/out.h5/keep");
  const char *target = fx_path("atomic/out.h5");
  TU_CHECK(dataset_write(target, 2, classes, &tr, NULL, &te, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, target));
  int entries = 0;
  DIR *d = opendir(fx_path("atomic"));
  for (struct dirent *de; d && (de = readdir(d));)
    entries += de->d_name[0] != '.';
  if (d) closedir(d);
  TU_CHECK(entries == 1);
  image_split_free(&tr);
  image_split_free(&te);
}

int main(void) {
  test_round_trip();
  test_split_val();
  test_bad_files();
  test_atomic_write();
  fx_cleanup();
  TU_DONE();
}
