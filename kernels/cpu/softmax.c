/* softmax.c — softmax over the last axis, max-subtracted.
 *
 * A row whose entries are all -inf has no finite maximum: -inf - -inf is NaN,
 * so the whole row comes out NaN, exactly as torch.softmax does. The models
 * never produce such rows (every query sees at least itself); if one appears
 * it surfaces through the trainer's NaN check instead of as plausible
 * numbers. A row with some -inf entries is fine: they get probability 0. */
#include <stddef.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

void cpu_softmax_fwd(const struct ops_ctx *ctx, int rows, int cols, const float *x, float *y) {
  /* x, y (rows, cols); y may be x */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < rows; r++)
    ops_softmax_row(x + (size_t)r * cols, y + (size_t)r * cols, cols);
}

void cpu_softmax_bwd(const struct ops_ctx *ctx, int rows, int cols, const float *y, const float *dy,
                     float *dx) {
  /* y, dy, dx (rows, cols): dx += y (dy - sum(dy y)) */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *yr = y + (size_t)r * cols, *dyr = dy + (size_t)r * cols;
    float *dxr = dx + (size_t)r * cols;
    ops_softmax_bwd_apply(yr, dyr, dxr, cols, 0, 1, ops_row_dot(dyr, yr, cols, 0, 1));
  }
}
