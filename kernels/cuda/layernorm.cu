/* layernorm.cu — torch.nn.LayerNorm over the last axis. Forward and the
 * input gradient run one warp per row, on ops_shared.h's row maths (two
 * passes for the statistics, so a large mean does not cancel the variance);
 * dgamma/dbeta are column sums over the rows, one block per 32 columns. */
#include "kernels/cuda/common.cuh"

#define LN_WARPS 8

__global__ void layernorm_fwd_kernel(int rows, int d, const float *__restrict__ x,
                                     const float *__restrict__ gamma,
                                     const float *__restrict__ beta, float eps,
                                     float *__restrict__ y, float *__restrict__ mean,
                                     float *__restrict__ rstd) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * LN_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * LN_WARPS) {
    const float *xr = x + (size_t)r * d;
    float *yr = y + (size_t)r * d;
    const ops_acc_t mu = warp_sum(ops_row_sum(xr, d, lane, 32)) / d;
    const ops_acc_t rs = ops_ln_rstd(warp_sum(ops_centred_sq_sum(xr, d, lane, 32, mu)), d, eps);
    ops_ln_apply(xr, gamma, beta, yr, d, lane, 32, mu, rs);
    if (lane == 0) {
      mean[r] = (float)mu;
      rstd[r] = (float)rs;
    }
  }
}

/* dx += rstd (g - mean(g) - xhat mean(g xhat)), g = gamma dy */
__global__ void layernorm_dx_kernel(int rows, int d, const float *__restrict__ dy,
                                    const float *__restrict__ x, const float *__restrict__ gamma,
                                    const float *__restrict__ mean, const float *__restrict__ rstd,
                                    float *__restrict__ dx) {
  int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * LN_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * LN_WARPS) {
    const float *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
    float *dxr = dx + (size_t)r * d;
    ops_acc_t sg, sgx;
    ops_ln_dx_sums(dyr, xr, gamma, d, lane, 32, mean[r], rstd[r], &sg, &sgx);
    ops_ln_dx_apply(dyr, xr, gamma, dxr, d, lane, 32, mean[r], rstd[r], warp_sum(sg),
                    warp_sum(sgx));
  }
}

/* dgamma += sum_rows dy xhat, dbeta += sum_rows dy: (32, 8) threads per
 * 32 columns, row groups combined in order through shared memory. */
#define LN_ROWS 8
__global__ void layernorm_dparams_kernel(int rows, int d, const float *__restrict__ dy,
                                         const float *__restrict__ x,
                                         const float *__restrict__ mean,
                                         const float *__restrict__ rstd, float *__restrict__ dgamma,
                                         float *__restrict__ dbeta) {
  __shared__ ops_acc_t pg[LN_ROWS][33], pb[LN_ROWS][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  ops_acc_t sg = 0, sb = 0;
  if (j < d)
    for (int r = threadIdx.y; r < rows; r += LN_ROWS) {
      float g = dy[(size_t)r * d + j];
      sg += g * ops_ln_xhat(x[(size_t)r * d + j], mean[r], rstd[r]);
      sb += g;
    }
  pg[threadIdx.y][threadIdx.x] = sg;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && j < d) {
    ops_acc_t tg = 0, tb = 0;
    for (int k = 0; k < LN_ROWS; k++) {
      tg += pg[k][threadIdx.x];
      tb += pb[k][threadIdx.x];
    }
    if (dgamma) dgamma[j] += (float)tg;
    if (dbeta) dbeta[j] += (float)tb;
  }
}

static unsigned row_blocks(int rows) {
  unsigned b = div_up(rows, LN_WARPS);
  return b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS;
}

extern "C" void cuda_layernorm_fwd(const struct ops_ctx *ctx, int rows, int d, const float *x,
                                   const float *gamma, const float *beta, float eps, float *y,
                                   float *mean, float *rstd) {
  if (rows <= 0 || d <= 0) return;
  LAUNCH(layernorm_fwd_kernel, row_blocks(rows), LN_WARPS * 32, 0, cuda_stream(ctx))
  (rows, d, x, gamma, beta, eps, y, mean, rstd);
  LAUNCH_CHECK("layernorm_fwd_kernel");
}

extern "C" void cuda_layernorm_bwd(const struct ops_ctx *ctx, int rows, int d, const float *dy,
                                   const float *x, const float *gamma, const float *mean,
                                   const float *rstd, float *dx, float *dgamma, float *dbeta) {
  if (rows <= 0 || d <= 0) return;
  if (dx) {
    LAUNCH(layernorm_dx_kernel, row_blocks(rows), LN_WARPS * 32, 0, cuda_stream(ctx))
    (rows, d, dy, x, gamma, mean, rstd, dx);
    LAUNCH_CHECK("layernorm_dx_kernel");
  }
  if (dgamma || dbeta) {
    LAUNCH(layernorm_dparams_kernel, div_up(d, 32), dim3(32, LN_ROWS), 0, cuda_stream(ctx))
    (rows, d, dy, x, mean, rstd, dgamma, dbeta);
    LAUNCH_CHECK("layernorm_dparams_kernel");
  }
}
