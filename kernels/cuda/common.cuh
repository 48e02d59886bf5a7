/* common.cuh — what every CUDA kernel file shares: the backend's state (one
 * cuBLAS handle and one stream per opened backend, all work in order on it;
 * an op finds it in ctx->state), grid sizing, and
 * warp/block reductions. Reductions always combine in the same order for a
 * given launch shape, so results are deterministic run to run. */
#ifndef CTRAIN_CUDA_COMMON_CUH
#define CTRAIN_CUDA_COMMON_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/ops_shared.h"

/* Blocks of partial sums for the two-stage reductions (the gradient norm,
 * the loss, the training score). */
#define CUDA_PARTIALS 256

struct cuda_state {
  cublasHandle_t blas;
  cudaStream_t stream;
  double *partials; /* device: CUDA_PARTIALS + 2 doubles */
  int *counts;      /* device: 2 CUDA_PARTIALS + 1 ints */
};

/* The state of the backend an op runs on (cuda_backend_open, backend.cu). */
static inline const struct cuda_state *cuda_state_of(const struct ops_ctx *ctx) {
  return (const struct cuda_state *)ctx->state;
}
static inline cudaStream_t cuda_stream(const struct ops_ctx *ctx) {
  return cuda_state_of(ctx)->stream;
}

/* Threads per block for elementwise kernels: 8 warps. */
#define EW_THREADS 256
/* Grid-stride kernels need no more blocks than this to fill a GPU. */
#define EW_MAX_BLOCKS 4096

static inline unsigned ew_blocks(size_t n) {
  size_t b = (n + EW_THREADS - 1) / EW_THREADS;
  return (unsigned)(b < 1 ? 1 : b > EW_MAX_BLOCKS ? EW_MAX_BLOCKS : b);
}

static inline unsigned div_up(size_t n, size_t d) { return (unsigned)((n + d - 1) / d); }

#define GRID_STRIDE(i, n)                                                                          \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                          \
       i += (size_t)blockDim.x * gridDim.x)

/* Sums and maxima over a warp (every lane calling) or a block (blockDim.x a
 * multiple of 32, every thread calling; `sh` is 33 values of shared memory),
 * every thread getting the result. One template for float and ops_acc_t:
 * the combining order is fixed by the launch shape alone. */
template <class T> static __device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2) {
    float u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

template <class T> static __device__ __forceinline__ T block_sum(T v, T *sh) {
  unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T r = lane < nw ? sh[lane] : (T)0;
    r = warp_sum(r);
    if (lane == 0) sh[32] = r;
  }
  __syncthreads();
  T r = sh[32];
  __syncthreads(); /* sh may be reused right away */
  return r;
}

/* Softmax of a row of n by one warp, ops_shared.h's row maths with the
 * lanes' shares combined by shuffles (y may be x). */
static __device__ __forceinline__ void warp_softmax(const float *x, float *y, int n, int lane) {
  float m = warp_max(ops_row_max(x, n, lane, 32));
  ops_acc_t s = warp_sum(ops_softmax_exp(x, y, n, lane, 32, m));
  ops_row_scale(y, n, lane, 32, (float)(1.0 / s));
}

#endif
