/* softmax.cu — softmax over the last axis, one warp per row: the row's max
 * and sum are shuffle reductions, each element is read from global memory
 * twice (max, then exp) and written once. A row of all -inf comes out NaN,
 * as in torch and the CPU backend. */
#include "kernels/cuda/common.cuh"

#define SM_WARPS 8

/* y may be x: each lane reads an element before it writes it, so no
 * __restrict__ here. */
__global__ void softmax_fwd_kernel(int rows, int cols, const float *x, float *y) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * SM_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * SM_WARPS) {
    const float *xr = x + (size_t)r * cols;
    float *yr = y + (size_t)r * cols;
    float m = -INFINITY;
    for (int j = lane; j < cols; j += 32)
      m = xr[j] > m ? xr[j] : m;
    m = warp_max(m);
    float s = 0.0f;
    for (int j = lane; j < cols; j += 32) {
      float e = expf(xr[j] - m);
      yr[j] = e;
      s += e;
    }
    float inv = 1.0f / warp_sum(s);
    for (int j = lane; j < cols; j += 32)
      yr[j] *= inv; /* each lane rescales the entries it wrote itself */
  }
}

__global__ void softmax_bwd_kernel(int rows, int cols, const float *__restrict__ y,
                                   const float *__restrict__ dy, float *__restrict__ dx) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * SM_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * SM_WARPS) {
    const float *yr = y + (size_t)r * cols, *dyr = dy + (size_t)r * cols;
    float *dxr = dx + (size_t)r * cols;
    float dot = 0.0f;
    for (int j = lane; j < cols; j += 32)
      dot += dyr[j] * yr[j];
    dot = warp_sum(dot);
    for (int j = lane; j < cols; j += 32)
      dxr[j] += yr[j] * (dyr[j] - dot);
  }
}

static unsigned row_blocks(int rows) {
  unsigned b = div_up(rows, SM_WARPS);
  return b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS;
}

extern "C" void cuda_softmax_fwd(const struct ops_ctx *ctx, int rows, int cols, const float *x,
                                 float *y) {
  (void)ctx;
  if (rows <= 0 || cols <= 0) return;
  LAUNCH(softmax_fwd_kernel, row_blocks(rows), SM_WARPS * 32, 0, STREAM)(rows, cols, x, y);
  LAUNCH_CHECK("softmax_fwd_kernel");
}

extern "C" void cuda_softmax_bwd(const struct ops_ctx *ctx, int rows, int cols, const float *y,
                                 const float *dy, float *dx) {
  (void)ctx;
  if (rows <= 0 || cols <= 0) return;
  LAUNCH(softmax_bwd_kernel, row_blocks(rows), SM_WARPS * 32, 0, STREAM)(rows, cols, y, dy, dx);
  LAUNCH_CHECK("softmax_bwd_kernel");
}
