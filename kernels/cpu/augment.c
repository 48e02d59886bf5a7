/* augment.c — a training batch from resident uint8 images, one image per
 * iteration, with ops_shared.h's maths (the CUDA kernel's). */
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

void cpu_augment(const struct ops_ctx *ctx, const struct augment_params *a, int n, int valid,
                 const uint8_t *src, const int32_t *labels, uint64_t pos0, uint64_t pos_step,
                 float *x, int32_t *y) {
  /* src (n, 3, 32, 32) uint8, labels (n) -> x (n, 3, 32, 32), y (n) */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < n; r++) {
    float *out = x + (size_t)r * AUG_IMAGE;
    if (r >= valid) {
      for (int i = 0; i < AUG_IMAGE; i++)
        out[i] = 0.0f;
      y[r] = -1;
      continue;
    }
    const uint8_t *img = src + (size_t)r * AUG_IMAGE;
    const struct ops_aug_draw d = ops_aug_draw(a, pos0 + (uint64_t)r * pos_step);
    for (int c = 0; c < 3; c++)
      for (int yy = 0; yy < AUG_SIDE; yy++)
        for (int xx = 0; xx < AUG_SIDE; xx++)
          out[(c * AUG_SIDE + yy) * AUG_SIDE + xx] = ops_aug_pixel(a, &d, img, c, yy, xx);
    y[r] = labels[r];
  }
}
