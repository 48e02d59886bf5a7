/* pool.c — MaxPool2d (no padding, floor mode) and the two mean reductions.
 * Every output is owned by one thread; reductions run in a fixed order. */

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* One output row of 2x2 windows at stride 2, the common case: the window
 * maths of ops_maxpool_window (scan order, first maximum, a NaN wins) as
 * selects, which the compiler vectorises; the generic loop's compare-and-
 * branch does not. The first element needs no compare: against the
 * window's -inf start it is taken, or it is -inf and the start stands. */
static inline void maxpool2x2_row(const float *restrict r0, const float *restrict r1, int w,
                                  int32_t base, int ow, float *restrict y, int32_t *restrict idx) {
  for (int ox = 0; ox < ow; ox++) {
    float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
    int32_t i0 = base + 2 * ox;
    float m = a;
    int32_t i = i0;
    int tb = (b > m) | (b != b);
    m = tb ? b : m;
    i = tb ? i0 + 1 : i;
    int tc = (c > m) | (c != c);
    m = tc ? c : m;
    i = tc ? i0 + w : i;
    int td = (d > m) | (d != d);
    m = td ? d : m;
    i = td ? i0 + w + 1 : i;
    y[ox] = m;
    if (idx) idx[ox] = i;
  }
}

void cpu_maxpool2d_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int k, int s,
                       const float *x, float *y, int32_t *idx) {
  int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
  long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (long pl = 0; pl < planes; pl++) {
    const float *xp = x + pl * h * w;              /* (h, w) */
    float *yp = y + pl * oh * ow;                  /* (oh, ow) */
    int32_t *ip = idx ? idx + pl * oh * ow : NULL; /* (oh, ow), or none (inference) */
    for (int oy = 0; oy < oh; oy++) {
      if (k == 2 && s == 2) {
        const float *r0 = xp + 2 * oy * w;
        maxpool2x2_row(r0, r0 + w, w, 2 * oy * w, ow, yp + oy * ow, ip ? ip + oy * ow : NULL);
        continue;
      }
      for (int ox = 0; ox < ow; ox++) {
        int32_t i = ops_maxpool_window(xp, w, k, s, oy, ox, yp + oy * ow + ox);
        if (ip) ip[oy * ow + ox] = i;
      }
    }
  }
}

void cpu_maxpool2d_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int k, int s,
                       const float *dy, const int32_t *idx, float *dx) {
  int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
  long planes = (long)n * c;
  /* Overlapping windows (k > s) may share an input: planes are disjoint, so
   * splitting by plane keeps every += on one thread. */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (long pl = 0; pl < planes; pl++) {
    const float *dyp = dy + pl * oh * ow;
    const int32_t *ip = idx + pl * oh * ow;
    float *dxp = dx + pl * h * w;
    for (int j = 0; j < oh * ow; j++)
      dxp[ip[j]] += dyp[j];
  }
}

void cpu_mean_mid_fwd(const struct ops_ctx *ctx, int b, int t, int d, const float *x, float *y) {
  /* y (b, d) = mean over t of x (b, t, d): rows of x are added in order into
   * y, contiguous and vectorisable along d. */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int i = 0; i < b; i++) {
    float *yr = y + (size_t)i * d;
    const float *xb = x + (size_t)i * t * d;
    for (int j = 0; j < d; j++)
      yr[j] = 0.0f;
    for (int r = 0; r < t; r++)
      for (int j = 0; j < d; j++)
        yr[j] += xb[(size_t)r * d + j];
    for (int j = 0; j < d; j++)
      yr[j] /= (float)t;
  }
}

void cpu_mean_mid_bwd(const struct ops_ctx *ctx, int b, int t, int d, const float *dy, float *dx) {
  /* dx (b, t, d) += dy (b, d) / t */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int i = 0; i < b; i++) {
    const float *dyr = dy + (size_t)i * d;
    float *dxb = dx + (size_t)i * t * d;
    for (int r = 0; r < t; r++)
      for (int j = 0; j < d; j++)
        dxb[(size_t)r * d + j] += dyr[j] / (float)t;
  }
}

void cpu_mean_last_fwd(const struct ops_ctx *ctx, int rows, int cols, const float *x, float *y) {
  /* y (rows) = mean of each row of x (rows, cols), in ops_acc_t through
   * eight independent accumulators (vectorisable, fixed order). */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * cols;
    ops_acc_t acc[8] = {0};
    int j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int l = 0; l < 8; l++)
        acc[l] += xr[j + l];
    for (; j < cols; j++)
      acc[0] += xr[j];
    ops_acc_t sum = 0.0;
    for (int l = 0; l < 8; l++)
      sum += acc[l];
    y[r] = (float)(sum / cols);
  }
}

void cpu_mean_last_bwd(const struct ops_ctx *ctx, int rows, int cols, const float *dy, float *dx) {
  /* dx (rows, cols) += dy (rows) / cols */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int r = 0; r < rows; r++) {
    float g = dy[r] / (float)cols;
    float *dxr = dx + (size_t)r * cols;
    for (int j = 0; j < cols; j++)
      dxr[j] += g;
  }
}
