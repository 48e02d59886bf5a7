/* coco_fixtures.h — what the captioning data tests (test_coco.c: the
 * synthetic set and prepare_coco; test_coco_reader.c: shards, epochs,
 * batches) share: the synthetic set's size, its scratch directories, error
 * message checks, and whole HDF5 datasets and files read into memory. */
#ifndef CTRAIN_COCO_FIXTURES_H
#define CTRAIN_COCO_FIXTURES_H

#include <hdf5.h>

#include "core/error.h"
#include "data_fixtures.h"
#include "testutil.h"

/* The synthetic set: train and val images, captions per image, caption
 * length, feature width. */
enum { NTR = 60, NVA = 20, PER = 3, T = 17, D = 512 };

/* The synthetic source (syn) and prepare_coco's outputs (out_dir). */
static char syn[512], out_dir[512];

static inline int names(const struct ct_err *e, const char *what) {
  int ok = strstr(e->msg, what) != NULL && !strchr(e->msg, '\n');
  if (!ok) fprintf(stderr, "message '%s' does not name '%s'\n", e->msg, what);
  return ok;
}

static inline void join(char *buf, const char *dir, const char *name) {
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

static inline struct arr h5_get(const char *path, const char *name, hid_t mtype) {
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

static inline void arr_free(struct arr *a) {
  if (a->ftype > 0) H5Tclose(a->ftype);
  free(a->data);
}

static inline int32_t *ints(const struct arr *a) { return a->data; }
static inline float *floats(const struct arr *a) { return a->data; }

static inline char *slurp(const char *path, size_t *n) {
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

static inline void copy_file(const char *from, const char *to) {
  size_t n;
  char *buf = slurp(from, &n);
  FILE *f = fopen(to, "wb");
  TU_CHECK(buf && f && fwrite(buf, 1, n, f) == n);
  if (f) fclose(f);
  free(buf);
}

/* Sets syn and out_dir under the scratch directory, creates out_dir and
 * names the prepared file in it (out, 512 bytes). */
static inline void coco_fixture_dirs(char *out) {
  snprintf(syn, sizeof syn, "%s", fx_path("syn"));
  snprintf(out_dir, sizeof out_dir, "%s", fx_path("out"));
  mkdir(out_dir, 0755);
  join(out, out_dir, "coco.h5");
}

#endif
