/* optim.c — Adam/AdamW and SGD over flat parameter buffers, torch.optim
 * semantics. Elements are independent, so any split across threads gives
 * the same result. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

#define PAR_MIN 32768

void cpu_adam_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *m,
                   float *v, const float *hyper, float beta2, float eps, float wd, int decoupled) {
  /* hyper: {lr, beta1, bc1, bc2_sqrt} (ops_adam_hyper) */
  float lr = hyper[0], beta1 = hyper[1], bc1 = hyper[2], bc2_sqrt = hyper[3];
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    ops_adam_update(&param[i], grad[i], &m[i], &v[i], lr, beta1, beta2, eps, wd, decoupled, bc1,
                    bc2_sqrt);
}

void cpu_sgd_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad, float *buf,
                  const float *hyper, float momentum, float wd) {
  /* ops_shared.h's update, the one the CUDA kernel runs; hyper: {lr, first} */
  float lr = hyper[0];
  int first = hyper[1] != 0.0f;
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++)
    ops_sgd_update(&param[i], grad[i], &buf[i], lr, momentum, wd, first);
}
