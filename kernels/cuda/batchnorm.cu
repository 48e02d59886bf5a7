/* batchnorm.cu — BatchNorm2d over x (n, c, hw), torch semantics (biased
 * variance to normalise, unbiased into the running estimate). One block per
 * channel: the statistics are block reductions (mean first, then the
 * centred squares: no cancellation), the same block then normalises, so a
 * channel's values are read three times and written once. Synchronised
 * BatchNorm (ctx->reduce_sum set) splits that kernel where the replicas'
 * sums must be added. */
#include "kernels/cuda/common.cuh"

#define BN_THREADS 256

/* The element e of channel ch, counting over (n, hw). */
static __device__ __forceinline__ size_t bn_at(size_t e, int ch, int hw, size_t plane) {
  return (e / hw) * plane + (size_t)ch * hw + e % hw;
}

/* Running statistics from the batch mean and biased variance over `count`
 * values (count 1: torch would store inf/nan; the biased 0 is kept, as on
 * the CPU), and the saved mean and rstd for backward. Thread 0 only. */
static __device__ __forceinline__ void bn_store_stats(int ch, float mean, float var, float rstd,
                                                      size_t count, float momentum,
                                                      float *running_mean, float *running_var,
                                                      float *save_mean, float *save_rstd) {
  float unbiased = count > 1 ? var * (float)count / (float)(count - 1) : var;
  running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mean;
  running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * unbiased;
  save_mean[ch] = mean;
  save_rstd[ch] = rstd;
}

/* y = x * a + b over channel ch, a = rstd * gamma, b = beta - mean * a. */
static __device__ __forceinline__ void bn_apply(int ch, int hw, size_t plane, size_t count,
                                                const float *x, float mean, float rstd,
                                                const float *gamma, const float *beta, float *y) {
  float a = rstd * gamma[ch], b = beta[ch] - mean * a;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = bn_at(e, ch, hw, plane);
    y[at] = x[at] * a + b;
  }
}

/* dx += dy k + (x - mean) q + r over channel ch, with k = gamma rstd,
 * q = -k rstd sum(dy xhat) / count, r = -k sum(dy) / count (the CPU's fold). */
static __device__ __forceinline__ void bn_dx(int ch, int hw, size_t plane, size_t count,
                                             const float *dy, const float *x, float mean, float k,
                                             float q, float r, float *dx) {
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = bn_at(e, ch, hw, plane);
    dx[at] += dy[at] * k + (x[at] - mean) * q + r;
  }
}

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
      s += x[bn_at(e, ch, hw, plane)];
    mean = block_sum(s, sh) / (float)count;
    float ss = 0.0f;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
      float d = x[bn_at(e, ch, hw, plane)] - mean;
      ss += d * d;
    }
    float var = block_sum(ss, sh) / (float)count;
    rstd = rsqrtf(var + eps);
    if (threadIdx.x == 0)
      bn_store_stats(ch, mean, var, rstd, count, momentum, running_mean, running_var, save_mean,
                     save_rstd);
  } else {
    mean = running_mean[ch];
    rstd = rsqrtf(running_var[ch] + eps);
  }
  bn_apply(ch, hw, plane, count, x, mean, rstd, gamma, beta, y);
}

/* Synchronised BatchNorm (ctx->reduce_sum), torch.nn.SyncBatchNorm's
 * statistics computed as the CPU backend computes them: per-channel sums in
 * double, summed over replicas by ctx->reduce_sum on device memory (in
 * stream order), the mean first and then the squares centred on it. The
 * planned scratch holds 4c + 1 doubles; these use 3c + 1:
 * p1 = [sum x (c), count] and p2 = [sum (x - mean) (c), sum (x - mean)^2 (c)]. */
__global__ void bn_sync_sum_kernel(int n, int c, int hw, const float *__restrict__ x,
                                   double *__restrict__ p1) {
  __shared__ double sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  double s = 0.0;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x)
    s += x[bn_at(e, ch, hw, plane)];
  s = block_sum_d(s, sh);
  if (threadIdx.x == 0) {
    p1[ch] = s;
    if (ch == 0) p1[c] = (double)count;
  }
}

__global__ void bn_sync_centred_kernel(int n, int c, int hw, const float *__restrict__ x,
                                       const double *__restrict__ p1, double *__restrict__ p2) {
  __shared__ double sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  double mean = p1[ch] / p1[c], s1 = 0.0, s2 = 0.0;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    double d = x[bn_at(e, ch, hw, plane)] - mean;
    s1 += d;
    s2 += d * d;
  }
  s1 = block_sum_d(s1, sh);
  s2 = block_sum_d(s2, sh);
  if (threadIdx.x == 0) {
    p2[ch] = s1;
    p2[c + ch] = s2;
  }
}

__global__ void bn_sync_apply_kernel(int n, int c, int hw, const float *__restrict__ x,
                                     const float *__restrict__ gamma,
                                     const float *__restrict__ beta,
                                     float *__restrict__ running_mean,
                                     float *__restrict__ running_var, float momentum, float eps,
                                     const double *__restrict__ p1, const double *__restrict__ p2,
                                     float *__restrict__ y, float *__restrict__ save_mean,
                                     float *__restrict__ save_rstd) {
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  double total = p1[c], dm = p2[ch] / total;
  double var = fmax(p2[c + ch] / total - dm * dm, 0.0), mean = p1[ch] / total + dm;
  double rstd = 1.0 / sqrt(var + eps);
  if (threadIdx.x == 0)
    bn_store_stats(ch, (float)mean, (float)var, (float)rstd, (size_t)total, momentum, running_mean,
                   running_var, save_mean, save_rstd);
  bn_apply(ch, hw, plane, count, x, (float)mean, (float)rstd, gamma, beta, y);
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
    size_t at = bn_at(e, ch, hw, plane);
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
  float k = gamma[ch] * rstd;
  bn_dx(ch, hw, plane, count, dy, x, mean, k, -k * rstd * sum_dy_xhat / (float)count,
        -k * sum_dy / (float)count, dx);
}

/* Sync backward: dgamma and dbeta take this replica's sums (the gradient
 * all-reduce averages them, as any parameter's), dx the sums over every
 * replica: sums = [sum dy (c), sum dy xhat (c), count], reduced between the
 * two kernels. */
__global__ void bn_sync_bwd_sum_kernel(int n, int c, int hw, const float *__restrict__ dy,
                                       const float *__restrict__ x,
                                       const float *__restrict__ save_mean,
                                       const float *__restrict__ save_rstd,
                                       float *__restrict__ dgamma, float *__restrict__ dbeta,
                                       double *__restrict__ sums) {
  __shared__ double sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  double mean = save_mean[ch], s1 = 0.0, s2 = 0.0;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = bn_at(e, ch, hw, plane);
    s1 += dy[at];
    s2 += dy[at] * (x[at] - mean);
  }
  s1 = block_sum_d(s1, sh);
  s2 = block_sum_d(s2, sh) * save_rstd[ch];
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[ch] += (float)s2;
    if (dbeta) dbeta[ch] += (float)s1;
    sums[ch] = s1;
    sums[c + ch] = s2;
    if (ch == 0) sums[2 * c] = (double)count;
  }
}

__global__ void bn_sync_dx_kernel(int n, int c, int hw, const float *__restrict__ dy,
                                  const float *__restrict__ x, const float *__restrict__ gamma,
                                  const float *__restrict__ save_mean,
                                  const float *__restrict__ save_rstd,
                                  const double *__restrict__ sums, float *__restrict__ dx) {
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  double rstd = save_rstd[ch], total = sums[2 * c], k = gamma[ch] * rstd;
  bn_dx(ch, hw, plane, count, dy, x, save_mean[ch], (float)k,
        (float)(-k * rstd * sums[c + ch] / total), (float)(-k * sums[ch] / total), dx);
}

static void bn_fwd_sync(const struct ops_ctx *ctx, int n, int c, int hw, const float *x,
                        const float *gamma, const float *beta, float *running_mean,
                        float *running_var, float momentum, float eps, float *y, float *save_mean,
                        float *save_rstd) {
  double *p1 = (double *)ctx->scratch, *p2 = p1 + c + 1;
  LAUNCH(bn_sync_sum_kernel, c, BN_THREADS, 0, STREAM)(n, c, hw, x, p1);
  LAUNCH_CHECK("bn_sync_sum_kernel");
  ctx->reduce_sum(ctx->reduce_user, p1, c + 1);
  LAUNCH(bn_sync_centred_kernel, c, BN_THREADS, 0, STREAM)(n, c, hw, x, p1, p2);
  LAUNCH_CHECK("bn_sync_centred_kernel");
  ctx->reduce_sum(ctx->reduce_user, p2, 2 * c);
  LAUNCH(bn_sync_apply_kernel, c, BN_THREADS, 0, STREAM)
  (n, c, hw, x, gamma, beta, running_mean, running_var, momentum, eps, p1, p2, y, save_mean,
   save_rstd);
  LAUNCH_CHECK("bn_sync_apply_kernel");
}

__global__ void bn_count_kernel(int64_t *num_batches) {
  if (threadIdx.x == 0) ++*num_batches;
}

extern "C" void cuda_batchnorm2d_fwd(const struct ops_ctx *ctx, int n, int c, int hw,
                                     const float *x, const float *gamma, const float *beta,
                                     float *running_mean, float *running_var, int64_t *num_batches,
                                     float momentum, float eps, int training, float *y,
                                     float *save_mean, float *save_rstd) {
  if (training && num_batches) {
    LAUNCH(bn_count_kernel, 1, 32, 0, STREAM)(num_batches);
    LAUNCH_CHECK("bn_count_kernel");
  }
  if (c <= 0) return;
  if (training && ctx->reduce_sum) {
    bn_fwd_sync(ctx, n, c, hw, x, gamma, beta, running_mean, running_var, momentum, eps, y,
                save_mean, save_rstd);
    return;
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
  if (!ctx->reduce_sum) {
    LAUNCH(batchnorm_bwd_kernel, c, BN_THREADS, 0, STREAM)
    (n, c, hw, dy, x, gamma, save_mean, save_rstd, dx, dgamma, dbeta);
    LAUNCH_CHECK("batchnorm_bwd_kernel");
    return;
  }
  double *sums = (double *)ctx->scratch;
  LAUNCH(bn_sync_bwd_sum_kernel, c, BN_THREADS, 0, STREAM)
  (n, c, hw, dy, x, save_mean, save_rstd, dgamma, dbeta, sums);
  LAUNCH_CHECK("bn_sync_bwd_sum_kernel");
  if (!dx) return;
  ctx->reduce_sum(ctx->reduce_user, sums, 2 * c + 1);
  LAUNCH(bn_sync_dx_kernel, c, BN_THREADS, 0, STREAM)
  (n, c, hw, dy, x, gamma, save_mean, save_rstd, sums, dx);
  LAUNCH_CHECK("bn_sync_dx_kernel");
}
