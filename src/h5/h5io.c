/* h5io.c — checked HDF5 helpers: files, whole datasets with their checksum,
 * attributes and string lists. */
#include "h5/h5io.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

void h5io_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void h5io_close(hid_t *id) {
  if (*id >= 0) H5Idec_ref(*id);
  *id = -1;
}

const char *h5io_dtype_name(hid_t t, char *buf, size_t len) {
  size_t bits = H5Tget_size(t) * 8;
  switch (H5Tget_class(t)) {
  case H5T_INTEGER:
    snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
    return buf;
  case H5T_FLOAT:
    snprintf(buf, len, "float%zu", bits);
    return buf;
  case H5T_STRING:
    return "string";
  default:
    return "non-numeric";
  }
}

void h5io_shape_name(int rank, const hsize_t *dims, char *buf, size_t len) {
  size_t off = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < rank && off < len; i++)
    off +=
        (size_t)snprintf(buf + off, len - off, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
  if (off < len) snprintf(buf + off, len - off, ")");
}

hid_t h5io_open(const char *path, struct ct_err *e) {
  h5io_quiet();
  if (access(path, R_OK) != 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: %s", path, strerror(errno));
    return -1;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) err_set(e, CT_ERR_RUNTIME, "%s: H5Fopen failed (not an HDF5 file?)", path);
  return f;
}

hid_t h5io_create_file(const char *path, struct ct_err *e) {
  h5io_quiet();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) err_set(e, CT_ERR_RUNTIME, "%s: cannot create (H5Fcreate failed)", path);
  return f;
}

hid_t h5io_ckpt_create(const char *path, struct ct_err *e) {
  h5io_quiet();
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    h5io_close(&fapl);
    err_set(e, CT_ERR_RUNTIME, "%s: H5Pset_fclose_degree failed", path);
    return -1;
  }
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  h5io_close(&fapl);
  if (f < 0) err_set(e, CT_ERR_RUNTIME, "%s: cannot create checkpoint (H5Fcreate)", path);
  return f;
}

hid_t h5io_ckpt_open(const char *path, struct ct_err *e) {
  h5io_quiet();
  if (access(path, R_OK) != 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: cannot read checkpoint: %s", path, strerror(errno));
    return -1;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    err_set(e, CT_ERR_RUNTIME, "%s: not a readable HDF5 file (truncated or corrupt?)", path);
  return f;
}

int h5io_close_file(hid_t f, int rc, const char *path, struct ct_err *e) {
  if (H5Fclose(f) < 0 && !rc) rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Fclose failed", path);
  return rc;
}

/* zlib's crc32 takes at most UINT_MAX bytes a call. */
uint32_t h5io_crc32(uint32_t crc, const void *data, size_t bytes) {
  const Bytef *p = data;
  for (size_t off = 0; off < bytes; off += 1u << 30) {
    size_t n = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
    crc = crc32(crc, p + off, (uInt)n);
  }
  return (uint32_t)crc;
}

/* Compares the dataset's `crc32` attribute, if any, with data's bytes. */
static int verify_crc(hid_t ds, const char *name, const void *data, size_t bytes, const char *file,
                      struct ct_err *e) {
  if (!h5io_attr_exists(ds, "crc32")) return CT_OK;
  long want;
  if (h5io_attr_read_long(ds, "crc32", &want, file, e)) return e->code;
  if ((uint32_t)want != h5io_crc32(0, data, bytes))
    return err_set(e, CT_ERR_RUNTIME, "%s: checksum mismatch in '%s' (corrupt file)", file, name);
  return CT_OK;
}

int h5io_write(hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
               const void *data, const char *file, struct ct_err *e) {
  hid_t space = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
  if (space < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Screate failed for '%s'", file, name);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t ds = H5Dcreate2(loc, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  H5Sclose(space);
  if (ds < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Dcreate2 failed for '%s'", file, name);
  herr_t rc = H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  size_t bytes = H5Tget_size(type);
  for (int i = 0; i < ndim; i++)
    bytes *= dims[i];
  int crc_rc =
      rc < 0 ? CT_OK : h5io_attr_write_long(ds, "crc32", (long)h5io_crc32(0, data, bytes), file, e);
  if (H5Dclose(ds) < 0 || rc < 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: H5Dwrite failed for '%s'", file, name);
  return crc_rc;
}

int h5io_shape(hid_t loc, const char *name, int *ndim, hsize_t *dims, const char *file,
               struct ct_err *e) {
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: no dataset '%s'", file, name);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Dopen2 failed for '%s'", file, name);
  hid_t space = H5Dget_space(ds);
  int nd = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
  if (nd < 0 || nd > 8) {
    if (space >= 0) H5Sclose(space);
    H5Dclose(ds);
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot read the shape of '%s'", file, name);
  }
  H5Sget_simple_extent_dims(space, dims, NULL);
  *ndim = nd;
  H5Sclose(space);
  H5Dclose(ds);
  return CT_OK;
}

int h5io_read(hid_t loc, const char *name, hid_t type, size_t numel, void *data, const char *file,
              struct ct_err *e) {
  int nd;
  hsize_t dims[8];
  if (h5io_shape(loc, name, &nd, dims, file, e)) return e->code;
  size_t have = 1;
  for (int i = 0; i < nd; i++)
    have *= dims[i];
  if (have != numel)
    return err_set(e, CT_ERR_RUNTIME, "%s: dataset '%s' has %zu elements, expected %zu", file, name,
                   have, numel);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Dopen2 failed for '%s'", file, name);
  herr_t rc = H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  int vrc = rc < 0 ? CT_OK : verify_crc(ds, name, data, numel * H5Tget_size(type), file, e);
  H5Dclose(ds);
  if (rc < 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: H5Dread failed for '%s' (corrupt file?)", file, name);
  return vrc;
}

/* A scalar (n NULL) or 1-D (*n values) attribute of file type ftype,
 * written from memory type mtype. */
static int attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const hsize_t *n,
                      const void *v, const char *file, struct ct_err *e) {
  hid_t space = n ? H5Screate_simple(1, n, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = space < 0 ? -1 : H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
  h5io_close(&space);
  if (a < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Acreate2 failed for '%s'", file, name);
  herr_t rc = H5Awrite(a, mtype, v);
  if (H5Aclose(a) < 0 || rc < 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: H5Awrite failed for '%s'", file, name);
  return CT_OK;
}

static int attr_read(hid_t loc, const char *name, hid_t type, void *v, const char *file,
                     struct ct_err *e) {
  if (H5Aexists(loc, name) <= 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: attribute '%s' is missing", file, name);
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Aread(a, type, v);
  if (a >= 0) H5Aclose(a);
  if (rc < 0) return err_set(e, CT_ERR_RUNTIME, "%s: cannot read attribute '%s'", file, name);
  return CT_OK;
}

int h5io_attr_exists(hid_t loc, const char *name) { return H5Aexists(loc, name) > 0; }

int h5io_exists(hid_t loc, const char *name) { return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

/* Opens attribute `name` with its class, rank and number of values, for a
 * reader that checks its form before reading it; -1 when a call fails. */
static hid_t attr_open_form(hid_t loc, const char *name, H5T_class_t *cls, int *rank, hssize_t *n) {
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t t = a < 0 ? -1 : H5Aget_type(a), s = a < 0 ? -1 : H5Aget_space(a);
  if (t >= 0 && s >= 0) {
    *cls = H5Tget_class(t);
    *rank = H5Sget_simple_extent_ndims(s);
    *n = H5Sget_simple_extent_npoints(s);
  } else {
    h5io_close(&a);
  }
  h5io_close(&t);
  h5io_close(&s);
  return a;
}

int h5io_attr_read_doubles(hid_t loc, const char *name, double *v, size_t n, const char *file,
                           struct ct_err *e) {
  H5T_class_t cls;
  int rank;
  hssize_t have;
  hid_t a = attr_open_form(loc, name, &cls, &rank, &have);
  if (a < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Aopen(%s) failed", file, name);
  int rc = CT_OK;
  if (cls != H5T_FLOAT || have != (hssize_t)n)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: attribute '%s' must be float64[%zu]", file, name, n);
  else if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Aread(%s) failed", file, name);
  h5io_close(&a);
  return rc;
}

hid_t h5io_attr_open_strs(hid_t loc, const char *name, hsize_t *n, const char *file,
                          struct ct_err *e) {
  H5T_class_t cls;
  int rank;
  hssize_t have;
  hid_t a = attr_open_form(loc, name, &cls, &rank, &have);
  if (a < 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: H5Aopen/H5Aget_type(%s) failed", file, name);
    return -1;
  }
  if (cls != H5T_STRING || rank != 1 || have < 0) {
    err_set(e, CT_ERR_RUNTIME, "%s: attribute '%s' must be a 1-D array of strings", file, name);
    h5io_close(&a);
    return -1;
  }
  *n = (hsize_t)have;
  return a;
}

int h5io_attr_write_long(hid_t loc, const char *name, long v, const char *file, struct ct_err *e) {
  return attr_write(loc, name, H5T_NATIVE_LONG, H5T_NATIVE_LONG, NULL, &v, file, e);
}

int h5io_attr_write_double(hid_t loc, const char *name, double v, const char *file,
                           struct ct_err *e) {
  return attr_write(loc, name, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, NULL, &v, file, e);
}

int h5io_attr_write_doubles(hid_t loc, const char *name, const double *v, size_t n,
                            const char *file, struct ct_err *e) {
  hsize_t dims = n;
  return attr_write(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &dims, v, file, e);
}

hid_t h5io_utf8_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0))
    h5io_close(&t);
  return t;
}

int h5io_attr_write_utf8(hid_t loc, const char *name, const char *const *strs, size_t n,
                         const char *file, struct ct_err *e) {
  hid_t t = h5io_utf8_type();
  hsize_t dims = n;
  int rc = t < 0 ? err_set(e, CT_ERR_RUNTIME, "%s: cannot make a string type for %s", file, name)
                 : attr_write(loc, name, t, t, &dims, strs, file, e);
  h5io_close(&t);
  return rc;
}

int h5io_attr_read_double(hid_t loc, const char *name, double *v, const char *file,
                          struct ct_err *e) {
  return attr_read(loc, name, H5T_NATIVE_DOUBLE, v, file, e);
}

/* A scalar (n NULL) or 1-D (*n) attribute of fixed-width strings on obj. */
static int str_attr(hid_t loc, const char *obj, const char *name, const void *s, const hsize_t *n,
                    size_t width, const char *file, struct ct_err *e) {
  hid_t type = H5Tcopy(H5T_C_S1), a = -1;
  hid_t space = n ? H5Screate_simple(1, n, NULL) : H5Screate(H5S_SCALAR);
  herr_t rc = -1;
  if (type >= 0 && space >= 0 && H5Tset_size(type, width) >= 0 &&
      (a = H5Acreate_by_name(loc, obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >=
          0)
    rc = H5Awrite(a, type, s);
  if (a >= 0 && H5Aclose(a) < 0) rc = -1;
  h5io_close(&space);
  h5io_close(&type);
  if (rc >= 0) return CT_OK;
  if (strcmp(obj, "."))
    return err_set(e, CT_ERR_RUNTIME, "%s: writing attribute '%s' of '%s' failed", file, name, obj);
  return err_set(e, CT_ERR_RUNTIME, "%s: writing attribute '%s' failed", file, name);
}

int h5io_attr_write_str(hid_t loc, const char *name, const char *s, const char *file,
                        struct ct_err *e) {
  return str_attr(loc, ".", name, s, NULL, strlen(s) + 1, file, e);
}

int h5io_attr_write_str_of(hid_t loc, const char *obj, const char *name, const char *s,
                           const char *file, struct ct_err *e) {
  return str_attr(loc, obj, name, s, NULL, strlen(s) + 1, file, e);
}

int h5io_attr_write_strs(hid_t loc, const char *name, const void *strs, size_t n, size_t width,
                         const char *file, struct ct_err *e) {
  hsize_t dims = n;
  return str_attr(loc, ".", name, strs, &dims, width, file, e);
}

int h5io_attr_read_long(hid_t loc, const char *name, long *v, const char *file, struct ct_err *e) {
  return attr_read(loc, name, H5T_NATIVE_LONG, v, file, e);
}

int h5io_attr_read_str(hid_t loc, const char *name, char *buf, size_t len, const char *file,
                       struct ct_err *e) {
  if (H5Aexists(loc, name) <= 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: attribute '%s' is missing", file, name);
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Aopen failed for '%s'", file, name);
  hid_t ftype = H5Aget_type(a);
  int bad = ftype < 0 || H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) > 0 ||
            H5Tget_size(ftype) >= len;
  herr_t rc = -1;
  if (!bad) {
    hid_t mtype = H5Tcopy(H5T_C_S1);
    H5Tset_size(mtype, H5Tget_size(ftype) + 1);
    memset(buf, 0, len);
    rc = H5Aread(a, mtype, buf);
    H5Tclose(mtype);
  }
  if (ftype >= 0) H5Tclose(ftype);
  H5Aclose(a);
  if (bad || rc < 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: attribute '%s' is not a readable string", file, name);
  return CT_OK;
}

int h5io_read_strs(hid_t obj, size_t n, char **out, const char *what, const char *file,
                   struct ct_err *e) {
  int attr = H5Iget_type(obj) == H5I_ATTR;
  hid_t t = attr ? H5Aget_type(obj) : H5Dget_type(obj), m = -1;
  htri_t var = t < 0 ? -1 : H5Tis_variable_str(t);
  size_t width = t < 0 ? 0 : H5Tget_size(t);
  char **vlen = NULL, *fixed = NULL;
  int rc = CT_ERR_RUNTIME;
  memset(out, 0, n * sizeof *out);
  if (var < 0 || (m = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(m, var ? H5T_VARIABLE : width) < 0 ||
      H5Tset_cset(m, H5Tget_cset(t)) < 0 || (!var && H5Tset_strpad(m, H5T_STR_NULLPAD) < 0)) {
    err_set(e, rc, "%s: cannot make a string type for %s (H5Tset_size)", file, what);
    goto done;
  }
  if (var ? !(vlen = calloc(n, sizeof *vlen)) : !(fixed = calloc(n, width))) {
    err_set(e, rc, "%s: out of memory reading %s", file, what);
    goto done;
  }
  void *buf = var ? (void *)vlen : (void *)fixed;
  if ((attr ? H5Aread(obj, m, buf) : H5Dread(obj, m, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)) < 0) {
    err_set(e, rc, "%s: %s(%s) failed", file, attr ? "H5Aread" : "H5Dread", what);
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    const char *s = var ? vlen[i] : fixed + i * width;
    size_t len = var ? (s ? strlen(s) : 0) : strnlen(s, width);
    if (!(out[i] = malloc(len + 1))) {
      err_set(e, rc, "%s: out of memory reading %s", file, what);
      goto done;
    }
    memcpy(out[i], s, len);
    out[i][len] = 0;
  }
  rc = CT_OK;
done:
  for (size_t i = 0; rc && i < n; i++) {
    free(out[i]);
    out[i] = NULL;
  }
  for (size_t i = 0; vlen && i < n; i++)
    H5free_memory(vlen[i]);
  free(vlen);
  free(fixed);
  h5io_close(&m);
  h5io_close(&t);
  return rc;
}
