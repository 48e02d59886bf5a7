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

/* An optimizer step's scalars (ops.h's adam_step, sgd_step), on the host.
 * Adam {lr, beta1, 1 - beta1^step, sqrt(1 - beta2^step)}: torch computes
 * the bias corrections in Python floats (double) and hands them to the
 * float32 update. SGD {lr, 1 on the first step (buf = g) else 0}. `step`
 * counts from 1. */
#define OPS_HYPER_LEN 4
static inline void ops_adam_hyper(float lr, float beta1, float beta2, long step, float *h) {
  h[0] = lr;
  h[1] = beta1;
  h[2] = (float)(1.0 - pow(beta1, (double)step));
  h[3] = (float)sqrt(1.0 - pow(beta2, (double)step));
}

static inline void ops_sgd_hyper(float lr, long step, float *h) {
  h[0] = lr;
  h[1] = step == 1 ? 1.0f : 0.0f;
  h[2] = h[3] = 0.0f;
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

/* sin and cos of |t| <= pi in double, the same bits on both backends: the
 * libraries' sinf/cosf differ by an ulp between glibc and CUDA, and an ulp
 * in the rotation can move a bilinear tap to the next pixel. Taylor series
 * to t^13 at t/4 (|t/4| <= 0.79: truncation < 3e-14), then two doublings;
 * plain + and * in a fixed order (augment.cu is compiled with --fmad=false)
 * round the same everywhere. */
static inline OPS_HD void ops_sincos(float t, float *s, float *c) {
  /* 1/k! with the signs: sin's odd terms, cos's even terms, highest first */
  const double sin_k[7] = {1.0 / 6227020800.0, -1.0 / 39916800, 1.0 / 362880, -1.0 / 5040,
                           1.0 / 120,          -1.0 / 6,        1.0};
  const double cos_k[7] = {1.0 / 479001600.0, -1.0 / 3628800, 1.0 / 40320, -1.0 / 720,
                           1.0 / 24,          -0.5,           1.0};
  double x = (double)t * 0.25, x2 = x * x, sn = 0.0, cs = 0.0;
  for (int k = 0; k < 7; k++) {
    sn = sn * x2 + sin_k[k];
    cs = cs * x2 + cos_k[k];
  }
  sn *= x;
  for (int i = 0; i < 2; i++) { /* sin 2a = 2 sin a cos a, cos 2a = cos^2 a - sin^2 a */
    double s2 = 2.0 * sn * cs;
    cs = cs * cs - sn * sn;
    sn = s2;
  }
  *s = (float)sn;
  *c = (float)cs;
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
    ops_sincos(t, &d.sn, &d.cs);
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

/* ---- reductions ----------------------------------------------------------------------
 *
 * Every reduction over a row or a channel (the softmax and log-sum-exp sums,
 * LayerNorm and BatchNorm statistics and their backward sums, the loss)
 * accumulates in ops_acc_t on both backends: double. The rows are at most a
 * few thousand values and these kernels are memory-bound, so FP64 costs
 * nothing measurable (H100/H200 run FP64 at half the FP32 rate), and the
 * backends then differ only in the order of a double sum (~1e-16 relative),
 * far below float32's rounding of the results.
 *
 * The helpers below run over one worker's share of a row of n values,
 * j = first, first + step, ... < n: the CPU passes (0, 1) and takes the whole
 * row; a CUDA warp passes (lane, 32) and combines the lanes' partial results
 * with the shuffle reductions of kernels/cuda/common.cuh. Every pass over a
 * row uses the same share, so a worker reads back only what it wrote. */
typedef double ops_acc_t;

static inline OPS_HD float ops_row_max(const float *x, int n, int first, int step) {
  float m = -INFINITY;
  for (int j = first; j < n; j += step)
    m = x[j] > m ? x[j] : m;
  return m;
}

static inline OPS_HD ops_acc_t ops_row_sum(const float *x, int n, int first, int step) {
  ops_acc_t s = 0;
  for (int j = first; j < n; j += step)
    s += x[j];
  return s;
}

/* Sum of the float products a b (each rounded to float, as the attention's
 * dS keeps them), a overwritten with them. */
static inline OPS_HD ops_acc_t ops_row_mul_sum(float *a, const float *b, int n, int first,
                                               int step) {
  ops_acc_t s = 0;
  for (int j = first; j < n; j += step) {
    a[j] *= b[j];
    s += a[j];
  }
  return s;
}

/* ---- softmax and log-sum-exp ----
 * softmax(x) = exp(x - max) / sum exp(x - max): subtracting the row's
 * maximum keeps expf finite. A row of all -inf has no finite maximum and
 * comes out NaN, as torch.softmax's. */

/* y = expf(x - m) over the share (y may be x); returns the share's sum. */
static inline OPS_HD ops_acc_t ops_softmax_exp(const float *x, float *y, int n, int first, int step,
                                               float m) {
  ops_acc_t s = 0;
  for (int j = first; j < n; j += step) {
    float e = expf(x[j] - m);
    y[j] = e;
    s += e;
  }
  return s;
}

static inline OPS_HD void ops_row_scale(float *y, int n, int first, int step, float a) {
  for (int j = first; j < n; j += step)
    y[j] *= a;
}

/* The whole row on one worker: the CPU's softmax (kernels/cuda/common.cuh
 * has the warp's). */
static inline OPS_HD void ops_softmax_row(const float *x, float *y, int n) {
  float m = ops_row_max(x, n, 0, 1);
  ops_row_scale(y, n, 0, 1, (float)(1.0 / ops_softmax_exp(x, y, n, 0, 1, m)));
}

/* Attention's dS = Pd dPd - P rowsum(Pd dPd) (kernels/cpu/attention.c),
 * the second step: ds (holding Pd dPd) -= p dot. */
static inline OPS_HD void ops_dsoftmax_apply(float *ds, const float *p, int n, int first, int step,
                                             ops_acc_t dot) {
  const float d = (float)dot;
  for (int j = first; j < n; j += step)
    ds[j] -= p[j] * d;
}

/* Cross-entropy's log-sum-exp, in ops_acc_t throughout (the loss is a small
 * difference of logits of any size): the share's sum of exp(z - m) ... */
static inline OPS_HD ops_acc_t ops_lse_expsum(const float *z, int n, int first, int step, float m) {
  ops_acc_t s = 0;
  for (int j = first; j < n; j += step)
    s += exp((ops_acc_t)z[j] - m);
  return s;
}

/* ... the row's lse = m + log(sum) ... */
static inline OPS_HD ops_acc_t ops_lse(float m, ops_acc_t expsum) { return m + log(expsum); }

/* ... then p = exp(z - lse) over the share, returning the share's
 * sum of -log p = lse - z (label smoothing's term) ... */
static inline OPS_HD ops_acc_t ops_ce_probs(const float *z, float *p, int n, int first, int step,
                                            ops_acc_t lse) {
  ops_acc_t s = 0;
  for (int j = first; j < n; j += step) {
    p[j] = (float)exp((ops_acc_t)z[j] - lse);
    s += lse - z[j];
  }
  return s;
}

/* ... and the row's loss (1 - eps) (-log p_y) + eps mean_c(-log p_c). */
static inline OPS_HD ops_acc_t ops_ce_row_loss(ops_acc_t lse, float z_label, ops_acc_t nll_sum,
                                               float smoothing, int classes) {
  const ops_acc_t eps = smoothing;
  ops_acc_t row = (1.0 - eps) * (lse - z_label);
  if (eps > 0) row += eps * nll_sum / classes;
  return row;
}

/* ---- LayerNorm ----
 * Two passes: the mean, then the squares centred on it. E[x^2] - E[x]^2
 * cancels catastrophically when the mean is large next to the spread. */

/* The share's sum of (x - mu)^2. */
static inline OPS_HD ops_acc_t ops_centred_sq_sum(const float *x, int n, int first, int step,
                                                  ops_acc_t mu) {
  ops_acc_t ss = 0;
  for (int j = first; j < n; j += step) {
    ops_acc_t c = x[j] - mu;
    ss += c * c;
  }
  return ss;
}

/* rstd from the row's centred square sum over d values (biased variance,
 * eps inside the square root, as torch). */
static inline OPS_HD ops_acc_t ops_ln_rstd(ops_acc_t sq_sum, int d, float eps) {
  return 1.0 / sqrt(sq_sum / d + (ops_acc_t)eps);
}

/* y = xhat gamma + beta over the share, xhat from the unrounded statistics. */
static inline OPS_HD void ops_ln_apply(const float *x, const float *gamma, const float *beta,
                                       float *y, int n, int first, int step, ops_acc_t mu,
                                       ops_acc_t rs) {
  for (int j = first; j < n; j += step)
    y[j] = (float)((x[j] - mu) * rs) * gamma[j] + beta[j];
}

/* xhat rebuilt from the saved float statistics, as torch's backward does. */
static inline OPS_HD float ops_ln_xhat(float x, float mu, float rs) { return (x - mu) * rs; }

/* The input gradient's two row sums over the share, g = gamma dy:
 * sum g and sum g xhat. */
static inline OPS_HD void ops_ln_dx_sums(const float *dy, const float *x, const float *gamma, int n,
                                         int first, int step, float mu, float rs, ops_acc_t *sg,
                                         ops_acc_t *sgx) {
  ops_acc_t a = 0, b = 0;
  for (int j = first; j < n; j += step) {
    float g = gamma[j] * dy[j];
    a += g;
    b += g * ops_ln_xhat(x[j], mu, rs);
  }
  *sg = a;
  *sgx = b;
}

/* dx += rstd (g - mean(g) - xhat mean(g xhat)) over the share, from the
 * row's sums. */
static inline OPS_HD void ops_ln_dx_apply(const float *dy, const float *x, const float *gamma,
                                          float *dx, int n, int first, int step, float mu, float rs,
                                          ops_acc_t sg, ops_acc_t sgx) {
  const float mg = (float)(sg / n), mgx = (float)(sgx / n);
  for (int j = first; j < n; j += step)
    dx[j] += rs * (gamma[j] * dy[j] - mg - ops_ln_xhat(x[j], mu, rs) * mgx);
}

/* ---- BatchNorm ----
 * A channel's statistics come from sums shifted by a value near the mean
 * (the mean of a first pass, or on the CPU the channel's first element):
 * s1 = sum (x - shift), s2 = sum (x - shift)^2 over count values. With the
 * shift within a few standard deviations of the mean, s2 / count - dm^2
 * loses at most a digit of ops_acc_t, where unshifted E[x^2] - E[x]^2
 * would lose all of float32's. */
struct ops_bn_stats {
  ops_acc_t mean, var, rstd; /* var biased: it normalises */
};

static inline OPS_HD struct ops_bn_stats ops_bn_stats(ops_acc_t shift, ops_acc_t s1, ops_acc_t s2,
                                                      ops_acc_t count, float eps) {
  struct ops_bn_stats st;
  ops_acc_t dm = s1 / count;
  st.var = fmax(s2 / count - dm * dm, 0.0);
  st.mean = shift + dm;
  st.rstd = 1.0 / sqrt(st.var + eps);
  return st;
}

/* Running statistics from the batch's mean and biased variance over `count`
 * values. torch divides by count - 1 for the running estimate; with a
 * single value it would store inf/nan, here the biased value is kept. */
static inline OPS_HD void ops_bn_running(float *running_mean, float *running_var, float momentum,
                                         ops_acc_t mean, ops_acc_t var, ops_acc_t count) {
  ops_acc_t unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
  *running_mean = (float)((1.0 - momentum) * *running_mean + momentum * mean);
  *running_var = (float)((1.0 - momentum) * *running_var + momentum * unbiased);
}

/* Eval mode normalises with the running variance. */
static inline OPS_HD ops_acc_t ops_bn_eval_rstd(float running_var, float eps) {
  return 1.0 / sqrt((ops_acc_t)running_var + eps);
}

/* y = x a + b per channel, a = rstd gamma, b = beta - mean a, as torch's
 * CPU kernel folds it. */
struct ops_bn_affine {
  float a, b;
};
static inline OPS_HD struct ops_bn_affine ops_bn_affine(float gamma, float beta, ops_acc_t mean,
                                                        ops_acc_t rstd) {
  struct ops_bn_affine f = {(float)(rstd * gamma), (float)(beta - mean * rstd * gamma)};
  return f;
}

/* dx += gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) written as
 * dx += dy k + (x - mean) q + r, from a channel's sum dy and
 * sum dy xhat over count values; centring x first keeps the float
 * arithmetic free of cancellation. */
struct ops_bn_dx {
  float k, q, r;
};
static inline OPS_HD struct ops_bn_dx ops_bn_dx(float gamma, float rstd, ops_acc_t sum_dy,
                                                ops_acc_t sum_dy_xhat, ops_acc_t count) {
  ops_acc_t g = (ops_acc_t)gamma * rstd;
  struct ops_bn_dx f = {(float)g, (float)(-g * rstd * sum_dy_xhat / count),
                        (float)(-g * sum_dy / count)};
  return f;
}

static inline OPS_HD float ops_bn_dx_elem(struct ops_bn_dx f, float dy, float x, float mean) {
  return dy * f.k + (x - mean) * f.q + f.r;
}

/* ---- MaxPool2d ----
 * The k x k window of output (oy, ox) at stride s in a plane of width w
 * (no padding, floor mode): its maximum into *best, its flat index in the
 * plane returned. As torch: start from -inf at the window's first element,
 * take strictly greater values (the first maximum wins) or NaN (v != v: NaN
 * propagates). */
static inline OPS_HD int32_t ops_maxpool_window(const float *plane, int w, int k, int s, int oy,
                                                int ox, float *best) {
  int32_t best_i = oy * s * w + ox * s;
  float m = -INFINITY;
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++) {
      int32_t i = (oy * s + ki) * w + ox * s + kj;
      float v = plane[i];
      if (v > m || v != v) {
        m = v;
        best_i = i;
      }
    }
  *best = m;
  return best_i;
}

#endif
