/* layernorm.cu — torch.nn.LayerNorm over the last axis. Forward and the
 * input gradient run one warp per row (two passes for the statistics, as the
 * CPU backend, so a large mean does not cancel the variance); dgamma/dbeta
 * are column sums over the rows, one block per 32 columns. */
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
    float s = 0.0f;
    for (int j = lane; j < d; j += 32)
      s += xr[j];
    float mu = warp_sum(s) / d;
    float ss = 0.0f;
    for (int j = lane; j < d; j += 32) {
      float c = xr[j] - mu;
      ss += c * c;
    }
    float rs = rsqrtf(warp_sum(ss) / d + eps);
    for (int j = lane; j < d; j += 32)
      yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
    if (lane == 0) {
      mean[r] = mu;
      rstd[r] = rs;
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
    float mu = mean[r], rs = rstd[r], sg = 0.0f, sgx = 0.0f;
    for (int j = lane; j < d; j += 32) {
      float g = gamma[j] * dyr[j];
      sg += g;
      sgx += g * ((xr[j] - mu) * rs);
    }
    float mg = warp_sum(sg) / d, mgx = warp_sum(sgx) / d;
    for (int j = lane; j < d; j += 32) {
      float xhat = (xr[j] - mu) * rs;
      dxr[j] += rs * (gamma[j] * dyr[j] - mg - xhat * mgx);
    }
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
  __shared__ float pg[LN_ROWS][33], pb[LN_ROWS][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float sg = 0.0f, sb = 0.0f;
  if (j < d)
    for (int r = threadIdx.y; r < rows; r += LN_ROWS) {
      float g = dy[(size_t)r * d + j];
      sg += g * ((x[(size_t)r * d + j] - mean[r]) * rstd[r]);
      sb += g;
    }
  pg[threadIdx.y][threadIdx.x] = sg;
  pb[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && j < d) {
    float tg = 0.0f, tb = 0.0f;
    for (int k = 0; k < LN_ROWS; k++) {
      tg += pg[k][threadIdx.x];
      tb += pb[k][threadIdx.x];
    }
    if (dgamma) dgamma[j] += tg;
    if (dbeta) dbeta[j] += tb;
  }
}

static unsigned row_blocks(int rows) {
  unsigned b = div_up(rows, LN_WARPS);
  return b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS;
}

extern "C" void cuda_layernorm_fwd(const struct ops_ctx *ctx, int rows, int d, const float *x,
                                   const float *gamma, const float *beta, float eps, float *y,
                                   float *mean, float *rstd) {
  (void)ctx;
  if (rows <= 0 || d <= 0) return;
  LAUNCH(layernorm_fwd_kernel, row_blocks(rows), LN_WARPS * 32, 0, STREAM)
  (rows, d, x, gamma, beta, eps, y, mean, rstd);
  LAUNCH_CHECK("layernorm_fwd_kernel");
}

extern "C" void cuda_layernorm_bwd(const struct ops_ctx *ctx, int rows, int d, const float *dy,
                                   const float *x, const float *gamma, const float *mean,
                                   const float *rstd, float *dx, float *dgamma, float *dbeta) {
  (void)ctx;
  if (rows <= 0 || d <= 0) return;
  if (dx) {
    LAUNCH(layernorm_dx_kernel, row_blocks(rows), LN_WARPS * 32, 0, STREAM)
    (rows, d, dy, x, gamma, mean, rstd, dx);
    LAUNCH_CHECK("layernorm_dx_kernel");
  }
  if (dgamma || dbeta) {
    LAUNCH(layernorm_dparams_kernel, div_up(d, 32), dim3(32, LN_ROWS), 0, STREAM)
    (rows, d, dy, x, mean, rstd, dgamma, dbeta);
    LAUNCH_CHECK("layernorm_dparams_kernel");
  }
}
