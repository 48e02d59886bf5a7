/* embedding.cu — table lookup and the sinusoidal positional encoding
 * (ops_shared.h's formula, the CPU backend's). Indices are trusted, as on
 * the CPU: the data layer validates token ids. */
#include "kernels/cuda/common.cuh"

__global__ void embedding_fwd_kernel(int n, int d, const int32_t *__restrict__ idx,
                                     const float *__restrict__ table, float *__restrict__ y) {
  GRID_STRIDE(e, (size_t)n * d) { y[e] = table[(size_t)idx[e / d] * d + e % d]; }
}

/* dtable += rows of dy: one thread per column walks the n indices in order,
 * so repeated ids are summed without atomics, in the CPU backend's order. */
__global__ void embedding_bwd_kernel(int n, int d, const int32_t *__restrict__ idx,
                                     const float *__restrict__ dy, float *__restrict__ dtable) {
  GRID_STRIDE(j, (size_t)d) {
    for (int i = 0; i < n; i++)
      dtable[(size_t)idx[i] * d + j] += dy[(size_t)i * d + j];
  }
}

/* y may be x (elementwise, each thread reads before it writes). */
__global__ void posenc_kernel(int b, int t, int d, const float *x, float *y) {
  GRID_STRIDE(e, (size_t)b * t * d) {
    int j = (int)(e % d), i = (int)(e / d % t);
    y[e] = x[e] + ops_posenc(i, j, d);
  }
}

extern "C" void cuda_embedding_fwd(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                                   const float *table, float *y) {
  size_t total = (size_t)n * d;
  if (!total) return;
  LAUNCH(embedding_fwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (n, d, idx, table, y);
  LAUNCH_CHECK("embedding_fwd_kernel");
}

extern "C" void cuda_embedding_bwd(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                                   const float *dy, float *dtable) {
  if (n <= 0 || d <= 0) return;
  LAUNCH(embedding_bwd_kernel, ew_blocks(d), EW_THREADS, 0, cuda_stream(ctx))
  (n, d, idx, dy, dtable);
  LAUNCH_CHECK("embedding_bwd_kernel");
}

extern "C" void cuda_posenc_fwd(const struct ops_ctx *ctx, int b, int t, int d, const float *x,
                                float *y) {
  size_t total = (size_t)b * t * d;
  if (!total) return;
  LAUNCH(posenc_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))(b, t, d, x, y);
  LAUNCH_CHECK("posenc_kernel");
}
