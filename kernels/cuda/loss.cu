/* loss.cu — cross-entropy fused with its softmax, torch semantics (see
 * kernels/cpu/loss.c): one warp per row computes the max, the log-sum-exp,
 * the probabilities and the row's loss in one pass over the logits; each of
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
  __shared__ double sh[33];
  __shared__ float shc[33];
  int lane = threadIdx.x % 32;
  double acc = 0.0;
  int cnt = 0;
  for (int r = blockIdx.x * CE_WARPS + threadIdx.x / 32; r < n; r += gridDim.x * CE_WARPS) {
    const float *z = logits + (size_t)r * classes;
    float *pr = probs + (size_t)r * classes;
    float mx = -INFINITY;
    for (int c = lane; c < classes; c += 32)
      mx = z[c] > mx ? z[c] : mx;
    mx = warp_max(mx);
    float se = 0.0f, sz = 0.0f;
    for (int c = lane; c < classes; c += 32) {
      se += expf(z[c] - mx);
      sz += z[c];
    }
    float lse = mx + logf(warp_sum(se)); /* -log p_c = lse - z_c */
    sz = warp_sum(sz);
    for (int c = lane; c < classes; c += 32)
      pr[c] = expf(z[c] - lse);
    int32_t y = labels[r];
    if (lane == 0 && ce_counted(y, classes, ignore_index)) {
      double row = (1.0 - smoothing) * ((double)lse - z[y]);
      if (smoothing > 0.0f) row += smoothing * ((double)lse - (double)sz / classes);
      acc += row;
      cnt++;
    }
  }
  acc = block_sum_d(acc, sh);           /* only lane 0 of each warp holds row sums */
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
  double total = 0.0;
  int cnt = 0;
  for (int i = 0; i < parts; i++) {
    total += part[i];
    cnt += part_count[i];
  }
  double denom = divisor > 0.0f ? (double)divisor : (double)cnt;
  *loss = (float)(total / denom); /* no counted row, no divisor: 0/0 = NaN, as torch */
  *count = cnt;
}

extern "C" void cuda_cross_entropy_fwd(const struct ops_ctx *ctx, int n, int classes,
                                       const float *logits, const int32_t *labels, int ignore_index,
                                       float smoothing, float divisor, float *probs, float *loss,
                                       int *count) {
  (void)ctx;
  const struct cuda_state *st = cuda_state();
  unsigned blocks = div_up(n > 0 ? n : 1, CE_WARPS);
  if (blocks > CUDA_PARTIALS) blocks = CUDA_PARTIALS;
  LAUNCH(ce_fwd_kernel, blocks, CE_WARPS * 32, 0, STREAM)
  (n, classes, logits, labels, ignore_index, smoothing, probs, st->partials, st->counts);
  LAUNCH_CHECK("ce_fwd_kernel");
  LAUNCH(ce_total_kernel, 1, 32, 0, STREAM)
  ((int)blocks, divisor, st->partials, st->counts, loss, st->counts + CUDA_PARTIALS);
  LAUNCH_CHECK("ce_total_kernel");
  cuda_download(count, st->counts + CUDA_PARTIALS, sizeof *count);
}

__global__ void ce_bwd_kernel(int n, int classes, const float *__restrict__ probs,
                              const int32_t *__restrict__ labels, int ignore_index, float g,
                              float uniform, float hit, float *__restrict__ dlogits) {
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
                                       float smoothing, float divisor, int count, float dloss,
                                       float *dlogits) {
  (void)ctx;
  double denom = divisor > 0.0f ? (double)divisor : (double)count;
  size_t total = (size_t)n * classes;
  if (denom <= 0 || !total) return; /* no counted row: nothing to add */
  float g = (float)(dloss / denom);
  LAUNCH(ce_bwd_kernel, ew_blocks(total), EW_THREADS, 0, STREAM)
  (n, classes, probs, labels, ignore_index, g, smoothing / (float)classes, 1.0f - smoothing,
   dlogits);
  LAUNCH_CHECK("ce_bwd_kernel");
}
