/* softmax.cu — softmax over the last axis, one warp per row (common.cuh's
 * warp_softmax on ops_shared.h's row maths): the row's max and sum are
 * shuffle reductions, each element is read from global memory twice (max,
 * then exp) and written once. A row of all -inf comes out NaN, as in torch
 * and the CPU backend. */
#include "kernels/cuda/common.cuh"

#define SM_WARPS 8

/* y may be x: each lane reads an element before it writes it, so no
 * __restrict__ here. */
__global__ void softmax_fwd_kernel(int rows, int cols, const float *x, float *y) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * SM_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * SM_WARPS)
    warp_softmax(x + (size_t)r * cols, y + (size_t)r * cols, cols, lane);
}

__global__ void softmax_bwd_kernel(int rows, int cols, const float *__restrict__ y,
                                   const float *__restrict__ dy, float *__restrict__ dx) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * SM_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * SM_WARPS) {
    const float *yr = y + (size_t)r * cols, *dyr = dy + (size_t)r * cols;
    float *dxr = dx + (size_t)r * cols;
    ops_softmax_bwd_apply(yr, dyr, dxr, cols, lane, 32,
                          warp_sum(ops_row_dot(dyr, yr, cols, lane, 32)));
  }
}

static unsigned row_blocks(int rows) {
  unsigned b = div_up(rows, SM_WARPS);
  return b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS;
}

extern "C" void cuda_softmax_fwd(const struct ops_ctx *ctx, int rows, int cols, const float *x,
                                 float *y) {
  if (rows <= 0 || cols <= 0) return;
  LAUNCH(softmax_fwd_kernel, row_blocks(rows), SM_WARPS * 32, 0, cuda_stream(ctx))
  (rows, cols, x, y);
  LAUNCH_CHECK("softmax_fwd_kernel");
}

extern "C" void cuda_softmax_bwd(const struct ops_ctx *ctx, int rows, int cols, const float *y,
                                 const float *dy, float *dx) {
  if (rows <= 0 || cols <= 0) return;
  LAUNCH(softmax_bwd_kernel, row_blocks(rows), SM_WARPS * 32, 0, cuda_stream(ctx))
  (rows, cols, y, dy, dx);
  LAUNCH_CHECK("softmax_bwd_kernel");
}
