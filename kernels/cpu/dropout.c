/* dropout.c — inverted dropout (torch.nn.Dropout in training): keep with
 * probability 1 - p from the counter stream, scale kept values by 1/(1-p),
 * save the keep mask for the backward. */
#include <stddef.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* Below this many elements a parallel region costs more than it saves. */
#define DROPOUT_PAR_MIN 16384

/* p = 1 drops everything; 1/(1-p) would turn 0 * inf into NaN. */
static float keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

void cpu_dropout_fwd(const struct ops_ctx *ctx, size_t n, float p, struct rng_stream rng,
                     const float *x, float *y, uint8_t *keep) {
  /* x, y, keep (n) */
  if (p <= 0.0f) {
    if (y != x) memcpy(y, x, n * sizeof *y);
    memset(keep, 1, n);
    return;
  }
  const float sc = keep_scale(p);
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= DROPOUT_PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    const int k = ops_dropout_keep(rng.key, rng.counter, i, p);
    keep[i] = (uint8_t)k;
    y[i] = k ? x[i] * sc : 0.0f;
  }
}

void cpu_dropout_bwd(const struct ops_ctx *ctx, size_t n, float p, const float *dy,
                     const uint8_t *keep, float *dx) {
  /* dy, keep, dx (n) */
  const float sc = p <= 0.0f ? 1.0f : keep_scale(p);
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= DROPOUT_PAR_MIN)
  for (size_t i = 0; i < n; i++)
    if (keep[i]) dx[i] += dy[i] * sc;
}
