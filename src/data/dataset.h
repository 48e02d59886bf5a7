/* dataset.h — the HDF5 image layout (docs/data.md): /{train,val,test}/images
 * uint8 (N,3,32,32), /{train,val,test}/labels int32 (N), root attributes
 * `classes`, `mean`, `std`. Readers validate everything they touch so that a
 * malformed file becomes a one-line ct_err naming the file and dataset. */
#ifndef CTRAIN_DATASET_H
#define CTRAIN_DATASET_H

#include <stdint.h>

#include "core/error.h"

enum { DATASET_MAX_CLASSES = 16, DATASET_NAME_LEN = 32, DATASET_SIDE = 32 };
enum { DATASET_IMAGE_BYTES = 3 * DATASET_SIDE * DATASET_SIDE };

struct dataset_info {
  int num_classes;
  char classes[DATASET_MAX_CLASSES][DATASET_NAME_LEN];
  double mean[3], std[3];
  int n_train, n_val, n_test; /* n_val is 0 when the file has no /val */
};

/* Reads the root attributes and the split sizes; /train and /test must exist
 * and be well formed, /val is optional. */
int dataset_read_info(const char *path, struct dataset_info *info, struct ct_err *e);

/* images: n * DATASET_IMAGE_BYTES, CHW per image; labels: n. */
struct image_split {
  int n;
  uint8_t *images;
  int32_t *labels;
};

/* Reads rows start, start+stride, ... of split "train", "val" or "test" as a
 * hyperslab selection, so an MPI rank reads only its shard. count < 0 means
 * every such row that exists. The function allocates out->images and
 * out->labels (release with image_split_free); on error *out is empty.
 * Validates dtype, rank and shape and that labels lie in [0, num_classes). */
int dataset_read_split(const char *path, const char *split, long start, long stride, long count,
                       struct image_split *out, struct ct_err *e);

/* Reads the given rows of split "train", "val" or "test" — any order,
 * repeats allowed — into images (count * DATASET_IMAGE_BYTES) and labels
 * (count), in the order asked. The rows are read in sorted runs with HDF5's
 * chunk cache off, so a rank reads only the bytes of its own rows. Validates
 * the datasets as dataset_read_split does, that every row exists and that
 * labels lie in [0, num_classes). */
int dataset_read_rows(const char *path, const char *split, const long *rows, long count,
                      uint8_t *images, int32_t *labels, struct ct_err *e);

/* Reads all labels of a split (4 bytes an image, not the images) and checks
 * they lie in [0, num_classes), so a bad label fails at start-up even when
 * this rank would reach its row only in a later epoch. */
int dataset_check_labels(const char *path, const char *split, struct ct_err *e);

/* Allocates an uninitialised split of n images. */
int image_split_alloc(struct image_split *s, long n, struct ct_err *e);
void image_split_free(struct image_split *s);

/* Fisher–Yates shuffle of perm[0..n) drawing from the counter stream
 * (key, counter); perm is first set to the identity. */
void dataset_permutation(long *perm, long n, uint64_t key, uint64_t counter);

/* The rows of an n-row /train that dataset_split_val keeps for training
 * (train_rows, n - val of them) and moves to validation (val_rows, val),
 * each in file order: every rank computes the same split without reading
 * a single image. */
int dataset_val_rows(long n, int val, uint64_t seed, long *train_rows, long *val_rows,
                     struct ct_err *e);

/* Moves `val` images of *train, chosen by a permutation seeded with `seed`,
 * into *val_out. Both keep the original relative order of their images. */
int dataset_split_val(struct image_split *train, int val, uint64_t seed,
                      struct image_split *val_out, struct ct_err *e);

/* Writes the layout to `path` through a temporary file renamed into place, so
 * a failure never leaves a partial file there. mean/std are computed from
 * train; val may be NULL or empty (then there is no /val group). */
int dataset_write(const char *path, int num_classes, const char *const *classes,
                  const struct image_split *train, const struct image_split *val,
                  const struct image_split *test, struct ct_err *e);

#endif
