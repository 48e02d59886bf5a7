/* layernorm.c — torch.nn.LayerNorm over the last axis: biased variance, eps
 * inside the square root, affine gamma/beta. */
#include <math.h>
#include <stddef.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* Columns per block when summing dgamma/dbeta down the rows: one cache line
 * of each row, with accumulators that fit in registers. */
enum { LN_COL_BLOCK = 16 };

void cpu_layernorm_fwd(const struct ops_ctx *ctx, int rows, int d, const float *x,
                       const float *gamma, const float *beta, float eps, float *y, float *mean,
                       float *rstd) {
  /* x, y (rows, d); gamma, beta (d); mean, rstd (rows) */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * d;
    float *yr = y + (size_t)r * d;
    const ops_acc_t mu = ops_row_sum(xr, d, 0, 1) / d;
    const ops_acc_t rs = ops_ln_rstd(ops_centred_sq_sum(xr, d, 0, 1, mu), d, eps);
    ops_ln_apply(xr, gamma, beta, yr, d, 0, 1, mu, rs);
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
      ops_acc_t sg, sgx;
      ops_ln_dx_sums(dyr, xr, gamma, d, 0, 1, mean[r], rstd[r], &sg, &sgx);
      ops_ln_dx_apply(dyr, xr, gamma, dxr, d, 0, 1, mean[r], rstd[r], sg, sgx);
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
    ops_acc_t sg[LN_COL_BLOCK] = {0}, sb[LN_COL_BLOCK] = {0};
    for (int r = 0; r < rows; r++) {
      const float *xr = x + (size_t)r * d + j0, *dyr = dy + (size_t)r * d + j0;
      const float mu = mean[r], rs = rstd[r];
      for (int j = 0; j < nj; j++) {
        sg[j] += dyr[j] * ops_ln_xhat(xr[j], mu, rs);
        sb[j] += dyr[j];
      }
    }
    for (int j = 0; j < nj; j++) {
      if (dgamma) dgamma[j0 + j] += (float)sg[j];
      if (dbeta) dbeta[j0 + j] += (float)sb[j];
    }
  }
}
