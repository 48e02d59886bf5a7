/* embedding.c — table lookup (torch.nn.Embedding) and the sinusoidal
 * positional encoding added to a (b, t, d) sequence.
 *
 * Indices are trusted to lie in [0, vocab): the data layer validates token
 * ids when it builds a batch, so the kernel does not check them. */
#include <stddef.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* Columns per thread task in the backward: every task walks all n indices in
 * order over its own columns, so the sums are race-free and bitwise the same
 * for any thread count. */
enum { EMB_COL_BLOCK = 32 };

void cpu_embedding_fwd(const struct ops_ctx *ctx, int n, int d, const int32_t *idx,
                       const float *table, float *y) {
  /* idx (n); table (vocab, d); y (n, d) */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int i = 0; i < n; i++)
    memcpy(y + (size_t)i * d, table + (size_t)idx[i] * d, (size_t)d * sizeof *y);
}

void cpu_embedding_bwd(const struct ops_ctx *ctx, int n, int d, const int32_t *idx, const float *dy,
                       float *dtable) {
  /* idx (n); dy (n, d); dtable (vocab, d) += rows of dy, repeated ids summed
   * in index order */
  const int blocks = (d + EMB_COL_BLOCK - 1) / EMB_COL_BLOCK;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int blk = 0; blk < blocks; blk++) {
    const int j0 = blk * EMB_COL_BLOCK;
    const int j1 = d - j0 < EMB_COL_BLOCK ? d : j0 + EMB_COL_BLOCK;
    for (int i = 0; i < n; i++) {
      const float *src = dy + (size_t)i * d;
      float *dst = dtable + (size_t)idx[i] * d;
      for (int j = j0; j < j1; j++)
        dst[j] += src[j];
    }
  }
}

void cpu_posenc_fwd(const struct ops_ctx *ctx, int b, int t, int d, const float *x, float *y) {
  /* x, y (b, t, d), y may be x; P (t, d) computed once per position and
   * reused across the batch */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int i = 0; i < t; i++) {
    for (int j = 0; j < d; j++) {
      const float pe = ops_posenc(i, j, d);
      for (int n = 0; n < b; n++) {
        const size_t at = ((size_t)n * t + i) * d + j;
        y[at] = x[at] + pe;
      }
    }
  }
}
