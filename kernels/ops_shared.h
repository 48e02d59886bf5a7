/* ops_shared.h — the maths the CPU and CUDA backends share, as static inline
 * helpers both compilers accept, so the two backends cannot drift. */
#ifndef CTRAIN_OPS_SHARED_H
#define CTRAIN_OPS_SHARED_H

#include <math.h>
#include <stdint.h>

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

#endif
