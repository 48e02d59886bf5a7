/* prepare_coco.h — the CS231n COCO-captioning files (assignment 3,
 * coco_captioning/) into the ctrain captioning layout of coco.h, and a
 * synthetic stand-in written in exactly the CS231n layout (docs/coco.md). */
#ifndef CTRAIN_PREPARE_COCO_H
#define CTRAIN_PREPARE_COCO_H

#include <stdint.h>

#include "core/error.h"

/* Defaults of `ctrain prepare synthetic-coco`: small enough for tests. */
enum {
  COCO_SYN_TRAIN = 2000,
  COCO_SYN_VAL = 500,
  COCO_SYN_CAPTIONS = 2,
  COCO_SYN_MAX_CAPTIONS = 64
};

/* src_dir holds coco2014_captions.h5, coco2014_vocab.json and the feature
 * files: train2014_vgg16_fc7_pca.h5 and val2014_vgg16_fc7_pca.h5 (512-d PCA),
 * or with `full` train2014_vgg16_fc7.h5 and val2014_vgg16_fc7.h5 (4096-d).
 * Validates everything, then writes OUT through a temporary file renamed
 * into place, so a failure never leaves a partial OUT. */
int prepare_coco(const char *src_dir, const char *out, int full, struct ct_err *e);

/* Writes coco2014_captions.h5, train2014_vgg16_fc7_pca.h5,
 * val2014_vgg16_fc7_pca.h5, coco2014_vocab.json and {train,val}2014_urls.txt
 * into out_dir (created if missing), each atomically. Every image has latent
 * attributes (count, colour, object, place) that its 512-d features encode
 * through a fixed random projection plus noise, and captions_per_img
 * captions that state them in one of three templates. Image i is a pure
 * function of (seed, split, i). */
int prepare_synthetic_coco(const char *out_dir, int n_train_img, int n_val_img,
                           int captions_per_img, uint64_t seed, struct ct_err *e);

#endif
