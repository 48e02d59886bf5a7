/* elementwise.c — add, axpy, scale, batched transpose and the gradient's
 * guard and clipping. Threads only pay off on large buffers; below PAR_MIN elements a
 * loop runs on the calling thread. */
#include <math.h>
#include <omp.h>

#include "kernels/cpu/cpu_ops.h"

#define PAR_MIN 32768

void cpu_add_fwd(const struct ops_ctx *ctx, size_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for simd schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] = a[i] + b[i];
}

void cpu_axpy(const struct ops_ctx *ctx, size_t n, float alpha, const float *x, float *y) {
#pragma omp parallel for simd schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] += alpha * x[i];
}

void cpu_scale(const struct ops_ctx *ctx, size_t n, float alpha, float *y) {
#pragma omp parallel for simd schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    y[i] *= alpha;
}

/* Square tiles keep both the reads and the writes of a transpose within a
 * few cache lines. */
#define TILE 32

/* dst (b, c, r) op= transpose of src (b, r, c); accumulate selects += over =. */
static void transpose(const struct ops_ctx *ctx, int b, int r, int c, const float *src, float *dst,
                      int accumulate) {
  int tr = (r + TILE - 1) / TILE, tc = (c + TILE - 1) / TILE;
  long tiles = (long)b * tr * tc;
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((long)b * r * c >= PAR_MIN)
  for (long t = 0; t < tiles; t++) {
    int bi = (int)(t / ((long)tr * tc)), rem = (int)(t % ((long)tr * tc));
    int i0 = rem / tc * TILE, j0 = rem % tc * TILE;
    int i1 = i0 + TILE < r ? i0 + TILE : r, j1 = j0 + TILE < c ? j0 + TILE : c;
    const float *s = src + (size_t)bi * r * c;
    float *d = dst + (size_t)bi * r * c;
    for (int j = j0; j < j1; j++)
      for (int i = i0; i < i1; i++) {
        float v = s[(size_t)i * c + j];
        d[(size_t)j * r + i] = accumulate ? d[(size_t)j * r + i] + v : v;
      }
  }
}

void cpu_transpose_fwd(const struct ops_ctx *ctx, int b, int r, int c, const float *x, float *y) {
  transpose(ctx, b, r, c, x, y, 0);
}

void cpu_transpose_bwd(const struct ops_ctx *ctx, int b, int r, int c, const float *dy, float *dx) {
  /* dy is (b, c, r): its transpose (b, r, c) is accumulated into dx. */
  transpose(ctx, b, c, r, dy, dx, 1);
}

static double sumsq(const struct ops_ctx *ctx, size_t n, const float *x) {
  /* Each thread sums a fixed contiguous share in double, the shares are then
   * added in thread order: the result depends only on n and the thread count,
   * never on scheduling. */
  enum { MAX_PARTS = 256 };
  double part[MAX_PARTS];
  int parts = n >= PAR_MIN ? ctx->threads : 1;
  if (parts > MAX_PARTS) parts = MAX_PARTS;
  if (parts < 1) parts = 1;
#pragma omp parallel num_threads(parts)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    /* The runtime may grant fewer threads than asked: the shares follow the
     * team actually running, and missing shares are zeroed. */
    size_t lo = n * t / nt, hi = n * (t + 1) / nt;
    double acc[8] = {0};
    size_t i = lo;
    for (; i + 8 <= hi; i += 8)
      for (int l = 0; l < 8; l++)
        acc[l] += (double)x[i + l] * x[i + l];
    for (; i < hi; i++)
      acc[0] += (double)x[i] * x[i];
    double s = 0.0;
    for (int l = 0; l < 8; l++)
      s += acc[l];
    part[t] = s;
    if (t == 0)
      for (int u = nt; u < parts; u++)
        part[u] = 0.0;
  }
  double sum = 0.0;
  for (int t = 0; t < parts; t++)
    sum += part[t];
  return sum;
}

void cpu_grad_clip(const struct ops_ctx *ctx, size_t n, float *grad, float max_norm,
                   const float *loss, const int64_t *step, int64_t *bad) {
  double norm = sqrt(sumsq(ctx, n, grad));
  if (!isfinite(*loss) || !isfinite(norm)) {
    if (bad[0] < 0) {
      bad[0] = *step;
      bad[1] = isfinite(*loss) ? 2 : 1;
    }
    return;
  }
  if (max_norm > 0.0f && norm > max_norm)
    cpu_scale(ctx, n, (float)(max_norm / (norm + 1e-6)), grad);
}
