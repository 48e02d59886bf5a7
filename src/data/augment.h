/* augment.h — torchvision-like training augmentation of one 3x32x32 image,
 * in the order RandomCrop(32, padding) (zero padding), RandomHorizontalFlip
 * (p=0.5), RandomRotation(±deg, BILINEAR, about the centre, fill 0), Cutout
 * (one square, mean fill) and Normalize. The maths is kernels/ops_shared.h's,
 * which the backends' `augment` op runs on resident batches. */
#ifndef CTRAIN_AUGMENT_H
#define CTRAIN_AUGMENT_H

#include <stdint.h>

#include "kernels/ops.h"

struct augment_cfg {
  unsigned flags;   /* AUG_* bits (kernels/ops.h); 0 = only conversion and normalisation */
  int crop_pad;     /* 4 */
  float rotate_deg; /* 5: the angle is uniform in [-deg, deg] */
  int cutout_size;  /* 16: side of the square, clipped at the borders */
  float cutout_p;   /* 0.5 */
};

/* The defaults above with no flags set. */
struct augment_cfg augment_defaults(void);

/* The op's parameters for cfg, normalising with mean and std when given
 * (both or neither), under the stream key `key`. */
struct augment_params augment_params(const struct augment_cfg *cfg, const double *mean,
                                     const double *std, uint64_t key);

/* src uint8 CHW 3x32x32 -> dst float CHW on the 0..1 scale, normalised as
 * (x - mean[c]) / std[c] when mean and std are given (both or neither).
 * Cutout fills with mean[c] (exactly 0 after normalisation), or 0 without.
 * Random choices are draws of the counter stream (key, counter), so dst is a
 * pure function of (cfg, src, mean, std, key, counter). */
void augment_image(const struct augment_cfg *cfg, const uint8_t *src, float *dst,
                   const double *mean, const double *std, uint64_t key, uint64_t counter);

#endif
