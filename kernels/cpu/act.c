/* act.c — elementwise ReLU, SiLU and exact-erf GELU, with the maths shared
 * with the CUDA backend (ops_shared.h). */
#include <stddef.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* Below this many elements a parallel region costs more than it saves. */
#define ACT_PAR_MIN 16384

void cpu_act_fwd(const struct ops_ctx *ctx, enum act_kind kind, size_t n, const float *x,
                 float *y) {
  /* x, y (n) */
  switch (kind) {
  case ACT_RELU:
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    break;
  case ACT_SILU:
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++)
      y[i] = ops_silu(x[i]);
    break;
  case ACT_GELU:
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++)
      y[i] = ops_gelu(x[i]);
    break;
  }
}

void cpu_act_bwd(const struct ops_ctx *ctx, enum act_kind kind, size_t n, const float *x,
                 const float *dy, float *dx) {
  /* x, dy, dx (n) */
  switch (kind) {
  case ACT_RELU:
    /* torch's threshold_backward: the gradient at exactly 0 is 0. dy is
     * loaded unconditionally so the compiler can vectorise with a blend; a
     * load under the condition kept the loop scalar and branchy (6x slower
     * than the forward, a coin-flip branch per element). */
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
      float g = dy[i];
      dx[i] += x[i] > 0.0f ? g : 0.0f;
    }
    break;
  case ACT_SILU:
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++)
      dx[i] += dy[i] * ops_silu_grad(x[i]);
    break;
  case ACT_GELU:
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++)
      dx[i] += dy[i] * ops_gelu_grad(x[i]);
    break;
  }
}
