/* ops_shared.h — the maths the CPU and CUDA backends share, as static inline
 * helpers both compilers accept, so the two backends cannot drift. */
#ifndef CTRAIN_OPS_SHARED_H
#define CTRAIN_OPS_SHARED_H

#include <math.h>
#include <stdint.h>

#include "kernels/ops.h"

#ifdef __CUDACC__
#define OPS_HD __host__ __device__
#else
#define OPS_HD
#endif

/* splitmix64 finaliser: a bijective 64-bit mix. */
static inline OPS_HD uint64_t ops_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Element i of the counter-based stream (key, counter): 64 random bits. */
static inline OPS_HD uint64_t ops_rng_bits(uint64_t key, uint64_t counter, uint64_t i) {
  return ops_mix64(ops_mix64(key ^ 0x9e3779b97f4a7c15ULL) + counter * 0xd1b54a32d192ed03ULL + i);
}

/* Uniform in [0, 1) with 24 random bits, exact in float32. */
static inline OPS_HD float ops_rng_uniform(uint64_t key, uint64_t counter, uint64_t i) {
  return (float)(ops_rng_bits(key, counter, i) >> 40) * (1.0f / 16777216.0f);
}

/* Dropout keeps an element with probability 1 - p. */
static inline OPS_HD int ops_dropout_keep(uint64_t key, uint64_t counter, uint64_t i, float p) {
  return ops_rng_uniform(key, counter, i) >= p;
}

static inline OPS_HD float ops_silu(float x) { return x / (1.0f + expf(-x)); }

static inline OPS_HD float ops_silu_grad(float x) {
  float s = 1.0f / (1.0f + expf(-x));
  return s * (1.0f + x * (1.0f - s));
}

/* Exact GELU, x * Phi(x), as torch.nn.GELU() (approximate='none'). */
static inline OPS_HD float ops_gelu(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

static inline OPS_HD float ops_gelu_grad(float x) {
  float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
  float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
  return cdf + x * pdf;
}

/* An activation and its derivative times dy; ReLU's gradient at exactly 0
 * is 0 (torch's threshold_backward). */
static inline OPS_HD float ops_act(int kind, float v) {
  return kind == ACT_RELU ? (v > 0.0f ? v : 0.0f) : kind == ACT_SILU ? ops_silu(v) : ops_gelu(v);
}

static inline OPS_HD float ops_act_grad(int kind, float v, float dy) {
  return kind == ACT_RELU ? (v > 0.0f ? dy : 0.0f)
                          : dy * (kind == ACT_SILU ? ops_silu_grad(v) : ops_gelu_grad(v));
}

/* Sinusoidal encoding P[i, j] (MODELS.md §4): sin(i * 10000^(-j/d)) for even
 * j, cos(i * 10000^(-(j-1)/d)) for odd j. Computed in double, rounded once. */
static inline OPS_HD float ops_posenc(int i, int j, int d) {
  int e = j - (j & 1);
  double angle = (double)i * exp(-(double)e / (double)d * 9.210340371976184); /* ln 10000 */
  return (float)((j & 1) ? cos(angle) : sin(angle));
}

/* One Adam / AdamW update of a single element; torch.optim semantics
 * (bias corrections folded into the step size as torch does). */
static inline OPS_HD void ops_adam_update(float *p, float g, float *m, float *v, float lr,
                                          float beta1, float beta2, float eps, float wd,
                                          int decoupled, float bc1, float bc2_sqrt) {
  if (decoupled)
    *p *= 1.0f - lr * wd;
  else
    g += wd * *p;
  *m = beta1 * *m + (1.0f - beta1) * g;
  *v = beta2 * *v + (1.0f - beta2) * g * g;
  float denom = sqrtf(*v) / bc2_sqrt + eps;
  *p -= (lr / bc1) * (*m / denom);
}

/* One SGD step of a single element, torch.optim.SGD without dampening:
 * g = grad + wd p; with momentum, buf = g on the first step, else
 * momentum buf + g, and the step follows buf; p -= lr g. */
static inline OPS_HD void ops_sgd_update(float *p, float g, float *buf, float lr, float momentum,
                                         float wd, int first) {
  g += wd * *p;
  if (momentum != 0.0f) {
    *buf = first ? g : momentum * *buf + g;
    g = *buf;
  }
  *p -= lr * g;
}

/* The random choices behind one augmented image. Fixed draw indices, so
 * enabling one transform never changes another's draws. */
enum {
  OPS_R_CROP_X,
  OPS_R_CROP_Y,
  OPS_R_FLIP,
  OPS_R_ANGLE,
  OPS_R_CUTOUT,
  OPS_R_CUT_Y,
  OPS_R_CUT_X
};
struct ops_aug_draw {
  int dx, dy, flip;
  int rotate;   /* sample the crop/flip image at R(angle) (q - c) + c */
  float cs, sn; /* cos, sin of the angle */
  int cut;      /* the cutout square [y0, y1) x [x0, x1) */
  int y0, y1, x0, x1;
};

static inline OPS_HD struct ops_aug_draw ops_aug_draw(const struct augment_params *a,
                                                      uint64_t counter) {
  struct ops_aug_draw d = {0, 0, 0, 0, 1.0f, 0.0f, 0, 0, 0, 0, 0};
  uint64_t key = a->key;
  if (a->flags & AUG_CROP) {
    uint64_t span = 2 * (uint64_t)a->crop_pad + 1;
    d.dx = (int)(ops_rng_bits(key, counter, OPS_R_CROP_X) % span) - a->crop_pad;
    d.dy = (int)(ops_rng_bits(key, counter, OPS_R_CROP_Y) % span) - a->crop_pad;
  }
  if (a->flags & AUG_FLIP) d.flip = ops_rng_uniform(key, counter, OPS_R_FLIP) < 0.5f;
  if ((a->flags & AUG_ROTATE) && a->rotate_deg != 0.0f) {
    float u = ops_rng_uniform(key, counter, OPS_R_ANGLE);
    float t = a->rotate_deg * (2.0f * u - 1.0f) * 0.017453292519943295f;
    d.rotate = 1;
    d.cs = cosf(t);
    d.sn = sinf(t);
  }
  if ((a->flags & AUG_CUTOUT) && ops_rng_uniform(key, counter, OPS_R_CUTOUT) < a->cutout_p) {
    int cy = (int)(ops_rng_bits(key, counter, OPS_R_CUT_Y) % AUG_SIDE);
    int cx = (int)(ops_rng_bits(key, counter, OPS_R_CUT_X) % AUG_SIDE);
    int h = a->cutout_size / 2;
    d.cut = 1;
    d.y0 = cy - h < 0 ? 0 : cy - h;
    d.y1 = cy + h > AUG_SIDE ? AUG_SIDE : cy + h;
    d.x0 = cx - h < 0 ? 0 : cx - h;
    d.x1 = cx + h > AUG_SIDE ? AUG_SIDE : cx + h;
  }
  return d;
}

/* Pixel (y, x) of channel plane p (uint8) after the random crop (zero
 * padding) and flip, on the 0..1 scale; 0 outside the image. */
static inline OPS_HD float ops_aug_crop(const struct ops_aug_draw *d, const uint8_t *p, int y,
                                        int x) {
  if (y < 0 || y >= AUG_SIDE || x < 0 || x >= AUG_SIDE) return 0.0f;
  int sy = y + d->dy, sx = (d->flip ? AUG_SIDE - 1 - x : x) + d->dx;
  int in = sy >= 0 && sy < AUG_SIDE && sx >= 0 && sx < AUG_SIDE;
  return in ? p[sy * AUG_SIDE + sx] / 255.0f : 0.0f;
}

/* Output pixel (c, y, x) of one image: crop and flip, the rotation
 * (bilinear, about the centre (15.5, 15.5), taps outside count as 0, as
 * torchvision's rotate through grid_sample), the cutout, normalisation. */
static inline OPS_HD float ops_aug_pixel(const struct augment_params *a,
                                         const struct ops_aug_draw *d, const uint8_t *img, int c,
                                         int y, int x) {
  const uint8_t *p = img + c * AUG_PLANE;
  float v;
  if (d->cut && y >= d->y0 && y < d->y1 && x >= d->x0 && x < d->x1) {
    v = a->normalize ? a->mean[c] : 0.0f;
  } else if (d->rotate) {
    float u = x - 15.5f, w = y - 15.5f;
    float sx = d->cs * u - d->sn * w + 15.5f, sy = d->sn * u + d->cs * w + 15.5f;
    float fx0 = floorf(sx), fy0 = floorf(sy), wx = sx - fx0, wy = sy - fy0;
    int x0 = (int)fx0, y0 = (int)fy0;
    v = 0.0f;
    for (int ty = 0; ty < 2; ty++)
      for (int tx = 0; tx < 2; tx++)
        v += (tx ? wx : 1.0f - wx) * (ty ? wy : 1.0f - wy) * ops_aug_crop(d, p, y0 + ty, x0 + tx);
  } else {
    v = ops_aug_crop(d, p, y, x);
  }
  return a->normalize ? (v - a->mean[c]) / a->std[c] : v;
}

#endif
