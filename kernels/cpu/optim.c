/* optim.c — Adam/AdamW and SGD over flat parameter buffers, torch.optim
 * semantics. Elements are independent, so any split across threads gives
 * the same result. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

#define PAR_MIN 32768

void cpu_adam_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *m,
                   float *v, float lr, float beta1, float beta2, float eps, float wd, int decoupled,
                   long step) {
  /* torch computes the bias corrections in Python floats (double) and hands
   * them to the float32 update. */
  float bc1 = (float)(1.0 - pow(beta1, (double)step));
  float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)step));
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    ops_adam_update(&param[i], grad[i], &m[i], &v[i], lr, beta1, beta2, eps, wd, decoupled, bc1,
                    bc2_sqrt);
}

void cpu_sgd_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *buf,
                  float lr, float momentum, float wd, long step) {
  /* ops_shared.h's update, the one the CUDA kernel runs */
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    ops_sgd_update(&param[i], grad[i], &buf[i], lr, momentum, wd, step == 1);
}
