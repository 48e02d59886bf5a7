/* pool.cu — MaxPool2d (no padding, floor mode) and the two mean
 * reductions. The backward passes gather (each thread owns one input
 * element and visits, in output order, every window covering it) instead of
 * scattering with atomics: deterministic, and the same order of additions
 * as the CPU backend. */
#include "kernels/cuda/common.cuh"

__global__ void maxpool_fwd_kernel(size_t total, int h, int w, int k, int s, int oh, int ow,
                                   const float *__restrict__ x, float *__restrict__ y,
                                   int32_t *__restrict__ idx) {
  GRID_STRIDE(o, total) {
    size_t plane = o / ((size_t)oh * ow);
    int r = (int)(o % ((size_t)oh * ow)), oy = r / ow, ox = r % ow;
    int32_t i = ops_maxpool_window(x + plane * h * w, w, k, s, oy, ox, y + o);
    if (idx) idx[o] = i;
  }
}

__global__ void maxpool_bwd_kernel(size_t total, int h, int w, int k, int s, int oh, int ow,
                                   const float *__restrict__ dy, const int32_t *__restrict__ idx,
                                   float *__restrict__ dx) {
  GRID_STRIDE(e, total) {
    size_t plane = e / ((size_t)h * w);
    int i = (int)(e % ((size_t)h * w)), iy = i / w, ix = i % w;
    /* windows oy with oy*s <= iy <= oy*s + k - 1 */
    int oy0 = iy - k + 1 > 0 ? (iy - k + s) / s : 0, oy1 = iy / s < oh - 1 ? iy / s : oh - 1;
    int ox0 = ix - k + 1 > 0 ? (ix - k + s) / s : 0, ox1 = ix / s < ow - 1 ? ix / s : ow - 1;
    const float *dyp = dy + plane * oh * ow;
    const int32_t *ip = idx + plane * oh * ow;
    float acc = dx[e];
    for (int oy = oy0; oy <= oy1; oy++)
      for (int ox = ox0; ox <= ox1; ox++)
        if (ip[oy * ow + ox] == i) acc += dyp[oy * ow + ox];
    dx[e] = acc;
  }
}

extern "C" void cuda_maxpool2d_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int k,
                                   int s, const float *x, float *y, int32_t *idx) {
  int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
  size_t total = (size_t)n * c * oh * ow;
  if (!total) return;
  LAUNCH(maxpool_fwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (total, h, w, k, s, oh, ow, x, y, idx);
  LAUNCH_CHECK("maxpool_fwd_kernel");
}

extern "C" void cuda_maxpool2d_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int k,
                                   int s, const float *dy, const int32_t *idx, float *dx) {
  int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
  size_t total = (size_t)n * c * h * w;
  if (!total) return;
  LAUNCH(maxpool_bwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (total, h, w, k, s, oh, ow, dy, idx, dx);
  LAUNCH_CHECK("maxpool_bwd_kernel");
}

/* y (b, d) = mean over t of x (b, t, d): one thread per output, adding the
 * rows in order (coalesced across the threads of a warp along d). */
__global__ void mean_mid_fwd_kernel(int b, int t, int d, const float *__restrict__ x,
                                    float *__restrict__ y) {
  GRID_STRIDE(o, (size_t)b * d) {
    size_t bi = o / d, j = o % d;
    const float *xb = x + bi * t * d + j;
    float acc = 0.0f;
    for (int r = 0; r < t; r++)
      acc += xb[(size_t)r * d];
    y[o] = acc / (float)t;
  }
}

__global__ void mean_mid_bwd_kernel(int b, int t, int d, const float *__restrict__ dy,
                                    float *__restrict__ dx) {
  GRID_STRIDE(e, (size_t)b * t * d) {
    size_t bi = e / ((size_t)t * d), j = e % d;
    dx[e] += dy[bi * d + j] / (float)t;
  }
}

/* y (rows) = mean of each row of x (rows, cols): one warp per row, lane
 * partial sums in ops_acc_t, then a shuffle reduction. */
#define ML_WARPS 8
__global__ void mean_last_fwd_kernel(int rows, int cols, const float *__restrict__ x,
                                     float *__restrict__ y) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * ML_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * ML_WARPS) {
    const float *xr = x + (size_t)r * cols;
    ops_acc_t acc = warp_sum(ops_row_sum(xr, cols, lane, 32));
    if (lane == 0) y[r] = (float)(acc / cols);
  }
}

__global__ void mean_last_bwd_kernel(int rows, int cols, const float *__restrict__ dy,
                                     float *__restrict__ dx) {
  GRID_STRIDE(e, (size_t)rows * cols) { dx[e] += dy[e / cols] / (float)cols; }
}

extern "C" void cuda_mean_mid_fwd(const struct ops_ctx *ctx, int b, int t, int d, const float *x,
                                  float *y) {
  size_t total = (size_t)b * d;
  if (!total) return;
  LAUNCH(mean_mid_fwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))(b, t, d, x, y);
  LAUNCH_CHECK("mean_mid_fwd_kernel");
}

extern "C" void cuda_mean_mid_bwd(const struct ops_ctx *ctx, int b, int t, int d, const float *dy,
                                  float *dx) {
  size_t total = (size_t)b * t * d;
  if (!total) return;
  LAUNCH(mean_mid_bwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))(b, t, d, dy, dx);
  LAUNCH_CHECK("mean_mid_bwd_kernel");
}

extern "C" void cuda_mean_last_fwd(const struct ops_ctx *ctx, int rows, int cols, const float *x,
                                   float *y) {
  if (rows <= 0) return;
  unsigned blocks = div_up(rows, ML_WARPS);
  LAUNCH(mean_last_fwd_kernel, blocks < EW_MAX_BLOCKS ? blocks : EW_MAX_BLOCKS, ML_WARPS * 32, 0,
         cuda_stream(ctx))
  (rows, cols, x, y);
  LAUNCH_CHECK("mean_last_fwd_kernel");
}

extern "C" void cuda_mean_last_bwd(const struct ops_ctx *ctx, int rows, int cols, const float *dy,
                                   float *dx) {
  size_t total = (size_t)rows * cols;
  if (!total) return;
  LAUNCH(mean_last_bwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (rows, cols, dy, dx);
  LAUNCH_CHECK("mean_last_bwd_kernel");
}
