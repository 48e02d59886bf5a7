#include "data/augment.h"

#include <math.h>

#include "kernels/ops_shared.h"

enum { SIDE = 32, PLANE = SIDE * SIDE };

/* Fixed draw indices, so enabling one transform never changes another's draws. */
enum { R_CROP_X, R_CROP_Y, R_FLIP, R_ANGLE, R_CUTOUT, R_CUT_Y, R_CUT_X };

struct augment_cfg augment_defaults(void) {
  return (struct augment_cfg){
      .flags = 0, .crop_pad = 4, .rotate_deg = 5.0f, .cutout_size = 16, .cutout_p = 0.5f};
}

/* Bilinear sample at (x, y) in pixel-index coordinates; taps outside the
 * image count as 0, as grid_sample(padding_mode="zeros") does. */
static float sample(const float *p, float x, float y) {
  float fx0 = floorf(x), fy0 = floorf(y), wx = x - fx0, wy = y - fy0;
  int x0 = (int)fx0, y0 = (int)fy0;
  float v = 0.0f;
  for (int dy = 0; dy < 2; dy++)
    for (int dx = 0; dx < 2; dx++) {
      int xx = x0 + dx, yy = y0 + dy;
      if (xx < 0 || xx >= SIDE || yy < 0 || yy >= SIDE) continue;
      v += (dx ? wx : 1.0f - wx) * (dy ? wy : 1.0f - wy) * p[yy * SIDE + xx];
    }
  return v;
}

/* Rotates counter-clockwise by deg about the centre (15.5, 15.5): output
 * pixel q samples the input at R(deg) (q - c) + c with y pointing down, the
 * inverse map torchvision's rotate builds for grid_sample. */
static void rotate(const float *src, float *dst, float deg) {
  float t = deg * 0.017453292519943295f, c = cosf(t), s = sinf(t);
  for (int ch = 0; ch < 3; ch++)
    for (int y = 0; y < SIDE; y++)
      for (int x = 0; x < SIDE; x++) {
        float u = x - 15.5f, v = y - 15.5f;
        dst[ch * PLANE + y * SIDE + x] =
            sample(src + ch * PLANE, c * u - s * v + 15.5f, s * u + c * v + 15.5f);
      }
}

void augment_image(const struct augment_cfg *cfg, const uint8_t *src, float *dst,
                   const double *mean, const double *std, uint64_t key, uint64_t counter) {
  unsigned fl = cfg->flags;
  int dx = 0, dy = 0, flip = 0;
  if (fl & AUG_CROP) {
    uint64_t span = 2 * (uint64_t)cfg->crop_pad + 1;
    dx = (int)(ops_rng_bits(key, counter, R_CROP_X) % span) - cfg->crop_pad;
    dy = (int)(ops_rng_bits(key, counter, R_CROP_Y) % span) - cfg->crop_pad;
  }
  if (fl & AUG_FLIP) flip = ops_rng_uniform(key, counter, R_FLIP) < 0.5f;
  /* Crop and flip are both pure re-indexings, so one pass does them. */
  float tmp[3 * PLANE];
  float *img = (fl & AUG_ROTATE) && cfg->rotate_deg != 0.0f ? tmp : dst;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < SIDE; y++)
      for (int x = 0; x < SIDE; x++) {
        int sy = y + dy, sx = (flip ? SIDE - 1 - x : x) + dx;
        int in = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE;
        img[c * PLANE + y * SIDE + x] = in ? src[c * PLANE + sy * SIDE + sx] / 255.0f : 0.0f;
      }
  if (img == tmp) {
    float u = ops_rng_uniform(key, counter, R_ANGLE);
    rotate(tmp, dst, cfg->rotate_deg * (2.0f * u - 1.0f));
  }
  if ((fl & AUG_CUTOUT) && ops_rng_uniform(key, counter, R_CUTOUT) < cfg->cutout_p) {
    int cy = (int)(ops_rng_bits(key, counter, R_CUT_Y) % SIDE);
    int cx = (int)(ops_rng_bits(key, counter, R_CUT_X) % SIDE);
    int h = cfg->cutout_size / 2;
    int y0 = cy - h < 0 ? 0 : cy - h, y1 = cy + h > SIDE ? SIDE : cy + h;
    int x0 = cx - h < 0 ? 0 : cx - h, x1 = cx + h > SIDE ? SIDE : cx + h;
    for (int c = 0; c < 3; c++) {
      float fill = mean ? (float)mean[c] : 0.0f;
      for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
          dst[c * PLANE + y * SIDE + x] = fill;
    }
  }
  if (mean && std)
    for (int c = 0; c < 3; c++) {
      float m = (float)mean[c], s = (float)std[c];
      for (int p = 0; p < PLANE; p++)
        dst[c * PLANE + p] = (dst[c * PLANE + p] - m) / s;
    }
}
