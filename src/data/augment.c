#include "data/augment.h"

#include "kernels/ops_shared.h"

struct augment_cfg augment_defaults(void) {
  return (struct augment_cfg){
      .flags = 0, .crop_pad = 4, .rotate_deg = 5.0f, .cutout_size = 16, .cutout_p = 0.5f};
}

struct augment_params augment_params(const struct augment_cfg *cfg, const double *mean,
                                     const double *std, uint64_t key) {
  struct augment_params a = {.flags = cfg->flags,
                             .crop_pad = cfg->crop_pad,
                             .rotate_deg = cfg->rotate_deg,
                             .cutout_size = cfg->cutout_size,
                             .cutout_p = cfg->cutout_p,
                             .normalize = mean && std,
                             .key = key};
  for (int c = 0; c < 3; c++) {
    a.mean[c] = a.normalize ? (float)mean[c] : 0.0f;
    a.std[c] = a.normalize ? (float)std[c] : 1.0f;
  }
  return a;
}

void augment_image(const struct augment_cfg *cfg, const uint8_t *src, float *dst,
                   const double *mean, const double *std, uint64_t key, uint64_t counter) {
  const struct augment_params a = augment_params(cfg, mean, std, key);
  const struct ops_aug_draw d = ops_aug_draw(&a, counter);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < AUG_SIDE; y++)
      for (int x = 0; x < AUG_SIDE; x++)
        dst[(c * AUG_SIDE + y) * AUG_SIDE + x] = ops_aug_pixel(&a, &d, src, c, y, x);
}
