/* batchnorm.cu — BatchNorm2d over x (n, c, hw), torch semantics (biased
 * variance to normalise, unbiased into the running estimate). One block per
 * channel: the statistics are block reductions (mean first, then the
 * centred squares: no cancellation), the same block then normalises, so a
 * channel's values are read three times and written once. */
#include "kernels/cuda/common.cuh"

#define BN_THREADS 256

__global__ void batchnorm_fwd_kernel(int n, int c, int hw, const float *__restrict__ x,
                                     const float *__restrict__ gamma,
                                     const float *__restrict__ beta,
                                     float *__restrict__ running_mean,
                                     float *__restrict__ running_var, float momentum, float eps,
                                     int training, float *__restrict__ y,
                                     float *__restrict__ save_mean, float *__restrict__ save_rstd) {
  __shared__ float sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  float mean, rstd;
  if (training) {
    float s = 0.0f;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x)
      s += x[(e / hw) * plane + (size_t)ch * hw + e % hw];
    mean = block_sum(s, sh) / (float)count;
    float ss = 0.0f;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
      float d = x[(e / hw) * plane + (size_t)ch * hw + e % hw] - mean;
      ss += d * d;
    }
    float var = block_sum(ss, sh) / (float)count;
    rstd = rsqrtf(var + eps);
    if (threadIdx.x == 0) {
      /* count 1: torch would store inf/nan; the biased 0 is kept, as on the CPU */
      float unbiased = count > 1 ? var * (float)count / (float)(count - 1) : var;
      running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mean;
      running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * unbiased;
      save_mean[ch] = mean;
      save_rstd[ch] = rstd;
    }
  } else {
    mean = running_mean[ch];
    rstd = rsqrtf(running_var[ch] + eps);
  }
  float a = rstd * gamma[ch], b = beta[ch] - mean * a;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = (e / hw) * plane + (size_t)ch * hw + e % hw;
    y[at] = x[at] * a + b;
  }
}

__global__ void batchnorm_bwd_kernel(int n, int c, int hw, const float *__restrict__ dy,
                                     const float *__restrict__ x, const float *__restrict__ gamma,
                                     const float *__restrict__ save_mean,
                                     const float *__restrict__ save_rstd, float *__restrict__ dx,
                                     float *__restrict__ dgamma, float *__restrict__ dbeta) {
  __shared__ float sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  float mean = save_mean[ch], rstd = save_rstd[ch];
  float s1 = 0.0f, s2 = 0.0f;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = (e / hw) * plane + (size_t)ch * hw + e % hw;
    s1 += dy[at];
    s2 += dy[at] * (x[at] - mean);
  }
  float sum_dy = block_sum(s1, sh);
  float sum_dy_xhat = block_sum(s2, sh) * rstd;
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[ch] += sum_dy_xhat;
    if (dbeta) dbeta[ch] += sum_dy;
  }
  if (!dx) return;
  /* dx += dy k + (x - mean) q + r, as the CPU backend folds it */
  float g = gamma[ch] * rstd;
  float k = g, q = -g * rstd * sum_dy_xhat / (float)count, r = -g * sum_dy / (float)count;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = (e / hw) * plane + (size_t)ch * hw + e % hw;
    dx[at] += dy[at] * k + (x[at] - mean) * q + r;
  }
}

extern "C" void cuda_batchnorm2d_fwd(const struct ops_ctx *ctx, int n, int c, int hw,
                                     const float *x, const float *gamma, const float *beta,
                                     float *running_mean, float *running_var, float momentum,
                                     float eps, int training, float *y, float *save_mean,
                                     float *save_rstd) {
  if (c <= 0) return;
  if (training && ctx->reduce_sum) {
    fprintf(stderr, "ctrain: synchronised BatchNorm is not available on the CUDA backend\n");
    abort();
  }
  LAUNCH(batchnorm_fwd_kernel, c, BN_THREADS, 0, STREAM)
  (n, c, hw, x, gamma, beta, running_mean, running_var, momentum, eps, training, y, save_mean,
   save_rstd);
  LAUNCH_CHECK("batchnorm_fwd_kernel");
}

extern "C" void cuda_batchnorm2d_bwd(const struct ops_ctx *ctx, int n, int c, int hw,
                                     const float *dy, const float *x, const float *gamma,
                                     const float *save_mean, const float *save_rstd, float *dx,
                                     float *dgamma, float *dbeta) {
  if (c <= 0) return;
  if (ctx->reduce_sum) {
    fprintf(stderr, "ctrain: synchronised BatchNorm is not available on the CUDA backend\n");
    abort();
  }
  LAUNCH(batchnorm_bwd_kernel, c, BN_THREADS, 0, STREAM)
  (n, c, hw, dy, x, gamma, save_mean, save_rstd, dx, dgamma, dbeta);
  LAUNCH_CHECK("batchnorm_bwd_kernel");
}
