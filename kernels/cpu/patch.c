/* patch.c — image layout ops that only move data: ViT patch extraction and
 * zero padding. Both are permutations (plus zeros), so backward is the
 * inverse gather; every dx element is written by exactly one thread, so the
 * += needs no atomics. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

/* Offset in x (n, c, h, w) of the p-float run that is row r of channel ch of
 * patch t (t counts (image, grid row, grid column) row-major); in y that run
 * sits at t*c*p*p + (ch*p + r)*p. */
static size_t patch_row(int c, int h, int w, int p, long t, int ch, int r) {
  const int gh = h / p, gw = w / p;
  const long b = t / ((long)gh * gw), gy = t / gw % gh, gx = t % gw;
  return (((size_t)b * c + ch) * h + (size_t)gy * p + r) * w + (size_t)gx * p;
}

void cpu_patch_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int p, const float *x,
                   float *y) {
  const long tokens = (long)n * (h / p) * (w / p);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (long t = 0; t < tokens; t++)
    for (int ch = 0; ch < c; ch++)
      for (int r = 0; r < p; r++)
        memcpy(y + (size_t)t * c * p * p + ((size_t)ch * p + r) * p,
               x + patch_row(c, h, w, p, t, ch, r), (size_t)p * sizeof(float));
}

void cpu_patch_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int p, const float *dy,
                   float *dx) {
  const long tokens = (long)n * (h / p) * (w / p);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (long t = 0; t < tokens; t++)
    for (int ch = 0; ch < c; ch++)
      for (int r = 0; r < p; r++) {
        const float *src = dy + (size_t)t * c * p * p + ((size_t)ch * p + r) * p;
        float *dst = dx + patch_row(c, h, w, p, t, ch, r);
        for (int j = 0; j < p; j++)
          dst[j] += src[j];
      }
}

void cpu_pad2d_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad, const float *x,
                   float *y) {
  const int ph = h + 2 * pad, pw = w + 2 * pad;
  const long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (long pl = 0; pl < planes; pl++) {
    const float *xp = x + (size_t)pl * h * w; /* (h, w) */
    float *yp = y + (size_t)pl * ph * pw;     /* (ph, pw) */
    memset(yp, 0, (size_t)pad * pw * sizeof(float));
    for (int i = 0; i < h; i++) {
      float *row = yp + (size_t)(i + pad) * pw;
      memset(row, 0, (size_t)pad * sizeof(float));
      memcpy(row + pad, xp + (size_t)i * w, (size_t)w * sizeof(float));
      memset(row + pad + w, 0, (size_t)pad * sizeof(float));
    }
    memset(yp + (size_t)(h + pad) * pw, 0, (size_t)pad * pw * sizeof(float));
  }
}

void cpu_pad2d_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad, const float *dy,
                   float *dx) {
  const int ph = h + 2 * pad, pw = w + 2 * pad;
  const long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (long pl = 0; pl < planes; pl++) {
    const float *dyp = dy + (size_t)pl * ph * pw; /* (ph, pw) */
    float *dxp = dx + (size_t)pl * h * w;         /* (h, w) */
    for (int i = 0; i < h; i++)
      for (int j = 0; j < w; j++)
        dxp[(size_t)i * w + j] += dyp[(size_t)(i + pad) * pw + pad + j];
  }
}
