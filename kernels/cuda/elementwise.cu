/* elementwise.cu — add, axpy, scale, the batched transpose and the
 * gradient's guard and clipping. */
#include "kernels/cuda/common.cuh"

__global__ void add_kernel(size_t n, const float *__restrict__ a, const float *__restrict__ b,
                           float *__restrict__ y) {
  GRID_STRIDE(i, n) { y[i] = a[i] + b[i]; }
}

__global__ void axpy_kernel(size_t n, float alpha, const float *__restrict__ x,
                            float *__restrict__ y) {
  GRID_STRIDE(i, n) { y[i] += alpha * x[i]; }
}

__global__ void scale_kernel(size_t n, float alpha, float *__restrict__ y) {
  GRID_STRIDE(i, n) { y[i] *= alpha; }
}

extern "C" void cuda_add_fwd(const struct ops_ctx *ctx, size_t n, const float *a, const float *b,
                             float *y) {
  if (!n) return;
  LAUNCH(add_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))(n, a, b, y);
  LAUNCH_CHECK("add_kernel");
}

extern "C" void cuda_axpy(const struct ops_ctx *ctx, size_t n, float alpha, const float *x,
                          float *y) {
  if (!n) return;
  LAUNCH(axpy_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))(n, alpha, x, y);
  LAUNCH_CHECK("axpy_kernel");
}

extern "C" void cuda_scale(const struct ops_ctx *ctx, size_t n, float alpha, float *y) {
  if (!n) return;
  LAUNCH(scale_kernel, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))(n, alpha, y);
  LAUNCH_CHECK("scale_kernel");
}

/* dst (b, c, r) op= transpose of src (b, r, c), through a 32 x 33 shared
 * tile (the extra column keeps the column reads free of bank conflicts):
 * both the global reads and the global writes are coalesced. A (32, 8)
 * block moves a 32 x 32 tile; grid.z walks the batch. */
#define TR_TILE 32
#define TR_ROWS 8
__global__ void transpose_kernel(int b, int r, int c, const float *__restrict__ src,
                                 float *__restrict__ dst, int accumulate) {
  __shared__ float tile[TR_TILE][TR_TILE + 1];
  int i0 = blockIdx.y * TR_TILE, j0 = blockIdx.x * TR_TILE;
  int tx = threadIdx.x, ty = threadIdx.y;
  for (int bi = blockIdx.z; bi < b; bi += gridDim.z) {
    const float *s = src + (size_t)bi * r * c;
    float *d = dst + (size_t)bi * r * c;
    for (int k = ty; k < TR_TILE; k += TR_ROWS) {
      int i = i0 + k, j = j0 + tx;
      if (i < r && j < c) tile[k][tx] = s[(size_t)i * c + j];
    }
    __syncthreads();
    for (int k = ty; k < TR_TILE; k += TR_ROWS) {
      int j = j0 + k, i = i0 + tx; /* output row j, column i */
      if (i < r && j < c) {
        float v = tile[tx][k];
        size_t at = (size_t)j * r + i;
        d[at] = accumulate ? d[at] + v : v;
      }
    }
    __syncthreads(); /* the tile is refilled for the next matrix */
  }
}

static void transpose(const struct ops_ctx *ctx, int b, int r, int c, const float *src, float *dst,
                      int accumulate) {
  if (b <= 0 || r <= 0 || c <= 0) return;
  dim3 grid(div_up(c, TR_TILE), div_up(r, TR_TILE), b < 65535 ? b : 65535);
  LAUNCH(transpose_kernel, grid, dim3(TR_TILE, TR_ROWS), 0, cuda_stream(ctx))
  (b, r, c, src, dst, accumulate);
  LAUNCH_CHECK("transpose_kernel");
}

extern "C" void cuda_transpose_fwd(const struct ops_ctx *ctx, int b, int r, int c, const float *x,
                                   float *y) {
  transpose(ctx, b, r, c, x, y, 0);
}

extern "C" void cuda_transpose_bwd(const struct ops_ctx *ctx, int b, int r, int c, const float *dy,
                                   float *dx) {
  transpose(ctx, b, c, r, dy, dx, 1); /* dy (b, c, r) transposed back, accumulated */
}

/* Sum of squares in double: CUDA_PARTIALS blocks each reduce a fixed
 * grid-stride share, one block adds the partials in order. */
__global__ void sumsq_partial(size_t n, const float *__restrict__ x, double *__restrict__ part) {
  __shared__ double sh[33];
  double acc = 0.0;
  GRID_STRIDE(i, n) { acc += (double)x[i] * x[i]; }
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

/* One block: the norm from the partials, the guard, and the factor the
 * gradient is scaled by (1: none), left in part[parts + 1]. */
__global__ void clip_decide(int parts, double *__restrict__ part, float max_norm,
                            const float *__restrict__ loss, const int64_t *__restrict__ step,
                            int64_t *__restrict__ bad) {
  __shared__ double sh[33];
  double acc = 0.0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x)
    acc += part[i];
  acc = block_sum(acc, sh);
  if (threadIdx.x != 0) return;
  double norm = sqrt(acc), coef = 1.0;
  if (!isfinite(*loss) || !isfinite(norm)) {
    if (bad[0] < 0) {
      bad[0] = *step;
      bad[1] = isfinite(*loss) ? 2 : 1;
    }
  } else if (max_norm > 0.0f && norm > max_norm) {
    coef = (double)(float)(max_norm / (norm + 1e-6));
  }
  part[parts + 1] = coef;
}

__global__ void clip_apply(size_t n, const double *__restrict__ coef, float *__restrict__ g) {
  double c = *coef;
  if (c == 1.0) return;
  float f = (float)c;
  GRID_STRIDE(i, n) { g[i] *= f; }
}

extern "C" void cuda_grad_clip(const struct ops_ctx *ctx, size_t n, float *grad, float max_norm,
                               const float *loss, const int64_t *step, int64_t *bad) {
  double *part = cuda_state_of(ctx)->partials;
  LAUNCH(sumsq_partial, CUDA_PARTIALS, EW_THREADS, 0, cuda_stream(ctx))(n, grad, part);
  LAUNCH_CHECK("sumsq_partial");
  LAUNCH(clip_decide, 1, EW_THREADS, 0, cuda_stream(ctx))
  (CUDA_PARTIALS, part, max_norm, loss, step, bad);
  LAUNCH_CHECK("clip_decide");
  if (!n) return;
  LAUNCH(clip_apply, ew_blocks(n), EW_THREADS, 0, cuda_stream(ctx))
  (n, part + CUDA_PARTIALS + 1, grad);
  LAUNCH_CHECK("clip_apply");
}
