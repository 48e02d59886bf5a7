/* batchnorm.c — BatchNorm2d over x (n, c, hw), torch.nn.BatchNorm2d
 * semantics. Channels are independent, so threads split channels and every
 * per-channel reduction runs in one thread, in ops_acc_t, in a fixed order.
 * With ctx->reduce_sum set (sync BN), the per-channel sums are added over
 * every replica's batch as torch.nn.SyncBatchNorm does. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* Reductions run in LANES independent accumulators: one serial chain
 * would be latency-bound (compilers may not reorder float sums), lanes
 * vectorise and are still summed in a fixed order. */
#define LANES 8

/* s1 += sum (x - shift), s2 += sum (x - shift)^2 over x (len). */
static void shifted_sums(const float *x, int len, ops_acc_t shift, ops_acc_t *s1, ops_acc_t *s2) {
  ops_acc_t a1[LANES] = {0}, a2[LANES] = {0};
  int j = 0;
  for (; j + LANES <= len; j += LANES)
    for (int l = 0; l < LANES; l++) {
      ops_acc_t d = x[j + l] - shift;
      a1[l] += d;
      a2[l] += d * d;
    }
  for (; j < len; j++) {
    ops_acc_t d = x[j] - shift;
    a1[0] += d;
    a2[0] += d * d;
  }
  for (int l = 0; l < LANES; l++) {
    *s1 += a1[l];
    *s2 += a2[l];
  }
}

/* s1 += sum dy, s2 += sum dy (x - mean) over (len). */
static void grad_sums(const float *dy, const float *x, int len, ops_acc_t mean, ops_acc_t *s1,
                      ops_acc_t *s2) {
  ops_acc_t a1[LANES] = {0}, a2[LANES] = {0};
  int j = 0;
  for (; j + LANES <= len; j += LANES)
    for (int l = 0; l < LANES; l++) {
      a1[l] += dy[j + l];
      a2[l] += dy[j + l] * (x[j + l] - mean);
    }
  for (; j < len; j++) {
    a1[0] += dy[j];
    a2[0] += dy[j] * (x[j] - mean);
  }
  for (int l = 0; l < LANES; l++) {
    *s1 += a1[l];
    *s2 += a2[l];
  }
}

static void bn_apply(int n, int c, int hw, int ch, const float *x, ops_acc_t mean, ops_acc_t rstd,
                     const float *gamma, const float *beta, float *y) {
  size_t plane = (size_t)c * hw;
  const struct ops_bn_affine f = ops_bn_affine(gamma[ch], beta[ch], mean, rstd);
  for (int i = 0; i < n; i++) {
    const float *xr = x + i * plane + (size_t)ch * hw;
    float *yr = y + i * plane + (size_t)ch * hw;
    for (int j = 0; j < hw; j++)
      yr[j] = xr[j] * f.a + f.b;
  }
}

/* Sync BN forward in two reduced passes: replicas cannot agree on a shift
 * before they know the mean, so the mean comes first and the squares are
 * then centred on it (no cancellation). `sums` holds 2c + 1 doubles (the
 * type ctx->reduce_sum takes). */
static void bn_fwd_sync(const struct ops_ctx *ctx, int n, int c, int hw, const float *x,
                        float *running_mean, float *running_var, float momentum, float eps,
                        double *means, double *rstds, double *sums) {
  size_t plane = (size_t)c * hw;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int ch = 0; ch < c; ch++) {
    ops_acc_t s1 = 0.0, s2 = 0.0;
    for (int i = 0; i < n; i++)
      shifted_sums(x + i * plane + (size_t)ch * hw, hw, 0.0, &s1, &s2);
    sums[ch] = s1;
  }
  sums[c] = (double)n * hw;
  ctx->reduce_sum(ctx->reduce_user, sums, c + 1);
  ops_acc_t count = sums[c];
  for (int ch = 0; ch < c; ch++)
    means[ch] = sums[ch] / count;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int ch = 0; ch < c; ch++) {
    ops_acc_t s1 = 0.0, s2 = 0.0;
    for (int i = 0; i < n; i++)
      shifted_sums(x + i * plane + (size_t)ch * hw, hw, means[ch], &s1, &s2);
    sums[ch] = s1;
    sums[c + ch] = s2;
  }
  ctx->reduce_sum(ctx->reduce_user, sums, 2 * c);
  for (int ch = 0; ch < c; ch++) {
    struct ops_bn_stats st = ops_bn_stats(means[ch], sums[ch], sums[c + ch], count, eps);
    means[ch] = st.mean;
    rstds[ch] = st.rstd;
    ops_bn_running(running_mean + ch, running_var + ch, momentum, st.mean, st.var, count);
  }
}

void cpu_batchnorm2d_fwd(const struct ops_ctx *ctx, int n, int c, int hw, const float *x,
                         const float *gamma, const float *beta, float *running_mean,
                         float *running_var, int64_t *num_batches, float momentum, float eps,
                         int training, float *y, float *save_mean, float *save_rstd) {
  size_t plane = (size_t)c * hw; /* one image, (c, hw) */
  ops_acc_t count = (ops_acc_t)n * hw;
  if (training && num_batches) ++*num_batches;
  if (training && ctx->reduce_sum) {
    /* ctx->scratch holds 4c + 1 doubles, planned by the graph. */
    double *means = (double *)ctx->scratch, *rstds = means + c;
    bn_fwd_sync(ctx, n, c, hw, x, running_mean, running_var, momentum, eps, means, rstds,
                rstds + c);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int ch = 0; ch < c; ch++) {
      save_mean[ch] = (float)means[ch];
      save_rstd[ch] = (float)rstds[ch];
      bn_apply(n, c, hw, ch, x, means[ch], rstds[ch], gamma, beta, y);
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int ch = 0; ch < c; ch++) {
    ops_acc_t mean, rstd;
    if (training) {
      /* Sums shifted by the channel's first element: a single pass without
       * the cancellation of sum(x^2) - sum(x)^2 when |mean| >> std. */
      ops_acc_t shift = x[(size_t)ch * hw], s1 = 0.0, s2 = 0.0;
      for (int i = 0; i < n; i++)
        shifted_sums(x + i * plane + (size_t)ch * hw, hw, shift, &s1, &s2);
      struct ops_bn_stats st = ops_bn_stats(shift, s1, s2, count, eps);
      mean = st.mean;
      rstd = st.rstd;
      ops_bn_running(running_mean + ch, running_var + ch, momentum, st.mean, st.var, count);
      save_mean[ch] = (float)mean;
      save_rstd[ch] = (float)rstd;
    } else {
      mean = running_mean[ch];
      rstd = ops_bn_eval_rstd(running_var[ch], eps);
    }
    bn_apply(n, c, hw, ch, x, mean, rstd, gamma, beta, y);
  }
}

/* dx += dy k + (x - mean) q + r over one channel (ops_bn_dx). */
static void bn_dx(int n, int c, int hw, int ch, const float *dy, const float *x, float gamma,
                  float mean, float rstd, ops_acc_t sum_dy, ops_acc_t sum_dy_xhat, ops_acc_t count,
                  float *dx) {
  size_t plane = (size_t)c * hw;
  const struct ops_bn_dx f = ops_bn_dx(gamma, rstd, sum_dy, sum_dy_xhat, count);
  for (int i = 0; i < n; i++) {
    const float *xr = x + i * plane + (size_t)ch * hw;
    const float *dyr = dy + i * plane + (size_t)ch * hw;
    float *dxr = dx + i * plane + (size_t)ch * hw;
    for (int j = 0; j < hw; j++)
      dxr[j] += ops_bn_dx_elem(f, dyr[j], xr[j], mean);
  }
}

/* Sync BN backward: dgamma and dbeta take this replica's sums (the gradient
 * all-reduce averages them later, as for any parameter), dx the sums over
 * every replica. ctx->scratch holds 2c + 1 doubles. */
static void bn_bwd_sync(const struct ops_ctx *ctx, int n, int c, int hw, const float *dy,
                        const float *x, const float *gamma, const float *save_mean,
                        const float *save_rstd, float *dx, float *dgamma, float *dbeta) {
  size_t plane = (size_t)c * hw;
  double *sums = (double *)ctx->scratch; /* sum dy (c), sum dy xhat (c), count */
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int ch = 0; ch < c; ch++) {
    ops_acc_t sum_dy = 0.0, sum_dyx = 0.0;
    for (int i = 0; i < n; i++)
      grad_sums(dy + i * plane + (size_t)ch * hw, x + i * plane + (size_t)ch * hw, hw,
                save_mean[ch], &sum_dy, &sum_dyx);
    sums[ch] = sum_dy;
    sums[c + ch] = sum_dyx * save_rstd[ch];
    if (dgamma) dgamma[ch] += (float)sums[c + ch];
    if (dbeta) dbeta[ch] += (float)sum_dy;
  }
  if (!dx) return;
  sums[2 * c] = (double)n * hw;
  ctx->reduce_sum(ctx->reduce_user, sums, 2 * c + 1);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int ch = 0; ch < c; ch++)
    bn_dx(n, c, hw, ch, dy, x, gamma[ch], save_mean[ch], save_rstd[ch], sums[ch], sums[c + ch],
          sums[2 * c], dx);
}

void cpu_batchnorm2d_bwd(const struct ops_ctx *ctx, int n, int c, int hw, const float *dy,
                         const float *x, const float *gamma, const float *save_mean,
                         const float *save_rstd, float *dx, float *dgamma, float *dbeta) {
  if (ctx->reduce_sum) {
    bn_bwd_sync(ctx, n, c, hw, dy, x, gamma, save_mean, save_rstd, dx, dgamma, dbeta);
    return;
  }
  size_t plane = (size_t)c * hw;
  ops_acc_t count = (ops_acc_t)n * hw;
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int ch = 0; ch < c; ch++) {
    /* sum_dy = sum dy, sum_dy_xhat = sum dy * (x - mean) * rstd */
    ops_acc_t sum_dy = 0.0, sum_dyx = 0.0;
    for (int i = 0; i < n; i++)
      grad_sums(dy + i * plane + (size_t)ch * hw, x + i * plane + (size_t)ch * hw, hw,
                save_mean[ch], &sum_dy, &sum_dyx);
    ops_acc_t sum_dy_xhat = sum_dyx * save_rstd[ch];
    if (dgamma) dgamma[ch] += (float)sum_dy_xhat;
    if (dbeta) dbeta[ch] += (float)sum_dy;
    if (dx)
      bn_dx(n, c, hw, ch, dy, x, gamma[ch], save_mean[ch], save_rstd[ch], sum_dy, sum_dy_xhat,
            count, dx);
  }
}
