/* optim.cu — Adam/AdamW and SGD, each one kernel over the flat parameter
 * buffer; the per-element update is ops_shared.h's, as on the CPU. */
#include "kernels/cuda/common.cuh"

__global__ void adam_kernel(size_t n, float *__restrict__ param, const float *__restrict__ grad,
                            float *__restrict__ m, float *__restrict__ v, float lr, float beta1,
                            float beta2, float eps, float wd, int decoupled, float bc1,
                            float bc2_sqrt) {
  GRID_STRIDE(i, n) {
    ops_adam_update(&param[i], grad[i], &m[i], &v[i], lr, beta1, beta2, eps, wd, decoupled, bc1,
                    bc2_sqrt);
  }
}

__global__ void sgd_kernel(size_t n, float *__restrict__ param, const float *__restrict__ grad,
                           float *__restrict__ buf, float lr, float momentum, float wd, int first) {
  GRID_STRIDE(i, n) { ops_sgd_update(&param[i], grad[i], &buf[i], lr, momentum, wd, first); }
}

extern "C" void cuda_adam_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad,
                               float *m, float *v, float lr, float beta1, float beta2, float eps,
                               float wd, int decoupled, long step) {
  if (!n) return;
  /* bias corrections in double on the host, as torch computes them */
  float bc1 = (float)(1.0 - pow(beta1, (double)step));
  float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)step));
  LAUNCH(adam_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, param, grad, m, v, lr, beta1, beta2, eps, wd, decoupled, bc1, bc2_sqrt);
  LAUNCH_CHECK("adam_kernel");
}

extern "C" void cuda_sgd_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad,
                              float *buf, float lr, float momentum, float wd, long step) {
  if (!n) return;
  LAUNCH(sgd_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, param, grad, buf, lr, momentum, wd, step == 1);
  LAUNCH_CHECK("sgd_kernel");
}
