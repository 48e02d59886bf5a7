/* h5walk.c — every dataset of a file checked and, for `ctrain inspect`,
 * described with the root attributes. */
#include <stdlib.h>
#include <string.h>

#include "h5/h5io.h"

/* A root attribute: numbers and strings in full, arrays up to 16 values. */
static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  FILE *out = data;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = a < 0 ? -1 : H5Aget_type(a);
  hid_t s = a < 0 ? -1 : H5Aget_space(a);
  hssize_t n = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
  fprintf(out, "  @%s = ", name);
  if (t >= 0 && H5Tget_class(t) == H5T_STRING && n == 1 && H5Tis_variable_str(t) <= 0) {
    size_t len = H5Tget_size(t);
    char *buf = calloc(len + 1, 1);
    hid_t m = H5Tcopy(H5T_C_S1);
    H5Tset_size(m, len + 1);
    if (buf && H5Aread(a, m, buf) >= 0) fprintf(out, strchr(buf, '\n') ? "\n%s" : "%s", buf);
    H5Tclose(m);
    free(buf);
  } else if (t >= 0 && H5Tget_class(t) == H5T_STRING && n > 0 && H5Tis_variable_str(t) > 0) {
    char **v = calloc((size_t)n, sizeof *v);
    hid_t m = H5Tcopy(H5T_C_S1);
    H5Tset_size(m, H5T_VARIABLE);
    H5Tset_cset(m, H5Tget_cset(t));
    if (v && H5Aread(a, m, v) >= 0)
      for (hssize_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", v[i] ? v[i] : "");
    for (hssize_t i = 0; v && i < n; i++)
      H5free_memory(v[i]);
    H5Tclose(m);
    free(v);
  } else if (t >= 0 && (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) && n > 0 &&
             n <= 16) {
    double v[16];
    if (H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0)
      for (hssize_t i = 0; i < n; i++)
        fprintf(out, "%s%.10g", i ? ", " : "", v[i]);
  } else {
    fputs("(not shown)", out);
  }
  fputc('\n', out);
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return 0;
}

struct walk {
  FILE *out;
  const char *file;
  struct ct_err *e;
  long datasets, bad;
};

static herr_t walk_object(hid_t f, const char *rel, const H5O_info_t *info, void *data) {
  struct walk *w = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  char name[1024];
  snprintf(name, sizeof name, "/%s", rel);
  w->datasets++;
  int nd;
  hsize_t dims[8];
  struct ct_err err = {0};
  if (h5io_shape(f, name, &nd, dims, w->file, &err)) {
    if (!w->bad++) *w->e = err;
    if (w->out) fprintf(w->out, "  %s: %s\n", name, err.msg);
    return 0;
  }
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), t = ds < 0 ? -1 : H5Dget_type(ds);
  int has_crc = ds >= 0 && H5Aexists(ds, "crc32") > 0;
  size_t numel = 1;
  for (int i = 0; i < nd; i++)
    numel *= dims[i];
  const char *state = "no checksum";
  if (has_crc) {
    /* Read as stored: the checksum is over the native bytes the writer had. */
    hid_t mt = H5Tget_native_type(t, H5T_DIR_DEFAULT);
    void *buf = malloc(numel * H5Tget_size(mt) + 1);
    int rc = buf ? h5io_read(f, name, mt, numel, buf, w->file, &err)
                 : err_set(&err, CT_ERR_RUNTIME, "%s: out of memory reading '%s'", w->file, name);
    free(buf);
    H5Tclose(mt);
    state = rc ? "BAD" : "checksum ok";
    if (rc && !w->bad++) *w->e = err;
  }
  if (w->out) {
    char tbuf[32], sbuf[192];
    h5io_shape_name(nd, dims, sbuf, sizeof sbuf);
    fprintf(w->out, "  %-45s %s %s  %s\n", name,
            t >= 0 ? h5io_dtype_name(t, tbuf, sizeof tbuf) : "", sbuf, state);
  }
  if (t >= 0) H5Tclose(t);
  if (ds >= 0) H5Dclose(ds);
  return 0;
}

int h5io_walk(hid_t f, FILE *out, const char *file, struct ct_err *e) {
  struct walk w = {out, file, e, 0, 0};
  if (out) {
    fprintf(out, "%s\nroot attributes:\n", file);
    hsize_t idx = 0;
    H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, print_attr, out);
    fputs("datasets:\n", out);
  }
  if (H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, walk_object, &w, H5O_INFO_BASIC) < 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: H5Ovisit2 failed (corrupt file?)", file);
  if (w.bad) return e->code;
  if (out) fprintf(out, "%ld datasets\n", w.datasets);
  return CT_OK;
}
