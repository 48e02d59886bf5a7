/* batchnorm.cu — BatchNorm2d over x (n, c, hw), torch semantics (biased
 * variance to normalise, unbiased into the running estimate). One block per
 * channel: the statistics are block reductions in ops_acc_t (mean first,
 * then the centred squares: no cancellation) finished by ops_shared.h's
 * maths, the same block then normalises, so a channel's values are read
 * three times and written once. Synchronised
 * BatchNorm (ctx->reduce_sum set) splits that kernel where the replicas'
 * sums must be added. */
#include "kernels/cuda/common.cuh"

#define BN_THREADS 256

/* The element e of channel ch, counting over (n, hw). */
static __device__ __forceinline__ size_t bn_at(size_t e, int ch, int hw, size_t plane) {
  return (e / hw) * plane + (size_t)ch * hw + e % hw;
}

/* The running statistics and the saved mean and rstd for backward, from
 * the batch's statistics over `count` values. Thread 0 only. */
static __device__ __forceinline__ void bn_store_stats(int ch, struct ops_bn_stats st,
                                                      ops_acc_t count, float momentum,
                                                      float *running_mean, float *running_var,
                                                      float *save_mean, float *save_rstd) {
  ops_bn_running(running_mean + ch, running_var + ch, momentum, st.mean, st.var, count);
  save_mean[ch] = (float)st.mean;
  save_rstd[ch] = (float)st.rstd;
}

/* y = x a + b over channel ch (ops_bn_affine). */
static __device__ __forceinline__ void bn_apply(int ch, int hw, size_t plane, size_t count,
                                                const float *x, ops_acc_t mean, ops_acc_t rstd,
                                                const float *gamma, const float *beta, float *y) {
  const struct ops_bn_affine f = ops_bn_affine(gamma[ch], beta[ch], mean, rstd);
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = bn_at(e, ch, hw, plane);
    y[at] = x[at] * f.a + f.b;
  }
}

/* dx += dy k + (x - mean) q + r over channel ch (ops_bn_dx). */
static __device__ __forceinline__ void bn_dx(int ch, int hw, size_t plane, size_t count,
                                             const float *dy, const float *x, float mean,
                                             struct ops_bn_dx f, float *dx) {
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = bn_at(e, ch, hw, plane);
    dx[at] += ops_bn_dx_elem(f, dy[at], x[at], mean);
  }
}

/* The channel's sum over the block. */
static __device__ __forceinline__ ops_acc_t bn_sum(int ch, int hw, size_t plane, size_t count,
                                                   const float *x, ops_acc_t *sh) {
  ops_acc_t a = 0;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x)
    a += x[bn_at(e, ch, hw, plane)];
  return block_sum(a, sh);
}

/* The channel's sum of x - shift and of its square over the block. */
static __device__ __forceinline__ void bn_shifted_sums(int ch, int hw, size_t plane, size_t count,
                                                       const float *x, ops_acc_t shift,
                                                       ops_acc_t *sh, ops_acc_t *s1,
                                                       ops_acc_t *s2) {
  ops_acc_t a = 0, b = 0;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    ops_acc_t d = x[bn_at(e, ch, hw, plane)] - shift;
    a += d;
    b += d * d;
  }
  *s1 = block_sum(a, sh);
  *s2 = block_sum(b, sh);
}

/* The channel's sum of dy and of dy (x - mean) over the block. */
static __device__ __forceinline__ void bn_grad_sums(int ch, int hw, size_t plane, size_t count,
                                                    const float *dy, const float *x, ops_acc_t mean,
                                                    ops_acc_t *sh, ops_acc_t *s1, ops_acc_t *s2) {
  ops_acc_t a = 0, b = 0;
  for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
    size_t at = bn_at(e, ch, hw, plane);
    a += dy[at];
    b += dy[at] * (x[at] - mean);
  }
  *s1 = block_sum(a, sh);
  *s2 = block_sum(b, sh);
}

/* Training: the mean first, then the sums centred on it (ops_bn_stats). */
__global__ void batchnorm_fwd_kernel(int n, int c, int hw, const float *__restrict__ x,
                                     const float *__restrict__ gamma,
                                     const float *__restrict__ beta,
                                     float *__restrict__ running_mean,
                                     float *__restrict__ running_var, float momentum, float eps,
                                     int training, float *__restrict__ y,
                                     float *__restrict__ save_mean, float *__restrict__ save_rstd) {
  __shared__ ops_acc_t sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  ops_acc_t mean, rstd;
  if (training) {
    const ops_acc_t shift = bn_sum(ch, hw, plane, count, x, sh) / count;
    ops_acc_t s1, s2;
    bn_shifted_sums(ch, hw, plane, count, x, shift, sh, &s1, &s2);
    struct ops_bn_stats st = ops_bn_stats(shift, s1, s2, (ops_acc_t)count, eps);
    mean = st.mean;
    rstd = st.rstd;
    if (threadIdx.x == 0)
      bn_store_stats(ch, st, (ops_acc_t)count, momentum, running_mean, running_var, save_mean,
                     save_rstd);
  } else {
    mean = running_mean[ch];
    rstd = ops_bn_eval_rstd(running_var[ch], eps);
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
  __shared__ ops_acc_t sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  ops_acc_t s = bn_sum(ch, hw, plane, count, x, sh);
  if (threadIdx.x == 0) {
    p1[ch] = s;
    if (ch == 0) p1[c] = (double)count;
  }
}

__global__ void bn_sync_centred_kernel(int n, int c, int hw, const float *__restrict__ x,
                                       const double *__restrict__ p1, double *__restrict__ p2) {
  __shared__ ops_acc_t sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  ops_acc_t s1, s2;
  bn_shifted_sums(ch, hw, plane, count, x, p1[ch] / p1[c], sh, &s1, &s2);
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
  ops_acc_t total = p1[c];
  struct ops_bn_stats st = ops_bn_stats(p1[ch] / total, p2[ch], p2[c + ch], total, eps);
  if (threadIdx.x == 0)
    bn_store_stats(ch, st, total, momentum, running_mean, running_var, save_mean, save_rstd);
  bn_apply(ch, hw, plane, count, x, st.mean, st.rstd, gamma, beta, y);
}

__global__ void batchnorm_bwd_kernel(int n, int c, int hw, const float *__restrict__ dy,
                                     const float *__restrict__ x, const float *__restrict__ gamma,
                                     const float *__restrict__ save_mean,
                                     const float *__restrict__ save_rstd, float *__restrict__ dx,
                                     float *__restrict__ dgamma, float *__restrict__ dbeta) {
  __shared__ ops_acc_t sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  ops_acc_t sum_dy, sum_dyx;
  bn_grad_sums(ch, hw, plane, count, dy, x, save_mean[ch], sh, &sum_dy, &sum_dyx);
  ops_acc_t sum_dy_xhat = sum_dyx * save_rstd[ch];
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[ch] += (float)sum_dy_xhat;
    if (dbeta) dbeta[ch] += (float)sum_dy;
  }
  if (!dx) return;
  bn_dx(ch, hw, plane, count, dy, x, save_mean[ch],
        ops_bn_dx(gamma[ch], save_rstd[ch], sum_dy, sum_dy_xhat, (ops_acc_t)count), dx);
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
  __shared__ ops_acc_t sh[33];
  int ch = blockIdx.x;
  size_t plane = (size_t)c * hw, count = (size_t)n * hw;
  ops_acc_t s1, s2;
  bn_grad_sums(ch, hw, plane, count, dy, x, save_mean[ch], sh, &s1, &s2);
  s2 *= save_rstd[ch];
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
  bn_dx(ch, hw, plane, count, dy, x, save_mean[ch],
        ops_bn_dx(gamma[ch], save_rstd[ch], sums[ch], sums[c + ch], sums[2 * c]), dx);
}

static void bn_fwd_sync(const struct ops_ctx *ctx, int n, int c, int hw, const float *x,
                        const float *gamma, const float *beta, float *running_mean,
                        float *running_var, float momentum, float eps, float *y, float *save_mean,
                        float *save_rstd) {
  double *p1 = (double *)ctx->scratch, *p2 = p1 + c + 1;
  LAUNCH(bn_sync_sum_kernel, c, BN_THREADS, 0, cuda_stream(ctx))(n, c, hw, x, p1);
  LAUNCH_CHECK("bn_sync_sum_kernel");
  ctx->reduce_sum(ctx->reduce_user, p1, c + 1);
  LAUNCH(bn_sync_centred_kernel, c, BN_THREADS, 0, cuda_stream(ctx))(n, c, hw, x, p1, p2);
  LAUNCH_CHECK("bn_sync_centred_kernel");
  ctx->reduce_sum(ctx->reduce_user, p2, 2 * c);
  LAUNCH(bn_sync_apply_kernel, c, BN_THREADS, 0, cuda_stream(ctx))
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
    LAUNCH(bn_count_kernel, 1, 32, 0, cuda_stream(ctx))(num_batches);
    LAUNCH_CHECK("bn_count_kernel");
  }
  if (c <= 0) return;
  if (training && ctx->reduce_sum) {
    bn_fwd_sync(ctx, n, c, hw, x, gamma, beta, running_mean, running_var, momentum, eps, y,
                save_mean, save_rstd);
    return;
  }
  LAUNCH(batchnorm_fwd_kernel, c, BN_THREADS, 0, cuda_stream(ctx))
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
    LAUNCH(batchnorm_bwd_kernel, c, BN_THREADS, 0, cuda_stream(ctx))
    (n, c, hw, dy, x, gamma, save_mean, save_rstd, dx, dgamma, dbeta);
    LAUNCH_CHECK("batchnorm_bwd_kernel");
    return;
  }
  double *sums = (double *)ctx->scratch;
  LAUNCH(bn_sync_bwd_sum_kernel, c, BN_THREADS, 0, cuda_stream(ctx))
  (n, c, hw, dy, x, save_mean, save_rstd, dgamma, dbeta, sums);
  LAUNCH_CHECK("bn_sync_bwd_sum_kernel");
  if (!dx) return;
  ctx->reduce_sum(ctx->reduce_user, sums, 2 * c + 1);
  LAUNCH(bn_sync_dx_kernel, c, BN_THREADS, 0, cuda_stream(ctx))
  (n, c, hw, dy, x, gamma, save_mean, save_rstd, sums, dx);
  LAUNCH_CHECK("bn_sync_dx_kernel");
}
