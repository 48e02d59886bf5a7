/* elementwise.cu — add, axpy, scale, the batched transpose and the sum of
 * squares. */
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
  (void)ctx;
  if (!n) return;
  LAUNCH(add_kernel, ew_blocks(n), EW_THREADS, 0, STREAM)(n, a, b, y);
  LAUNCH_CHECK("add_kernel");
}

extern "C" void cuda_axpy(const struct ops_ctx *ctx, size_t n, float alpha, const float *x,
                          float *y) {
  (void)ctx;
  if (!n) return;
  LAUNCH(axpy_kernel, ew_blocks(n), EW_THREADS, 0, STREAM)(n, alpha, x, y);
  LAUNCH_CHECK("axpy_kernel");
}

extern "C" void cuda_scale(const struct ops_ctx *ctx, size_t n, float alpha, float *y) {
  (void)ctx;
  if (!n) return;
  LAUNCH(scale_kernel, ew_blocks(n), EW_THREADS, 0, STREAM)(n, alpha, y);
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

static void transpose(int b, int r, int c, const float *src, float *dst, int accumulate) {
  if (b <= 0 || r <= 0 || c <= 0) return;
  dim3 grid(div_up(c, TR_TILE), div_up(r, TR_TILE), b < 65535 ? b : 65535);
  LAUNCH(transpose_kernel, grid, dim3(TR_TILE, TR_ROWS), 0, STREAM)(b, r, c, src, dst, accumulate);
  LAUNCH_CHECK("transpose_kernel");
}

extern "C" void cuda_transpose_fwd(const struct ops_ctx *ctx, int b, int r, int c, const float *x,
                                   float *y) {
  (void)ctx;
  transpose(b, r, c, x, y, 0);
}

extern "C" void cuda_transpose_bwd(const struct ops_ctx *ctx, int b, int r, int c, const float *dy,
                                   float *dx) {
  (void)ctx;
  transpose(b, c, r, dy, dx, 1); /* dy (b, c, r) transposed back, accumulated */
}

/* Sum of squares in double: CUDA_PARTIALS blocks each reduce a fixed
 * grid-stride share, one block adds the partials in order. */
__global__ void sumsq_partial(size_t n, const float *__restrict__ x, double *__restrict__ part) {
  __shared__ double sh[33];
  double acc = 0.0;
  GRID_STRIDE(i, n) { acc += (double)x[i] * x[i]; }
  acc = block_sum_d(acc, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ void sum_partials(int parts, double *__restrict__ part) {
  __shared__ double sh[33];
  double acc = 0.0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x)
    acc += part[i];
  acc = block_sum_d(acc, sh);
  if (threadIdx.x == 0) part[parts] = acc;
}

extern "C" double cuda_sumsq(const struct ops_ctx *ctx, size_t n, const float *x) {
  (void)ctx;
  if (!n) return 0.0;
  double *part = cuda_state()->partials;
  LAUNCH(sumsq_partial, CUDA_PARTIALS, EW_THREADS, 0, STREAM)(n, x, part);
  LAUNCH_CHECK("sumsq_partial");
  LAUNCH(sum_partials, 1, EW_THREADS, 0, STREAM)(CUDA_PARTIALS, part);
  LAUNCH_CHECK("sum_partials");
  double s = 0.0;
  cuda_download(&s, part + CUDA_PARTIALS, sizeof s);
  return s;
}
