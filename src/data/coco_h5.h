/* coco_h5.h — checked HDF5 reading shared by coco.c (the ctrain layout) and
 * prepare_coco.c (the CS231n files); not part of the public API, so the
 * trainer can include coco.h without HDF5. Every failure becomes a one-line
 * ct_err naming the file and the dataset. */
#ifndef CTRAIN_COCO_H5_H
#define CTRAIN_COCO_H5_H

#include <hdf5.h>
#include <stdint.h>

#include "core/error.h"

/* Generous bounds that keep every size product in size_t and every index in int32. */
enum { COCO_MAX_LENGTH = 1024, COCO_MAX_FEATURE_DIM = 1 << 20 };

/* Opens an existing file read-only; a missing file is reported with errno's text. */
hid_t coco_h5_open(const char *path, struct ct_err *e);

/* Opens dataset `name` and checks its dtype class (H5T_INTEGER, H5T_FLOAT or
 * H5T_STRING) and rank (1 or 2; `shape` describes the wanted shape for the
 * message, e.g. "(N,T)"); dims receives its shape. */
hid_t coco_h5_dataset(hid_t f, const char *path, const char *name, H5T_class_t cls, int rank,
                      const char *shape, hsize_t *dims, struct ct_err *e);

/* Reads rows start, start+stride, ... (count of them, all columns) of a rank
 * 1 or 2 dataset as one hyperslab, converted to mtype; 0 or -1. */
int coco_h5_read_rows(hid_t d, hid_t mtype, long start, long stride, long count, void *buf);

/* Token ids of n caption rows of width t must lie in [0, vocab); row i is file
 * row row0 + i * stride, which the message names. */
int coco_check_tokens(const int32_t *caps, long n, int t, long vocab, long row0, long stride,
                      const char *path, const char *name, struct ct_err *e);

/* Image indices must lie in [0, n_images), which are the rows of `features`. */
int coco_check_image_idxs(const int32_t *idx, long n, long n_images, long row0, long stride,
                          const char *path, const char *name, const char *features,
                          struct ct_err *e);

#endif
