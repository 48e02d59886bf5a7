/* h5io.h — small checked HDF5 helpers shared by checkpoints, the dataset
 * readers and importers, and `inspect`: every call's failure becomes a
 * ct_err naming the call, the file and the object. */
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

int h5io_attr_write_long(hid_t loc, const char *name, long v, const char *file, struct ct_err *e);
int h5io_attr_write_str(hid_t loc, const char *name, const char *s, const char *file,
                        struct ct_err *e);
int h5io_attr_write_double(hid_t loc, const char *name, double v, const char *file,
                           struct ct_err *e);
int h5io_attr_read_double(hid_t loc, const char *name, double *v, const char *file,
                          struct ct_err *e);
int h5io_attr_read_long(hid_t loc, const char *name, long *v, const char *file, struct ct_err *e);
/* Reads a string attribute into buf (truncation is an error). */
int h5io_attr_read_str(hid_t loc, const char *name, char *buf, size_t len, const char *file,
                       struct ct_err *e);

/* Every dataset in the file, depth first: checks each one's checksum (when
 * it has one) and, with `out`, prints its name, dtype, shape and checksum
 * state; root attributes first. Used by `ctrain inspect` and to validate a
 * checkpoint before resuming from it. */
int h5io_walk(hid_t f, FILE *out, const char *file, struct ct_err *e);

#endif
