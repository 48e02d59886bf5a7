/* loss.cu — cross-entropy fused with its softmax, torch semantics (see
 * kernels/cpu/loss.c): one warp per row computes the max, the log-sum-exp,
 * the probabilities and the row's loss (ops_shared.h's row maths, in
 * ops_acc_t) in three passes over the logits; each of
 * CUDA_PARTIALS blocks sums its rows' losses and counts, and one block adds
 * the block sums in order (deterministic). The backward is one elementwise
 * pass: dlogits += dloss (probs - target) / denom. */
#include "kernels/cuda/common.cuh"

#define CE_WARPS 8

static __device__ __forceinline__ int ce_counted(int32_t label, int classes, int ignore_index) {
  return label != ignore_index && label >= 0 && label < classes;
}

__global__ void ce_fwd_kernel(int n, int classes, const float *__restrict__ logits,
                              const int32_t *__restrict__ labels, int ignore_index, float smoothing,
                              float *__restrict__ probs, double *__restrict__ part,
                              int *__restrict__ part_count) {
  __shared__ ops_acc_t sh[33];
  __shared__ float shc[33];
  int lane = threadIdx.x % 32;
  ops_acc_t acc = 0;
  int cnt = 0;
  for (int r = blockIdx.x * CE_WARPS + threadIdx.x / 32; r < n; r += gridDim.x * CE_WARPS) {
    const float *z = logits + (size_t)r * classes;
    float *pr = probs + (size_t)r * classes;
    const float mx = warp_max(ops_row_max(z, classes, lane, 32));
    const ops_acc_t lse = ops_lse(mx, warp_sum(ops_lse_expsum(z, classes, lane, 32, mx)));
    const ops_acc_t nll_sum = warp_sum(ops_ce_probs(z, pr, classes, lane, 32, lse));
    int32_t y = labels[r];
    if (lane == 0 && ce_counted(y, classes, ignore_index)) {
      acc += ops_ce_row_loss(lse, z[y], nll_sum, smoothing, classes);
      cnt++;
    }
  }
  acc = block_sum(acc, sh);             /* only lane 0 of each warp holds row sums */
  float c = block_sum((float)cnt, shc); /* exact: counts stay far below 2^24 */
  if (threadIdx.x == 0) {
    part[blockIdx.x] = acc;
    part_count[blockIdx.x] = (int)c;
  }
}

__global__ void ce_total_kernel(int parts, float divisor, const double *__restrict__ part,
                                const int *__restrict__ part_count, float *__restrict__ loss,
                                int *__restrict__ count) {
  if (threadIdx.x != 0) return;
  ops_acc_t total = 0;
  int cnt = 0;
  for (int i = 0; i < parts; i++) {
    total += part[i];
    cnt += part_count[i];
  }
  ops_acc_t denom = divisor > 0.0f ? (ops_acc_t)divisor : (ops_acc_t)cnt;
  *loss = (float)(total / denom); /* no counted row, no divisor: 0/0 = NaN, as torch */
  *count = cnt;
}

extern "C" void cuda_cross_entropy_fwd(const struct ops_ctx *ctx, int n, int classes,
                                       const float *logits, const int32_t *labels, int ignore_index,
                                       float smoothing, float divisor, float *probs, float *loss,
                                       int32_t *count) {
  const struct cuda_state *st = cuda_state_of(ctx);
  unsigned blocks = div_up(n > 0 ? n : 1, CE_WARPS);
  if (blocks > CUDA_PARTIALS) blocks = CUDA_PARTIALS;
  LAUNCH(ce_fwd_kernel, blocks, CE_WARPS * 32, 0, cuda_stream(ctx))
  (n, classes, logits, labels, ignore_index, smoothing, probs, st->partials, st->counts);
  LAUNCH_CHECK("ce_fwd_kernel");
  LAUNCH(ce_total_kernel, 1, 32, 0, cuda_stream(ctx))
  ((int)blocks, divisor, st->partials, st->counts, loss, count);
  LAUNCH_CHECK("ce_total_kernel");
}

__global__ void ce_bwd_kernel(int n, int classes, const float *__restrict__ probs,
                              const int32_t *__restrict__ labels, int ignore_index, float divisor,
                              const int32_t *__restrict__ count, const float *__restrict__ dloss,
                              float uniform, float hit, float *__restrict__ dlogits) {
  double denom = divisor > 0.0f ? (double)divisor : (double)*count;
  if (denom <= 0) return; /* no counted row: nothing to add */
  float g = (float)((dloss ? *dloss : 1.0f) / denom);
  GRID_STRIDE(e, (size_t)n * classes) {
    int r = (int)(e / classes), c = (int)(e % classes);
    int32_t y = labels[r];
    if (ce_counted(y, classes, ignore_index)) {
      float target = (c == y ? hit : 0.0f) + uniform;
      dlogits[e] += g * (probs[e] - target);
    }
  }
}

extern "C" void cuda_cross_entropy_bwd(const struct ops_ctx *ctx, int n, int classes,
                                       const float *probs, const int32_t *labels, int ignore_index,
                                       float smoothing, float divisor, const int32_t *count,
                                       const float *dloss, float *dlogits) {
  size_t total = (size_t)n * classes;
  if (!total) return;
  LAUNCH(ce_bwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (n, classes, probs, labels, ignore_index, divisor, count, dloss, smoothing / (float)classes,
   1.0f - smoothing, dlogits);
  LAUNCH_CHECK("ce_bwd_kernel");
}

/* The training score: one warp per row finds the first maximal logit (ties
 * to the lower index, as the CPU's scan); each block counts its rows, one
 * thread adds the block counts in order (exact: integers). */
__global__ void score_kernel(int n, int classes, const float *__restrict__ logits,
                             const int32_t *__restrict__ labels, int ignore_index,
                             int *__restrict__ part_correct, int *__restrict__ part_seen) {
  __shared__ float shc[33], shs[33];
  int lane = threadIdx.x % 32, correct = 0, seen = 0;
  for (int r = blockIdx.x * CE_WARPS + threadIdx.x / 32; r < n; r += gridDim.x * CE_WARPS) {
    const float *z = logits + (size_t)r * classes;
    float best = -INFINITY;
    int arg = classes;
    for (int c = lane; c < classes; c += 32)
      if (arg == classes || z[c] > best) {
        best = z[c];
        arg = c;
      }
    for (int o = 16; o > 0; o /= 2) {
      float b2 = __shfl_xor_sync(0xffffffffu, best, o);
      int a2 = __shfl_xor_sync(0xffffffffu, arg, o);
      if (a2 < classes && (arg == classes || b2 > best || (b2 == best && a2 < arg))) {
        best = b2;
        arg = a2;
      }
    }
    int32_t y = labels[r];
    if (lane == 0 && ce_counted(y, classes, ignore_index)) {
      correct += arg == y;
      seen++;
    }
  }
  float c = block_sum((float)correct, shc); /* exact: counts stay far below 2^24 */
  float s = block_sum((float)seen, shs);
  if (threadIdx.x == 0) {
    part_correct[blockIdx.x] = (int)c;
    part_seen[blockIdx.x] = (int)s;
  }
}

__global__ void score_total_kernel(int parts, const int *__restrict__ part_correct,
                                   const int *__restrict__ part_seen,
                                   const float *__restrict__ loss, float weight,
                                   double *__restrict__ acc) {
  if (threadIdx.x != 0) return;
  long correct = 0, seen = 0;
  for (int i = 0; i < parts; i++) {
    correct += part_correct[i];
    seen += part_seen[i];
  }
  acc[0] += (double)weight * *loss;
  acc[1] += (double)correct;
  acc[2] += (double)seen;
}

extern "C" void cuda_score(const struct ops_ctx *ctx, int n, int classes, const float *logits,
                           const int32_t *labels, int ignore_index, const float *loss, float weight,
                           double *acc) {
  const struct cuda_state *st = cuda_state_of(ctx);
  unsigned blocks = div_up(n > 0 ? n : 1, CE_WARPS);
  if (blocks > CUDA_PARTIALS) blocks = CUDA_PARTIALS;
  int *correct = st->counts, *seen = st->counts + CUDA_PARTIALS;
  LAUNCH(score_kernel, blocks, CE_WARPS * 32, 0, cuda_stream(ctx))
  (n, classes, logits, labels, ignore_index, correct, seen);
  LAUNCH_CHECK("score_kernel");
  LAUNCH(score_total_kernel, 1, 32, 0, cuda_stream(ctx))
  ((int)blocks, correct, seen, loss, weight, acc);
  LAUNCH_CHECK("score_total_kernel");
}
