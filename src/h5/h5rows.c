/* h5rows.c — datasets checked on opening and read or written by rows, so
 * that a rank touches only its shard and an importer only one block. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "h5/h5io.h"

static int dtype_ok(hid_t t, const struct h5io_want *w) {
  if (H5Tget_class(t) != w->cls) return 0;
  return w->exact <= 0 ||
         (H5Tget_size(t) == H5Tget_size(w->exact) && H5Tget_sign(t) == H5Tget_sign(w->exact));
}

static int fixed_ok(const hsize_t *dims, const struct h5io_want *w) {
  for (int i = 0; w->fixed && i < w->rank; i++)
    if (w->fixed[i] > 0 && dims[i] != w->fixed[i]) return 0;
  return 1;
}

hid_t h5io_dataset(hid_t f, const char *path, const char *name, const struct h5io_want *w,
                   hsize_t *dims, struct ct_err *e) {
  /* H5Lexists fails on a path whose group is missing: test each prefix. */
  char prefix[128];
  for (const char *s = strchr(name + 1, '/');; s = strchr(s + 1, '/')) {
    snprintf(prefix, sizeof prefix, "%.*s", s ? (int)(s - name) : (int)strlen(name), name);
    if (H5Lexists(f, prefix, H5P_DEFAULT) <= 0) {
      err_set(e, CT_ERR_RUNTIME, "%s: dataset %s missing", path, name);
      return -1;
    }
    if (!s) break;
  }
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: %s is not a dataset (H5Dopen2 failed)", path, name);
    return -1;
  }
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  char buf[64];
  int ok = 0;
  if (t < 0 || s < 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: H5Dget_type/H5Dget_space(%s) failed", path, name);
    goto done;
  }
  if (!dtype_ok(t, w)) {
    err_set(e, CT_ERR_RUNTIME, "%s: %s has dtype %s, want %s", path, name,
            h5io_dtype_name(t, buf, sizeof buf), w->dtype);
    goto done;
  }
  hsize_t all[H5S_MAX_RANK];
  int have = H5Sget_simple_extent_ndims(s);
  if (have < 0 || H5Sget_simple_extent_dims(s, all, NULL) < 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: H5Sget_simple_extent_dims(%s) failed", path, name);
    goto done;
  }
  if (have != w->rank || !fixed_ok(all, w)) {
    h5io_shape_name(have, all, buf, sizeof buf);
    err_set(e, CT_ERR_RUNTIME, "%s: %s has shape %s, want %s", path, name, buf, w->shape);
    goto done;
  }
  if (all[0] > INT32_MAX) {
    err_set(e, CT_ERR_RUNTIME,
            "%s: %s has %llu rows, too many: rows are indexed by a 32-bit int, at most %d", path,
            name, (unsigned long long)all[0], INT32_MAX);
    goto done;
  }
  memcpy(dims, all, (size_t)w->rank * sizeof *dims);
  ok = 1;
done:
  h5io_close(&t);
  h5io_close(&s);
  if (!ok) h5io_close(&d);
  return d;
}

/* Selects rows start, start+stride, ... (count, whole rows) of d in *fs and
 * makes the matching memory space *ms; 0 or -1, the spaces to be closed
 * either way. */
static int select_rows(hid_t d, long start, long stride, long count, hid_t *fs, hid_t *ms) {
  hsize_t dims[H5S_MAX_RANK], off[H5S_MAX_RANK] = {0}, step[H5S_MAX_RANK], cnt[H5S_MAX_RANK];
  *ms = -1;
  *fs = H5Dget_space(d);
  int rank = *fs < 0 ? -1 : H5Sget_simple_extent_ndims(*fs);
  if (rank < 1 || H5Sget_simple_extent_dims(*fs, dims, NULL) < 0) return -1;
  for (int i = 0; i < rank; i++) {
    step[i] = 1;
    cnt[i] = 1;
  }
  off[0] = (hsize_t)start;
  step[0] = (hsize_t)stride;
  cnt[0] = (hsize_t)count;
  /* Blocks of one row: dims with the first set to 1. */
  dims[0] = 1;
  if (H5Sselect_hyperslab(*fs, H5S_SELECT_SET, off, step, cnt, dims) < 0) return -1;
  dims[0] = (hsize_t)count;
  *ms = H5Screate_simple(rank, dims, NULL);
  return *ms < 0 ? -1 : 0;
}

int h5io_read_rows(hid_t d, hid_t mtype, long start, long stride, long count, void *buf) {
  if (count == 0) return 0;
  hid_t fs, ms;
  herr_t st = -1;
  if (select_rows(d, start, stride, count, &fs, &ms) == 0)
    st = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf);
  h5io_close(&fs);
  h5io_close(&ms);
  return st < 0 ? -1 : 0;
}

int h5io_write_rows(hid_t d, hid_t mtype, long start, long count, const void *buf) {
  if (count == 0) return 0;
  hid_t fs, ms;
  herr_t st = -1;
  if (select_rows(d, start, 1, count, &fs, &ms) == 0)
    st = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf);
  h5io_close(&fs);
  h5io_close(&ms);
  return st < 0 ? -1 : 0;
}

int h5io_reopen_uncached(hid_t loc, const char *name, hid_t *d, const char *file,
                         struct ct_err *e) {
  hid_t dapl = H5Dget_access_plist(*d);
  if (dapl < 0 || H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0) {
    h5io_close(&dapl);
    return err_set(e, CT_ERR_RUNTIME, "%s: H5Pset_chunk_cache(%s) failed", file, name);
  }
  h5io_close(d);
  *d = H5Dopen2(loc, name, dapl);
  h5io_close(&dapl);
  return *d < 0 ? err_set(e, CT_ERR_RUNTIME, "%s: H5Dopen2(%s) failed", file, name) : CT_OK;
}

/* h5io_create, in chunks of `chunk` when set (else contiguous). */
static hid_t create(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                    const hsize_t *chunk, const char *file, struct ct_err *e) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0 || (chunk && H5Pset_chunk(dcpl, rank, chunk) < 0)) {
    h5io_close(&dcpl);
    err_set(e, CT_ERR_RUNTIME, "%s: H5Pcreate/H5Pset_chunk(%s) failed", file, name);
    return -1;
  }
  hid_t sp = H5Screate_simple(rank, dims, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE), d = -1;
  if (sp >= 0 && lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0)
    d = H5Dcreate2(loc, name, ftype, sp, lcpl, dcpl, H5P_DEFAULT);
  h5io_close(&sp);
  h5io_close(&lcpl);
  h5io_close(&dcpl);
  if (d < 0) err_set(e, CT_ERR_RUNTIME, "%s: H5Dcreate2(%s) failed", file, name);
  return d;
}

hid_t h5io_create(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                  const char *file, struct ct_err *e) {
  return create(loc, name, ftype, rank, dims, NULL, file, e);
}

int h5io_write_chunked(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                       const hsize_t *dims, const hsize_t *chunk, const void *data,
                       const char *file, struct ct_err *e) {
  hid_t d = create(loc, name, ftype, rank, dims, chunk, file, e);
  if (d < 0) return CT_ERR_RUNTIME;
  int rc = h5io_write_rows(d, mtype, 0, (long)dims[0], data);
  if (H5Dclose(d) < 0) rc = -1;
  return rc ? err_set(e, CT_ERR_RUNTIME, "%s: H5Dwrite(%s) failed", file, name) : CT_OK;
}

int h5io_write_plain(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                     const hsize_t *dims, const void *data, const char *file, struct ct_err *e) {
  return h5io_write_chunked(loc, name, ftype, mtype, rank, dims, NULL, data, file, e);
}

int h5io_write_utf8(hid_t loc, const char *name, char *const *strs, size_t n, const char *file,
                    struct ct_err *e) {
  hid_t st = h5io_utf8_type();
  hsize_t dims = n;
  int rc = st < 0 ? err_set(e, CT_ERR_RUNTIME, "%s: cannot make a string type for %s", file, name)
                  : h5io_write_plain(loc, name, st, st, 1, &dims, strs, file, e);
  h5io_close(&st);
  return rc;
}
