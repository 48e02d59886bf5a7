/* loss.c — torch.nn.functional.cross_entropy(logits, labels,
 * ignore_index=..., label_smoothing=eps, reduction='mean').
 *
 * Per counted row, with log p = log_softmax(z):
 *   loss_r = (1 - eps) (-log p_y) + eps mean_c(-log p_c)
 * and the result is sum_r loss_r / count, or / divisor when divisor > 0 (the
 * captioning loss divides by N*T whatever the number of real tokens).
 *
 * A row counts when its label is not ignore_index. A label outside
 * [0, classes) that is not ignore_index is a bug upstream (the data layer
 * validates labels); such a row is treated as ignored rather than read out of
 * bounds. With no counted row and no divisor the loss is 0/0 = NaN, as in
 * torch, and the backward adds nothing. */
#include <stddef.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

/* The forward sums row losses in at most this many fixed row blocks, then
 * adds the block sums in order: the result does not depend on the thread
 * count or on OpenMP's reduction order. */
enum { CE_BLOCKS = 64 };

static int counted(int32_t label, int classes, int ignore_index) {
  return label != ignore_index && label >= 0 && label < classes;
}

void cpu_cross_entropy_fwd(const struct ops_ctx *ctx, int n, int classes, const float *logits,
                           const int32_t *labels, int ignore_index, float smoothing, float divisor,
                           float *probs, float *loss, int32_t *count) {
  /* logits, probs (n, classes); labels (n) */
  const int blocks = n < CE_BLOCKS ? n : CE_BLOCKS;
  ops_acc_t block_loss[CE_BLOCKS] = {0};
  int block_count[CE_BLOCKS] = {0};
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int blk = 0; blk < blocks; blk++) {
    const int r0 = (int)((long)n * blk / blocks), r1 = (int)((long)n * (blk + 1) / blocks);
    for (int r = r0; r < r1; r++) {
      const float *z = logits + (size_t)r * classes;
      float *pr = probs + (size_t)r * classes;
      const float mx = ops_row_max(z, classes, 0, 1);
      const ops_acc_t lse = ops_lse(mx, ops_lse_expsum(z, classes, 0, 1, mx));
      const ops_acc_t nll_sum = ops_ce_probs(z, pr, classes, 0, 1, lse);
      if (!counted(labels[r], classes, ignore_index)) continue;
      block_loss[blk] += ops_ce_row_loss(lse, z[labels[r]], nll_sum, smoothing, classes);
      block_count[blk]++;
    }
  }
  ops_acc_t total = 0;
  int cnt = 0;
  for (int blk = 0; blk < blocks; blk++) {
    total += block_loss[blk];
    cnt += block_count[blk];
  }
  const ops_acc_t denom = divisor > 0.0f ? (ops_acc_t)divisor : (ops_acc_t)cnt;
  *loss = (float)(total / denom);
  *count = cnt;
}

void cpu_cross_entropy_bwd(const struct ops_ctx *ctx, int n, int classes, const float *probs,
                           const int32_t *labels, int ignore_index, float smoothing, float divisor,
                           const int32_t *count, const float *dloss, float *dlogits) {
  /* probs, dlogits (n, classes); labels (n).
   * dlogits += dloss (probs - target) / denom, target = (1-eps) onehot + eps/C */
  const double denom = divisor > 0.0f ? (double)divisor : (double)*count;
  if (denom <= 0) return; /* no counted row: nothing to add */
  const float g = (float)((dloss ? *dloss : 1.0f) / denom);
  const float uniform = smoothing / (float)classes, hit = 1.0f - smoothing;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < n; r++) {
    if (!counted(labels[r], classes, ignore_index)) continue;
    const float *pr = probs + (size_t)r * classes;
    float *dr = dlogits + (size_t)r * classes;
    for (int c = 0; c < classes; c++) {
      const float target = (c == labels[r] ? hit : 0.0f) + uniform;
      dr[c] += g * (pr[c] - target);
    }
  }
}

void cpu_score(const struct ops_ctx *ctx, int n, int classes, const float *logits,
               const int32_t *labels, int ignore_index, const float *loss, float weight,
               double *acc) {
  /* logits (n, classes); labels (n); acc[3] += {weight loss, correct, counted} */
  long correct = 0, seen = 0;
#pragma omp parallel for reduction(+ : correct, seen) num_threads(ctx->threads) schedule(static)
  for (int r = 0; r < n; r++) {
    if (!counted(labels[r], classes, ignore_index)) continue;
    const float *z = logits + (size_t)r * classes;
    int best = 0;
    for (int c = 1; c < classes; c++)
      if (z[c] > z[best]) best = c;
    correct += best == labels[r];
    seen++;
  }
  acc[0] += (double)weight * *loss;
  acc[1] += (double)correct;
  acc[2] += (double)seen;
}
