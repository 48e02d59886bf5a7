/* matmul.c — GEMM, batched GEMM and the linear layer on OpenBLAS.
 *
 * OpenBLAS runs single-threaded (the graph sets it); these kernels split the
 * work across ctx->threads OpenMP threads themselves, each calling sgemm on a
 * disjoint block of C, so no two threads ever write the same element and the
 * result does not depend on the thread count. */
#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* Below this many multiply-adds a GEMM runs on one thread: the fork/join
 * costs more than it saves. */
#define PAR_MIN_MACS (1L << 17)

static inline int imin(int a, int b) { return a < b ? a : b; }

/* One sgemm on one thread, row-major. */
static void sgemm1(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                   const float *b, int ldb, float beta, float *c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cpu_matmul(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  if (m <= 0 || n <= 0) return;
  int threads = ctx->threads;
  if (threads <= 1 || (long)m * n * k < PAR_MIN_MACS || (m < 2 && n < 2)) {
    sgemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  /* Split the longer side of C so each block stays GEMM-shaped. Blocks of
   * rows take rows of op(A) (columns of A when transposed); blocks of columns
   * take columns of op(B) (rows of B when transposed). */
  int by_rows = m >= n;
  int len = by_rows ? m : n;
  int parts = imin(threads, len);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int p = 0; p < parts; p++) {
    int lo = (int)((long)len * p / parts), hi = (int)((long)len * (p + 1) / parts);
    if (by_rows) {
      const float *ap = ta ? a + lo : a + (long)lo * lda;
      sgemm1(ta, tb, hi - lo, n, k, alpha, ap, lda, b, ldb, beta, c + (long)lo * ldc, ldc);
    } else {
      const float *bp = tb ? b + (long)lo * ldb : b + lo;
      sgemm1(ta, tb, m, hi - lo, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc);
    }
  }
}

void cpu_matmul_batched(const struct ops_ctx *ctx, int ta, int tb, int m, int n, int k, float alpha,
                        const float *a, int lda, long stride_a, const float *b, int ldb,
                        long stride_b, float beta, float *c, int ldc, long stride_c, int batch) {
  /* Too few matrices to keep every thread busy: split inside each one. */
  if (batch < ctx->threads || (long)batch * m * n * k < PAR_MIN_MACS) {
    for (int i = 0; i < batch; i++)
      cpu_matmul(ctx, ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
                 c + i * stride_c, ldc);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
  for (int i = 0; i < batch; i++)
    sgemm1(ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
           c + i * stride_c, ldc);
}

void cpu_linear_fwd(const struct ops_ctx *ctx, int m, int k, int n, const float *x, const float *w,
                    const float *bias, float *y) {
  /* y (m, n) = x (m, k) w (n, k)^T [+ bias]: seed y with the bias and let the
   * GEMM accumulate onto it (beta = 1), one pass over y instead of two. */
  float beta = 0.0f;
  if (bias) {
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((long)m * n > 65536)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++)
        y[(long)i * n + j] = bias[j];
    beta = 1.0f;
  }
  cpu_matmul(ctx, 0, 1, m, n, k, 1.0f, x, k, w, k, beta, y, n);
}

/* Columns per dbias block: a block's double accumulators live on the stack. */
#define DBIAS_BLOCK 64

void cpu_linear_bwd(const struct ops_ctx *ctx, int m, int k, int n, const float *dy, const float *x,
                    const float *w, float *dx, float *dw, float *dbias) {
  /* dx (m, k) += dy (m, n) w (n, k) */
  if (dx) cpu_matmul(ctx, 0, 0, m, k, n, 1.0f, dy, n, w, k, 1.0f, dx, k);
  /* dw (n, k) += dy^T (n, m) x (m, k): cpu_matmul splits the n output rows,
   * so each thread owns whole rows of dw and reduces over all of m itself. */
  if (dw) cpu_matmul(ctx, 1, 0, n, k, m, 1.0f, dy, n, x, k, 1.0f, dw, k);
  if (dbias) {
    /* Column sums of dy (m, n), parallel over column blocks so each thread
     * owns its outputs; rows are walked in order for contiguous loads. */
    int blocks = (n + DBIAS_BLOCK - 1) / DBIAS_BLOCK;
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if ((long)m * n > 65536)
    for (int bi = 0; bi < blocks; bi++) {
      int j0 = bi * DBIAS_BLOCK, nj = imin(DBIAS_BLOCK, n - j0);
      double acc[DBIAS_BLOCK] = {0};
      for (int i = 0; i < m; i++) {
        const float *row = dy + (long)i * n + j0;
        for (int j = 0; j < nj; j++)
          acc[j] += row[j];
      }
      for (int j = 0; j < nj; j++)
        dbias[j0 + j] += (float)acc[j];
    }
  }
}

void cpu_linear_act_fwd(const struct ops_ctx *ctx, enum act_kind kind, int m, int k, int n,
                        const float *x, const float *w, const float *bias, float *h, float *y) {
  /* h (m, n) = x w^T + bias, y = act(h): on the CPU the bias already rides
   * in the GEMM, so "fused" is the two passes back to back. */
  cpu_linear_fwd(ctx, m, k, n, x, w, bias, h);
  cpu_act_fwd(ctx, kind, (size_t)m * n, h, y);
}

void cpu_linear_act_bwd(const struct ops_ctx *ctx, enum act_kind kind, int m, int k, int n,
                        const float *dy, const float *x, const float *w, const float *h, float *dh,
                        float *dx, float *dw, float *dbias) {
  /* dh (m, n) = dy * act'(h), then the linear layer's backward on dh */
  const size_t total = (size_t)m * n;
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if (total > 65536)
  for (size_t i = 0; i < total; i++)
    dh[i] = ops_act_grad(kind, h[i], dy[i]);
  cpu_linear_bwd(ctx, m, k, n, dh, x, w, dx, dw, dbias);
}
