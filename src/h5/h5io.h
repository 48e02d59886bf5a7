/* h5io.h — the one room that calls HDF5 (DESIGN.md): small checked helpers
 * shared by checkpoints, the dataset readers and importers, the viz verbs
 * and `inspect`. Every call's failure becomes a ct_err naming the call, the
 * file and the object. */
#ifndef CTRAIN_H5IO_H
#define CTRAIN_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

/* Silences HDF5's own error printing once per process (we report instead). */
void h5io_quiet(void);
/* Releases *id when it is open and marks it closed (-1), whatever its kind. */
void h5io_close(hid_t *id);
/* For messages: a dtype as "uint8", "int32", "float32", "string" or
 * "non-numeric" (buf holds the numeric names), and a shape as "(N,T)". */
const char *h5io_dtype_name(hid_t t, char *buf, size_t len);
void h5io_shape_name(int rank, const hsize_t *dims, char *buf, size_t len);

/* Opens an existing file read-only; a missing or unreadable file is reported
 * with errno's text, one HDF5 cannot open as not an HDF5 file. */
hid_t h5io_open(const char *path, struct ct_err *e);
/* Creates path, truncating any file there. */
hid_t h5io_create_file(const char *path, struct ct_err *e);
/* Closes f and returns rc, or the close's failure when rc is CT_OK: a failed
 * close can lose what was written, but must not hide an earlier error. */
int h5io_close_file(hid_t f, int rc, const char *path, struct ct_err *e);
/* A checkpoint's file, created (truncating) with a strong close degree:
 * closing it closes every id still open in it, so a failed write leaves
 * nothing for MPI_Finalize's HDF5 shutdown to close after the file is gone. */
hid_t h5io_ckpt_create(const char *path, struct ct_err *e);
/* Opens a checkpoint read-only; one HDF5 cannot open is reported as
 * truncated or corrupt, since ctrain wrote it. */
hid_t h5io_ckpt_open(const char *path, struct ct_err *e);
/* 1 when loc has a link (group or dataset) `name`, else 0 (also when HDF5
 * cannot tell). */
int h5io_exists(hid_t loc, const char *name);

/* zlib's crc32 of data continued from crc (0 to start), any size. */
uint32_t h5io_crc32(uint32_t crc, const void *data, size_t bytes);

/* Writes a dataset with a `crc32` attribute over its bytes (as stored in
 * memory), so that a reader can tell a damaged file from a good one. */
int h5io_write(hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
               const void *data, const char *file, struct ct_err *e);
/* Reads dataset `name` of exactly `numel` elements of `type` into data and,
 * when it has a `crc32` attribute, checks the bytes against it. */
int h5io_read(hid_t loc, const char *name, hid_t type, size_t numel, void *data, const char *file,
              struct ct_err *e);
/* Dataset shape: ndim and dims (up to 8). */
int h5io_shape(hid_t loc, const char *name, int *ndim, hsize_t *dims, const char *file,
               struct ct_err *e);

/* 1 when loc has attribute `name`, else 0 (also when HDF5 cannot tell). */
int h5io_attr_exists(hid_t loc, const char *name);
int h5io_attr_write_long(hid_t loc, const char *name, long v, const char *file, struct ct_err *e);
int h5io_attr_write_str(hid_t loc, const char *name, const char *s, const char *file,
                        struct ct_err *e);
/* A 1-D attribute of n fixed-width strings, `width` bytes apart in strs
 * (as char[n][width]), which h5py reads as a list. */
int h5io_attr_write_strs(hid_t loc, const char *name, const void *strs, size_t n, size_t width,
                         const char *file, struct ct_err *e);
/* A string attribute of object `obj` (a path below loc). */
int h5io_attr_write_str_of(hid_t loc, const char *obj, const char *name, const char *s,
                           const char *file, struct ct_err *e);
int h5io_attr_write_double(hid_t loc, const char *name, double v, const char *file,
                           struct ct_err *e);
/* A 1-D float64 attribute of n values. */
int h5io_attr_write_doubles(hid_t loc, const char *name, const double *v, size_t n,
                            const char *file, struct ct_err *e);
/* A 1-D attribute of n variable-length UTF-8 strings, which h5py reads as a
 * list of str. */
int h5io_attr_write_utf8(hid_t loc, const char *name, const char *const *strs, size_t n,
                         const char *file, struct ct_err *e);
int h5io_attr_read_double(hid_t loc, const char *name, double *v, const char *file,
                          struct ct_err *e);
int h5io_attr_read_long(hid_t loc, const char *name, long *v, const char *file, struct ct_err *e);
/* Reads a float attribute of exactly n values (any rank) as doubles. */
int h5io_attr_read_doubles(hid_t loc, const char *name, double *v, size_t n, const char *file,
                           struct ct_err *e);
/* Opens a 1-D string attribute, fixed-width or variable-length, for
 * h5io_read_strs; *n receives its length. */
hid_t h5io_attr_open_strs(hid_t loc, const char *name, hsize_t *n, const char *file,
                          struct ct_err *e);
/* Reads a string attribute into buf (truncation is an error). */
int h5io_attr_read_str(hid_t loc, const char *name, char *buf, size_t len, const char *file,
                       struct ct_err *e);

/* The variable-length UTF-8 string type (h5py returns str), to be closed;
 * -1 on failure. */
hid_t h5io_utf8_type(void);
/* Reads the n strings of a string dataset or attribute `obj` (named `what`
 * in messages), variable-length or fixed-width, into out[0..n) as malloc'd
 * NUL-terminated copies (the caller frees them; all NULL on failure). */
int h5io_read_strs(hid_t obj, size_t n, char **out, const char *what, const char *file,
                   struct ct_err *e);

/* Every dataset in the file (h5walk.c), depth first: checks each one's checksum (when
 * it has one) and, with `out`, prints its name, dtype, shape and checksum
 * state; root attributes first. Used by `ctrain inspect` and to validate a
 * checkpoint before resuming from it. */
int h5io_walk(hid_t f, FILE *out, const char *file, struct ct_err *e);

/* --- datasets checked on opening, and by rows (h5rows.c) ------------------- */

/* What a reader wants of a dataset, for h5io_dataset. */
struct h5io_want {
  H5T_class_t cls;      /* H5T_INTEGER, H5T_FLOAT or H5T_STRING */
  const char *dtype;    /* the wanted dtype as messages name it, e.g. "int32" */
  int rank;             /* 1 to H5S_MAX_RANK */
  const char *shape;    /* the wanted shape as messages name it, e.g. "(N,T)" */
  hid_t exact;          /* when set, the dtype must also have this type's size and sign */
  const hsize_t *fixed; /* when set, fixed[i] > 0 is the size that dimension i must have */
};

/* Opens dataset `name` and checks it against *w; dims receives its w->rank
 * dimensions, the first at most INT32_MAX (rows are indexed by an int32). */
hid_t h5io_dataset(hid_t f, const char *path, const char *name, const struct h5io_want *w,
                   hsize_t *dims, struct ct_err *e);

/* Reads rows start, start+stride, ... (count of them, whole rows) of a
 * dataset of any rank as one hyperslab, converted to mtype; 0 or -1. */
int h5io_read_rows(hid_t d, hid_t mtype, long start, long stride, long count, void *buf);
/* Writes rows [start, start + count) of a dataset of any rank; 0 or -1. */
int h5io_write_rows(hid_t d, hid_t mtype, long start, long count, const void *buf);
/* Reopens *d, dataset `name` of loc, without a chunk cache, for scattered
 * reads: HDF5 then reads just the selected bytes of a chunk instead of the
 * whole chunk around them. */
int h5io_reopen_uncached(hid_t loc, const char *name, hid_t *d, const char *file, struct ct_err *e);

/* Creates dataset `name` of file type ftype, and the groups on its path. */
hid_t h5io_create(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                  const char *file, struct ct_err *e);
/* Creates `name` and writes data (memory type mtype) whole, without the
 * checksum h5io_write adds: for layouts that other programs read. */
int h5io_write_plain(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                     const hsize_t *dims, const void *data, const char *file, struct ct_err *e);
/* As h5io_write_plain, stored in chunks of `chunk` (contiguous when NULL),
 * so that a reader of a few rows reads only their chunks. */
int h5io_write_chunked(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                       const hsize_t *dims, const hsize_t *chunk, const void *data,
                       const char *file, struct ct_err *e);
/* Creates `name` as a 1-D dataset of n variable-length UTF-8 strings, which
 * h5py returns as str. */
int h5io_write_utf8(hid_t loc, const char *name, char *const *strs, size_t n, const char *file,
                    struct ct_err *e);

#endif
