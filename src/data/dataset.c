#include "data/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5/h5io.h"
#include "kernels/ops_shared.h"

/* Images per chunk: 64 images (192 KiB) fit HDF5's default 1 MiB chunk cache,
 * so a strided shard read touches each chunk once. */
enum { CHUNK_IMAGES = 64 };

static int split_known(const char *split) {
  return !strcmp(split, "train") || !strcmp(split, "val") || !strcmp(split, "test");
}

/* Images: exactly uint8 (N,3,32,32); labels: any integer (N), read as int32.
 * Returns the open dataset and its first dimension. */
static hid_t dset_open_checked(hid_t f, const char *path, const char *name, int images, long *n,
                               struct ct_err *e) {
  static const hsize_t image_dims[4] = {0, 3, DATASET_SIDE, DATASET_SIDE};
  static const struct h5io_want labels = {
      .cls = H5T_INTEGER, .dtype = "int32", .rank = 1, .shape = "(N)"};
  /* Not static: H5T_NATIVE_UINT8 is known only once HDF5 is open. */
  const struct h5io_want uint8_images = {.cls = H5T_INTEGER,
                                         .dtype = "uint8",
                                         .rank = 4,
                                         .shape = "(N,3,32,32)",
                                         .exact = H5T_NATIVE_UINT8,
                                         .fixed = image_dims};
  hsize_t dims[4];
  hid_t d = h5io_dataset(f, path, name, images ? &uint8_images : &labels, dims, e);
  if (d >= 0) *n = (long)dims[0];
  return d;
}

/* Opens /split/images and /split/labels and checks that they agree. */
static int split_open(hid_t f, const char *path, const char *split, hid_t *img, hid_t *lab, long *n,
                      struct ct_err *e) {
  char name[32];
  long nl = 0;
  snprintf(name, sizeof name, "/%s/images", split);
  *img = dset_open_checked(f, path, name, 1, n, e);
  if (*img < 0) return CT_ERR_RUNTIME;
  snprintf(name, sizeof name, "/%s/labels", split);
  *lab = dset_open_checked(f, path, name, 0, &nl, e);
  if (*lab < 0) {
    h5io_close(img);
    return CT_ERR_RUNTIME;
  }
  if (nl != *n) {
    h5io_close(img);
    h5io_close(lab);
    return err_set(e, CT_ERR_RUNTIME, "%s: /%s/labels has %ld rows but /%s/images has %ld", path,
                   split, nl, split, *n);
  }
  return CT_OK;
}

static int read_classes(hid_t f, const char *path, struct dataset_info *info, struct ct_err *e) {
  if (!h5io_attr_exists(f, "classes"))
    return err_set(e, CT_ERR_RUNTIME, "%s: root attribute 'classes' missing", path);
  hsize_t n = 0;
  hid_t a = h5io_attr_open_strs(f, "classes", &n, path, e);
  if (a < 0) return CT_ERR_RUNTIME;
  int rc = CT_ERR_RUNTIME;
  char *names[DATASET_MAX_CLASSES] = {0};
  if (n < 1 || n > DATASET_MAX_CLASSES) {
    err_set(e, rc, "%s: attribute 'classes' has %llu names, want 1..%d", path,
            (unsigned long long)n, DATASET_MAX_CLASSES);
    goto done;
  }
  if (h5io_read_strs(a, n, names, "classes", path, e)) goto done;
  info->num_classes = (int)n;
  for (hsize_t i = 0; i < n; i++) {
    size_t len = strlen(names[i]);
    if (len == 0 || len >= DATASET_NAME_LEN) {
      err_set(e, rc, "%s: class name %llu is empty or longer than %d characters", path,
              (unsigned long long)i, DATASET_NAME_LEN - 1);
      goto done;
    }
    memcpy(info->classes[i], names[i], len + 1);
  }
  rc = CT_OK;
done:
  for (int i = 0; i < DATASET_MAX_CLASSES; i++)
    free(names[i]);
  h5io_close(&a);
  return rc;
}

static int read_vec3(hid_t f, const char *path, const char *name, double *v, struct ct_err *e) {
  if (!h5io_attr_exists(f, name))
    return err_set(e, CT_ERR_RUNTIME, "%s: root attribute '%s' missing", path, name);
  return h5io_attr_read_doubles(f, name, v, 3, path, e);
}

static int read_attrs(hid_t f, const char *path, struct dataset_info *info, struct ct_err *e) {
  int rc = read_classes(f, path, info, e);
  if (!rc) rc = read_vec3(f, path, "mean", info->mean, e);
  if (!rc) rc = read_vec3(f, path, "std", info->std, e);
  for (int c = 0; !rc && c < 3; c++)
    if (!isfinite(info->mean[c]))
      rc = err_set(e, CT_ERR_RUNTIME, "%s: attribute 'mean' channel %d is %g, not a finite number",
                   path, c, info->mean[c]);
    else if (!(info->std[c] > 0) || !isfinite(info->std[c]))
      rc = err_set(e, CT_ERR_RUNTIME,
                   "%s: attribute 'std' channel %d is %g, must be positive and finite", path, c,
                   info->std[c]);
  return rc;
}

/* What the split readers start with: the file open (*f, -1 when it could not
 * be opened, the caller's to close whatever the result), its attributes read
 * and the split's datasets open. */
static int split_begin(const char *path, const char *split, hid_t *f, struct dataset_info *info,
                       hid_t *img, hid_t *lab, long *n, struct ct_err *e) {
  *img = *lab = -1;
  *n = 0;
  if ((*f = h5io_open(path, e)) < 0) return CT_ERR_RUNTIME;
  int rc = read_attrs(*f, path, info, e);
  if (!rc) rc = split_open(*f, path, split, img, lab, n, e);
  return rc;
}

int dataset_read_info(const char *path, struct dataset_info *info, struct ct_err *e) {
  memset(info, 0, sizeof *info);
  hid_t f = h5io_open(path, e);
  if (f < 0) return CT_ERR_RUNTIME;
  int rc = read_attrs(f, path, info, e);
  static const char *const splits[] = {"train", "val", "test"};
  int *counts[] = {&info->n_train, &info->n_val, &info->n_test};
  for (int i = 0; i < 3 && !rc; i++) {
    if (i == 1 && !h5io_exists(f, "/val")) continue;
    hid_t img, lab;
    long n;
    rc = split_open(f, path, splits[i], &img, &lab, &n, e);
    if (rc) break;
    *counts[i] = (int)n;
    h5io_close(&img);
    h5io_close(&lab);
  }
  h5io_close(&f);
  return rc;
}

int image_split_alloc(struct image_split *s, long n, struct ct_err *e) {
  s->n = 0;
  s->images = malloc((size_t)(n > 0 ? n : 1) * DATASET_IMAGE_BYTES);
  s->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *s->labels);
  if (!s->images || !s->labels) {
    image_split_free(s);
    return err_set(e, CT_ERR_RUNTIME, "out of memory allocating %ld images", n);
  }
  s->n = (int)n;
  return CT_OK;
}

void image_split_free(struct image_split *s) {
  free(s->images);
  free(s->labels);
  s->images = NULL;
  s->labels = NULL;
  s->n = 0;
}

int dataset_read_split(const char *path, const char *split, long start, long stride, long count,
                       struct image_split *out, struct ct_err *e) {
  memset(out, 0, sizeof *out);
  if (!split_known(split))
    return err_set(e, CT_ERR_USAGE, "%s: unknown split '%s' (want train, val or test)", path,
                   split);
  if (start < 0 || stride < 1)
    return err_set(e, CT_ERR_USAGE, "%s: bad row selection start=%ld stride=%ld", path, start,
                   stride);
  struct dataset_info info;
  hid_t f, img, lab;
  long n;
  int rc = split_begin(path, split, &f, &info, &img, &lab, &n, e);
  if (rc) goto done;
  long avail = start < n ? (n - start + stride - 1) / stride : 0;
  if (count < 0) count = avail;
  if (count > avail) {
    rc = err_set(e, CT_ERR_USAGE, "%s: /%s has %ld rows, cannot read %ld from %ld every %ld", path,
                 split, n, count, start, stride);
    goto done;
  }
  if ((rc = image_split_alloc(out, count, e))) goto done;
  if (count > 0 && h5io_read_rows(img, H5T_NATIVE_UINT8, start, stride, count, out->images)) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(/%s/images) failed", path, split);
    goto done;
  }
  if (count > 0 && h5io_read_rows(lab, H5T_NATIVE_INT32, start, stride, count, out->labels)) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(/%s/labels) failed", path, split);
    goto done;
  }
  for (long i = 0; i < count; i++)
    if (out->labels[i] < 0 || out->labels[i] >= info.num_classes) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: /%s/labels row %ld is %d, outside [0, %d)", path, split,
                   start + i * stride, out->labels[i], info.num_classes);
      goto done;
    }
done:
  if (rc) image_split_free(out);
  h5io_close(&img);
  h5io_close(&lab);
  h5io_close(&f);
  return rc;
}

/* Rows read per H5Dread at most: bounds the staging buffer (768 KiB). */
enum { RUN_ROWS = 256 };

static int cmp_by_row(const void *a, const void *b) {
  const long *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

int dataset_read_rows(const char *path, const char *split, const long *rows, long count,
                      uint8_t *images, int32_t *labels, struct ct_err *e) {
  if (!split_known(split))
    return err_set(e, CT_ERR_USAGE, "%s: unknown split '%s' (want train, val or test)", path,
                   split);
  struct dataset_info info;
  hid_t f, img, lab;
  long n, *order = NULL;
  uint8_t *simg = NULL;
  int32_t *slab = NULL;
  char name[32];
  snprintf(name, sizeof name, "/%s/images", split);
  int rc = split_begin(path, split, &f, &info, &img, &lab, &n, e);
  /* Rows are scattered: a cached chunk (64 images) would be read whole for
   * the one image wanted from it. */
  if (rc || (rc = h5io_reopen_uncached(f, name, &img, path, e))) goto done;
  order = malloc((size_t)(count > 0 ? count : 1) * 2 * sizeof *order);
  simg = malloc((size_t)RUN_ROWS * DATASET_IMAGE_BYTES);
  slab = malloc(RUN_ROWS * sizeof *slab);
  if (!order || !simg || !slab) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory reading %s", path, name);
    goto done;
  }
  /* (file row, position asked) pairs, sorted by file row. */
  for (long i = 0; i < count; i++) {
    if (rows[i] < 0 || rows[i] >= n) {
      rc = err_set(e, CT_ERR_USAGE, "%s: /%s has %ld rows, row %ld asked for", path, split, n,
                   rows[i]);
      goto done;
    }
    order[2 * i] = rows[i];
    order[2 * i + 1] = i;
  }
  qsort(order, (size_t)count, 2 * sizeof *order, cmp_by_row);
  for (long i = 0; i < count;) {
    /* The longest run of consecutive file rows, capped at RUN_ROWS. */
    long j = i + 1, first = order[2 * i];
    while (j < count && j - i < RUN_ROWS && order[2 * j] <= first + (j - i))
      j++;
    long len = order[2 * (j - 1)] - first + 1;
    if (h5io_read_rows(img, H5T_NATIVE_UINT8, first, 1, len, simg) ||
        h5io_read_rows(lab, H5T_NATIVE_INT32, first, 1, len, slab)) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(/%s rows %ld..%ld) failed", path, split, first,
                   first + len - 1);
      goto done;
    }
    for (long k = i; k < j; k++) {
      long at = order[2 * k + 1], r = order[2 * k] - first;
      if (slab[r] < 0 || slab[r] >= info.num_classes) {
        rc = err_set(e, CT_ERR_RUNTIME, "%s: /%s/labels row %ld is %d, outside [0, %d)", path,
                     split, order[2 * k], slab[r], info.num_classes);
        goto done;
      }
      memcpy(images + (size_t)at * DATASET_IMAGE_BYTES, simg + (size_t)r * DATASET_IMAGE_BYTES,
             DATASET_IMAGE_BYTES);
      labels[at] = slab[r];
    }
    i = j;
  }
done:
  free(order);
  free(simg);
  free(slab);
  h5io_close(&img);
  h5io_close(&lab);
  h5io_close(&f);
  return rc;
}

int dataset_check_labels(const char *path, const char *split, struct ct_err *e) {
  if (!split_known(split))
    return err_set(e, CT_ERR_USAGE, "%s: unknown split '%s' (want train, val or test)", path,
                   split);
  struct dataset_info info;
  hid_t f, img, lab;
  long n;
  int32_t *y = NULL;
  int rc = split_begin(path, split, &f, &info, &img, &lab, &n, e);
  if (!rc && !(y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y)))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory reading /%s/labels", path, split);
  if (!rc && h5io_read_rows(lab, H5T_NATIVE_INT32, 0, 1, n, y))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(/%s/labels) failed", path, split);
  for (long i = 0; !rc && i < n; i++)
    if (y[i] < 0 || y[i] >= info.num_classes)
      rc = err_set(e, CT_ERR_RUNTIME, "%s: /%s/labels row %ld is %d, outside [0, %d)", path, split,
                   i, y[i], info.num_classes);
  free(y);
  h5io_close(&img);
  h5io_close(&lab);
  h5io_close(&f);
  return rc;
}

void dataset_permutation(long *perm, long n, uint64_t key, uint64_t counter) {
  for (long i = 0; i < n; i++)
    perm[i] = i;
  for (long i = n - 1; i > 0; i--) {
    long j = (long)(ops_rng_bits(key, counter, (uint64_t)i) % (uint64_t)(i + 1));
    long t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* chosen[i] = 1 for the `val` rows of n that the validation split takes. */
static int val_chosen(long n, int val, uint64_t seed, unsigned char **chosen, struct ct_err *e) {
  if (val < 0 || val >= n)
    return err_set(e, CT_ERR_USAGE, "--val %d must be in [0, %ld) (the training set size)", val, n);
  long *perm = malloc((size_t)n * sizeof *perm);
  *chosen = calloc((size_t)n, 1);
  if (!perm || !*chosen) {
    free(perm);
    free(*chosen);
    *chosen = NULL;
    return err_set(e, CT_ERR_RUNTIME, "out of memory splitting val");
  }
  dataset_permutation(perm, n, ops_mix64(seed ^ 0x56414c53504c4954ULL), 0); /* "VALSPLIT" */
  for (long i = 0; i < val; i++)
    (*chosen)[perm[i]] = 1;
  free(perm);
  return CT_OK;
}

int dataset_val_rows(long n, int val, uint64_t seed, long *train_rows, long *val_rows,
                     struct ct_err *e) {
  unsigned char *chosen;
  if (val_chosen(n, val, seed, &chosen, e)) return e->code;
  long nv = 0, nt = 0;
  for (long i = 0; i < n; i++) {
    if (chosen[i])
      val_rows[nv++] = i;
    else
      train_rows[nt++] = i;
  }
  free(chosen);
  return CT_OK;
}

int dataset_split_val(struct image_split *train, int val, uint64_t seed,
                      struct image_split *val_out, struct ct_err *e) {
  long n = train->n;
  memset(val_out, 0, sizeof *val_out);
  unsigned char *chosen;
  if (val_chosen(n, val, seed, &chosen, e)) return e->code;
  if (image_split_alloc(val_out, val, e)) {
    free(chosen);
    return e->code;
  }
  long nv = 0, nt = 0;
  /* In place: row nt <= i always, so the compaction never overwrites unread rows. */
  for (long i = 0; i < n; i++) {
    const uint8_t *img = train->images + (size_t)i * DATASET_IMAGE_BYTES;
    if (chosen[i]) {
      memcpy(val_out->images + (size_t)nv * DATASET_IMAGE_BYTES, img, DATASET_IMAGE_BYTES);
      val_out->labels[nv++] = train->labels[i];
    } else {
      if (nt != i)
        memcpy(train->images + (size_t)nt * DATASET_IMAGE_BYTES, img, DATASET_IMAGE_BYTES);
      train->labels[nt++] = train->labels[i];
    }
  }
  train->n = (int)nt;
  free(chosen);
  return CT_OK;
}

/* Per-channel mean and population std on the 0..1 scale; integer sums are
 * exact for any realistic N (N * 1024 * 255^2 < 2^63). */
static void channel_stats(const struct image_split *s, double *mean, double *std) {
  const long px = DATASET_SIDE * DATASET_SIDE;
  for (int c = 0; c < 3; c++) {
    uint64_t sum = 0, sq = 0;
    for (long i = 0; i < s->n; i++) {
      const uint8_t *p = s->images + (size_t)i * DATASET_IMAGE_BYTES + (size_t)c * px;
      for (long k = 0; k < px; k++) {
        sum += p[k];
        sq += (uint64_t)p[k] * p[k];
      }
    }
    double cnt = (double)s->n * (double)px;
    double m = (double)sum / cnt, var = (double)sq / cnt - m * m;
    mean[c] = m / 255.0;
    std[c] = sqrt(var > 0 ? var : 0) / 255.0;
  }
}

/* Writes one group with images (chunked) and labels. */
static int write_split(hid_t f, const char *path, const char *group, const struct image_split *s,
                       struct ct_err *e) {
  hsize_t n = (hsize_t)s->n;
  hsize_t dims[4] = {n, 3, DATASET_SIDE, DATASET_SIDE};
  hsize_t chunk[4] = {n < CHUNK_IMAGES ? n : CHUNK_IMAGES, 3, DATASET_SIDE, DATASET_SIDE};
  char name[32];
  snprintf(name, sizeof name, "%s/images", group);
  /* HDF5 refuses chunks of 0 rows: an empty split is stored contiguous. */
  if (h5io_write_chunked(f, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, n > 0 ? chunk : NULL,
                         s->images, path, e))
    return e->code;
  snprintf(name, sizeof name, "%s/labels", group);
  return h5io_write_plain(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, s->labels, path, e);
}

static int write_body(hid_t f, const char *path, int num_classes, const char *const *classes,
                      const struct image_split *train, const struct image_split *val,
                      const struct image_split *test, struct ct_err *e) {
  double mean[3], std[3];
  channel_stats(train, mean, std);
  if (write_split(f, path, "/train", train, e) ||
      (val && val->n > 0 && write_split(f, path, "/val", val, e)) ||
      write_split(f, path, "/test", test, e) ||
      h5io_attr_write_utf8(f, "classes", classes, (size_t)num_classes, path, e) ||
      h5io_attr_write_doubles(f, "mean", mean, 3, path, e) ||
      h5io_attr_write_doubles(f, "std", std, 3, path, e))
    return e->code;
  return CT_OK;
}

int dataset_write(const char *path, int num_classes, const char *const *classes,
                  const struct image_split *train, const struct image_split *val,
                  const struct image_split *test, struct ct_err *e) {
  if (num_classes < 1 || num_classes > DATASET_MAX_CLASSES)
    return err_set(e, CT_ERR_USAGE, "%s: %d classes, want 1..%d", path, num_classes,
                   DATASET_MAX_CLASSES);
  for (int c = 0; c < num_classes; c++)
    if (!classes[c][0] || strlen(classes[c]) >= DATASET_NAME_LEN)
      return err_set(e, CT_ERR_USAGE, "%s: class name '%s' is empty or longer than %d characters",
                     path, classes[c], DATASET_NAME_LEN - 1);
  if (train->n < 1) return err_set(e, CT_ERR_USAGE, "%s: the training split is empty", path);

  size_t len = strlen(path) + 16;
  char *tmp = malloc(len);
  if (!tmp) return err_set(e, CT_ERR_RUNTIME, "%s: out of memory", path);
  snprintf(tmp, len, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot create output: %s", path, strerror(errno));
    free(tmp);
    return rc;
  }
  /* mkstemp creates 0600; the dataset is an ordinary shared file. */
  fchmod(fd, 0644);
  close(fd);
  hid_t f = h5io_create_file(tmp, e);
  int rc = f < 0 ? CT_ERR_RUNTIME : write_body(f, path, num_classes, classes, train, val, test, e);
  if (f >= 0) rc = h5io_close_file(f, rc, path, e);
  if (!rc && rename(tmp, path) != 0)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot rename %s into place: %s", path, tmp,
                 strerror(errno));
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}
