/* dropout.cu — inverted dropout; keep decisions come from ops_shared.h's
 * counter stream at each element's flat index, so the CUDA and CPU
 * backends drop exactly the same elements. */
#include "kernels/cuda/common.cuh"

__global__ void dropout_fwd_kernel(size_t n, float p, float scale, uint64_t key, uint64_t counter,
                                   const float *x, float *y, uint8_t *__restrict__ keep) {
  GRID_STRIDE(i, n) {
    int k = p > 0.0f ? ops_dropout_keep(key, counter, i, p) : 1;
    keep[i] = (uint8_t)k;
    y[i] = k ? x[i] * scale : 0.0f;
  }
}

__global__ void dropout_bwd_kernel(size_t n, float scale, const float *__restrict__ dy,
                                   const uint8_t *__restrict__ keep, float *__restrict__ dx) {
  GRID_STRIDE(i, n) {
    if (keep[i]) dx[i] += dy[i] * scale;
  }
}

/* p = 1 drops everything; 1/(1-p) would turn 0 * inf into NaN. */
static float keep_scale(float p) { return p <= 0.0f ? 1.0f : p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

extern "C" void cuda_dropout_fwd(const struct ops_ctx *ctx, size_t n, float p,
                                 struct rng_stream rng, const float *x, float *y, uint8_t *keep) {
  if (!n) return;
  LAUNCH(dropout_fwd_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, p, keep_scale(p), rng.key, rng.counter, x, y, keep);
  LAUNCH_CHECK("dropout_fwd_kernel");
}

extern "C" void cuda_dropout_bwd(const struct ops_ctx *ctx, size_t n, float p, const float *dy,
                                 const uint8_t *keep, float *dx) {
  if (!n) return;
  LAUNCH(dropout_bwd_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, keep_scale(p), dy, keep, dx);
  LAUNCH_CHECK("dropout_bwd_kernel");
}
