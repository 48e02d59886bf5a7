/* layernorm.c — torch.nn.LayerNorm over the last axis: biased variance, eps
 * inside the square root, affine gamma/beta. */
#include <math.h>
#include <stddef.h>

#include "kernels/cpu/cpu_ops.h"

/* Columns per block when summing dgamma/dbeta down the rows: one cache line
 * of each row, with double accumulators that fit in registers. */
enum { LN_COL_BLOCK = 16 };

void cpu_layernorm_fwd(const struct ops_ctx *ctx, int rows, int d, const float *x,
                       const float *gamma, const float *beta, float eps, float *y, float *mean,
                       float *rstd) {
  /* x, y (rows, d); gamma, beta (d); mean, rstd (rows) */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * d;
    float *yr = y + (size_t)r * d;
    /* Two passes in double: a large mean next to a small spread would
     * otherwise cancel catastrophically in E[x^2] - E[x]^2. */
    double s = 0;
    for (int j = 0; j < d; j++)
      s += xr[j];
    double mu = s / d;
    double ss = 0;
    for (int j = 0; j < d; j++) {
      double c = xr[j] - mu;
      ss += c * c;
    }
    double rs = 1.0 / sqrt(ss / d + (double)eps);
    for (int j = 0; j < d; j++)
      yr[j] = (float)((xr[j] - mu) * rs) * gamma[j] + beta[j];
    mean[r] = (float)mu;
    rstd[r] = (float)rs;
  }
}

void cpu_layernorm_bwd(const struct ops_ctx *ctx, int rows, int d, const float *dy, const float *x,
                       const float *gamma, const float *mean, const float *rstd, float *dx,
                       float *dgamma, float *dbeta) {
  /* dy, x, dx (rows, d); gamma, dgamma, dbeta (d); mean, rstd (rows).
   * Like torch, xhat is rebuilt from the saved float statistics. */
  if (dx) {
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
    for (int r = 0; r < rows; r++) {
      const float *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
      float *dxr = dx + (size_t)r * d;
      const float mu = mean[r], rs = rstd[r];
      /* dx = rstd (g - mean(g) - xhat mean(g xhat)), g = gamma dy */
      double sg = 0, sgx = 0;
      for (int j = 0; j < d; j++) {
        float g = gamma[j] * dyr[j];
        sg += g;
        sgx += g * ((xr[j] - mu) * rs);
      }
      const float mg = (float)(sg / d), mgx = (float)(sgx / d);
      for (int j = 0; j < d; j++) {
        float xhat = (xr[j] - mu) * rs;
        dxr[j] += rs * (gamma[j] * dyr[j] - mg - xhat * mgx);
      }
    }
  }
  if (!dgamma && !dbeta) return;
  /* Each thread owns whole column blocks, so the sums down the rows need no
   * reduction across threads and do not depend on the thread count. */
  const int blocks = (d + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int blk = 0; blk < blocks; blk++) {
    const int j0 = blk * LN_COL_BLOCK;
    const int nj = d - j0 < LN_COL_BLOCK ? d - j0 : LN_COL_BLOCK;
    double sg[LN_COL_BLOCK] = {0}, sb[LN_COL_BLOCK] = {0};
    for (int r = 0; r < rows; r++) {
      const float *xr = x + (size_t)r * d + j0, *dyr = dy + (size_t)r * d + j0;
      const float mu = mean[r], rs = rstd[r];
      for (int j = 0; j < nj; j++) {
        sg[j] += dyr[j] * ((xr[j] - mu) * rs);
        sb[j] += dyr[j];
      }
    }
    for (int j = 0; j < nj; j++) {
      if (dgamma) dgamma[j0 + j] += (float)sg[j];
      if (dbeta) dbeta[j0 + j] += (float)sb[j];
    }
  }
}
