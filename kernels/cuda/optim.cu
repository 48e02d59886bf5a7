/* optim.cu — Adam/AdamW and SGD, each one kernel over the flat parameter
 * buffer; the per-element update is ops_shared.h's, as on the CPU. The
 * step's scalars are read from device memory (ops.h), so a replayed CUDA
 * Graph runs with the step's own. */
#include "kernels/cuda/common.cuh"

__global__ void adam_kernel(size_t n, float *__restrict__ param, const float *__restrict__ grad,
                            float *__restrict__ m, float *__restrict__ v,
                            const float *__restrict__ hyper, float beta2, float eps, float wd,
                            int decoupled) {
  float lr = hyper[0], beta1 = hyper[1], bc1 = hyper[2], bc2_sqrt = hyper[3];
  GRID_STRIDE(i, n) {
    ops_adam_update(&param[i], grad[i], &m[i], &v[i], lr, beta1, beta2, eps, wd, decoupled, bc1,
                    bc2_sqrt);
  }
}

__global__ void sgd_kernel(size_t n, float *__restrict__ param, const float *__restrict__ grad,
                           float *__restrict__ buf, const float *__restrict__ hyper, float momentum,
                           float wd) {
  float lr = hyper[0];
  int first = hyper[1] != 0.0f;
  GRID_STRIDE(i, n) { ops_sgd_update(&param[i], grad[i], &buf[i], lr, momentum, wd, first); }
}

extern "C" void cuda_adam_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad,
                               float *m, float *v, const float *hyper, float beta2, float eps,
                               float wd, int decoupled) {
  if (!n) return;
  LAUNCH(adam_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, param, grad, m, v, hyper, beta2, eps, wd, decoupled);
  LAUNCH_CHECK("adam_kernel");
}

extern "C" void cuda_sgd_step(const struct ops_ctx *ctx, size_t n, float *param, const float *grad,
                              float *buf, const float *hyper, float momentum, float wd) {
  if (!n) return;
  LAUNCH(sgd_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, param, grad, buf, hyper, momentum, wd);
  LAUNCH_CHECK("sgd_kernel");
}
