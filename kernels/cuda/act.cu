/* act.cu — elementwise ReLU, SiLU and exact-erf GELU; the maths is
 * ops_shared.h's, the same the CPU backend runs. */
#include "kernels/cuda/common.cuh"

__global__ void act_fwd_kernel(int kind, size_t n, const float *__restrict__ x,
                               float *__restrict__ y) {
  GRID_STRIDE(i, n) { y[i] = ops_act(kind, x[i]); }
}

__global__ void act_bwd_kernel(int kind, size_t n, const float *__restrict__ x,
                               const float *__restrict__ dy, float *__restrict__ dx) {
  GRID_STRIDE(i, n) { dx[i] += ops_act_grad(kind, x[i], dy[i]); }
}

extern "C" void cuda_act_fwd(const struct ops_ctx *ctx, enum act_kind kind, size_t n,
                             const float *x, float *y) {
  if (!n) return;
  LAUNCH(act_fwd_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))((int)kind, n, x, y);
  LAUNCH_CHECK("act_fwd_kernel");
}

extern "C" void cuda_act_bwd(const struct ops_ctx *ctx, enum act_kind kind, size_t n,
                             const float *x, const float *dy, float *dx) {
  if (!n) return;
  LAUNCH(act_bwd_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))((int)kind, n, x, dy, dx);
  LAUNCH_CHECK("act_bwd_kernel");
}
