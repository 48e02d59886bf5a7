/* prepare.h — importers that turn a dataset source into the HDF5 layout of
 * dataset.h at OUT (written atomically). `val` images, chosen by a
 * permutation seeded with `seed`, move from train to /val. */
#ifndef CTRAIN_PREPARE_H
#define CTRAIN_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* src: a directory holding data_batch_1.bin .. data_batch_5.bin and
 * test_batch.bin (directly or in cifar-10-batches-bin/), or the official
 * cifar-10-binary.tar.gz. Class names come from batches.meta.txt when present. */
int prepare_cifar10(const char *src, const char *out, int val, uint64_t seed, struct ct_err *e);

/* src: a directory SRC/{train,test}/<class>/<file>.{jpg,jpeg,png}, or a .tar.gz
 * of such a tree (optionally under a single top-level directory). Classes are
 * the train subdirectory names in byte order, files are taken in name order;
 * images must be 32x32 RGB or grayscale (replicated to RGB). */
int prepare_images(const char *src, const char *out, int val, uint64_t seed, struct ct_err *e);

/* The embedded default dataset: 10 classes of coloured shapes on noisy
 * backgrounds, a pure function of (n_train, n_test, seed) per image index. */
int prepare_synthetic(const char *out, int n_train, int n_test, int val, uint64_t seed,
                      struct ct_err *e);

/* Shared by the importers (prepare.c). */
struct image_split;

/* Reads a whole file into a malloc'd buffer; errors name the file. */
int prepare_read_file(const char *path, uint8_t **data, size_t *size, struct ct_err *e);

/* Moves the val images out of *train and writes OUT. Frees both splits
 * whatever the outcome. */
int prepare_finish(const char *out, int num_classes, const char *const *classes,
                   struct image_split *train, struct image_split *test, int val, uint64_t seed,
                   struct ct_err *e);

#endif
