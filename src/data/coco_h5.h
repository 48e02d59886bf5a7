/* coco_h5.h — the checks that coco.c (the ctrain layout) and prepare_coco.c
 * (the CS231n files) both make of what they read through h5/h5io.h; not
 * part of the public API, so the trainer can include coco.h without them.
 * Every failure becomes a one-line ct_err naming the file and the dataset. */
#ifndef CTRAIN_COCO_H5_H
#define CTRAIN_COCO_H5_H

#include <stdint.h>

#include "core/error.h"

/* Generous bounds that keep every size product in size_t and every index in int32. */
enum { COCO_MAX_LENGTH = 1024, COCO_MAX_FEATURE_DIM = 1 << 20 };

/* Token ids of n caption rows of width t must lie in [0, vocab); row i is file
 * row row0 + i * stride, which the message names. */
int coco_check_tokens(const int32_t *caps, long n, int t, long vocab, long row0, long stride,
                      const char *path, const char *name, struct ct_err *e);

/* Image indices must lie in [0, n_images), which are the rows of `features`. */
int coco_check_image_idxs(const int32_t *idx, long n, long n_images, long row0, long stride,
                          const char *path, const char *name, const char *features,
                          struct ct_err *e);

#endif
