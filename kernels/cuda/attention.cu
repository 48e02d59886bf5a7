/* attention.cu — scaled dot-product attention (kernels/ops.h's attn_shape).
 *
 * Small tiles (tq, tk, dh <= 64: attn_cnn's 64 tokens of width 64) take one
 * fused forward kernel per (image, head): K and V sit in shared memory, each
 * warp takes query rows, its lanes own two keys each for the scores and the
 * softmax (common.cuh's warp_softmax over the row in shared memory) and two
 * output columns each for P V, so scores never leave the SM except as the
 * saved probabilities.
 *
 * Larger shapes go through cuBLAS: S = Q K^T as strided-batched GEMMs, one
 * kernel for scale + mask + softmax (+ dropout), then Out = P V. With one
 * head, the (batch) pairs are evenly strided and each product is a single
 * batched GEMM; with several heads, one batched GEMM over the heads per
 * image. The backward always takes the GEMM path:
 *   dV += Pd^T dOut;  dPd = dOut V^T;  dS = Pd dPd - P rowsum(Pd dPd);
 *   dQ += scale dS K;  dK += scale dS^T Q
 * (the identity behind dS is explained in kernels/cpu/attention.c). */
#include "kernels/cuda/common.cuh"

#define AT_FUSED_MAX 64
#define AT_WARPS 8

extern "C" size_t cuda_attention_scratch(const struct attn_shape *s, int threads) {
  (void)threads; /* dPd / dS for every (batch, head) pair */
  return (size_t)s->b * s->h * s->tq * s->tk;
}

static __device__ __forceinline__ int masked(int mask, const float *given, int tk, int i, int j) {
  if (mask == MASK_CAUSAL) return j > i;
  if (mask == MASK_GIVEN) return given[(size_t)i * tk + j] == 0.0f;
  return 0;
}

/* Dynamic shared memory of the fused kernel, in floats. */
static size_t fused_floats(const struct attn_shape *s) {
  return (size_t)s->tk * (s->dh + 1) + (size_t)s->tk * s->dh + AT_WARPS * (size_t)(s->dh + s->tk);
}

__global__ void attn_fused_fwd(struct attn_shape s, const float *__restrict__ q,
                               const float *__restrict__ k, const float *__restrict__ v, float p,
                               float keep_scale, uint64_t key, uint64_t counter,
                               float *__restrict__ probs, float *__restrict__ probs_drop,
                               float *__restrict__ out) {
  DYN_SHARED(float, smem);
  const int tq = s.tq, tk = s.tk, dh = s.dh, ks = dh + 1; /* K rows padded: no bank conflicts */
  const int hd = blockIdx.x, b = blockIdx.y, g = b * s.h + hd;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float *ksh = smem, *vsh = ksh + (size_t)tk * ks;
  float *qrow = vsh + (size_t)tk * dh + (size_t)warp * (dh + tk), *prow = qrow + dh;
  const float *qg = q + (size_t)b * tq * s.ldq + (size_t)hd * dh;
  const float *kg = k + (size_t)b * tk * s.ldk + (size_t)hd * dh;
  const float *vg = v + (size_t)b * tk * s.ldv + (size_t)hd * dh;
  float *og = out + (size_t)b * tq * s.ldo + (size_t)hd * dh;
  const size_t plane = (size_t)tq * tk;
  for (int e = threadIdx.x; e < tk * dh; e += blockDim.x) {
    int j = e / dh, c = e % dh;
    ksh[j * ks + c] = kg[(size_t)j * s.ldk + c];
    vsh[j * dh + c] = vg[(size_t)j * s.ldv + c];
  }
  __syncthreads();
  for (int i = warp; i < tq; i += AT_WARPS) {
    for (int c = lane; c < dh; c += 32)
      qrow[c] = qg[(size_t)i * s.ldq + c];
    __syncwarp(0xffffffffu);
    /* Each lane scores, normalises and reads back only its own keys j:
     * no warp barrier between the passes over prow. */
    for (int j = lane; j < tk; j += 32) {
      float a = -INFINITY;
      if (!masked(s.mask, s.given_mask, tk, i, j)) {
        a = 0.0f;
        for (int c = 0; c < dh; c++)
          a += qrow[c] * ksh[j * ks + c];
        a *= s.scale;
      }
      prow[j] = a;
    }
    warp_softmax(prow, prow, tk, lane);
    for (int j = lane; j < tk; j += 32) {
      float pj = prow[j];
      size_t at = (size_t)g * plane + (size_t)i * tk + j;
      probs[at] = pj;
      if (p > 0.0f) {
        pj = ops_dropout_keep(key, counter, at, p) ? pj * keep_scale : 0.0f;
        probs_drop[at] = pj;
      }
      prow[j] = pj;
    }
    __syncwarp(0xffffffffu);
    for (int c = lane; c < dh; c += 32) {
      float acc = 0.0f;
      for (int j = 0; j < tk; j++)
        acc += prow[j] * vsh[j * dh + c];
      og[(size_t)i * s.ldo + c] = acc;
    }
    __syncwarp(0xffffffffu); /* qrow and prow are refilled for the next row */
  }
}

/* Row-wise over (b, h, tq) rows of tk scores already holding Q K^T:
 * scale, mask, softmax into probs, dropout into probs_drop. In place. */
__global__ void attn_softmax_kernel(struct attn_shape s, float p, float keep_scale, uint64_t key,
                                    uint64_t counter, float *__restrict__ probs,
                                    float *__restrict__ probs_drop) {
  const int lane = threadIdx.x % 32, tk = s.tk;
  const int rows = s.b * s.h * s.tq;
  for (int r = blockIdx.x * AT_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * AT_WARPS) {
    int i = r % s.tq;
    float *row = probs + (size_t)r * tk;
    for (int j = lane; j < tk; j += 32)
      row[j] = masked(s.mask, s.given_mask, tk, i, j) ? -INFINITY : row[j] * s.scale;
    warp_softmax(row, row, tk, lane);
    for (int j = lane; j < tk; j += 32) {
      float pj = row[j];
      if (p > 0.0f) {
        size_t at = (size_t)r * tk + j;
        probs_drop[at] = ops_dropout_keep(key, counter, at, p) ? pj * keep_scale : 0.0f;
      }
    }
  }
}

/* dS = Pd dPd - P rowsum(Pd dPd), in place over ds (which holds dPd). */
__global__ void attn_dsoftmax_kernel(int rows, int tk, const float *__restrict__ probs,
                                     const float *__restrict__ pd, float *__restrict__ ds) {
  const int lane = threadIdx.x % 32;
  for (int r = blockIdx.x * AT_WARPS + threadIdx.x / 32; r < rows; r += gridDim.x * AT_WARPS) {
    const float *pr = probs + (size_t)r * tk, *pdr = pd + (size_t)r * tk;
    float *dr = ds + (size_t)r * tk;
    ops_dsoftmax_apply(dr, pr, tk, lane, 32, warp_sum(ops_row_mul_sum(dr, pdr, tk, lane, 32)));
  }
}

/* One operand of the per-(batch, head) products: base pointer, leading
 * dimension, and the strides from one batch / one head to the next. */
struct pair_mat {
  const float *p;
  int ld;
  long b_stride, h_stride;
};

/* C_g = alpha op(A_g) op(B_g) + beta C_g for every pair g = (b, head): one
 * strided-batched GEMM over the batch per head, so the calls do not grow
 * with the batch (the pairs have two strides, and heads are few). */
static void pairs_gemm(const struct ops_ctx *ctx, const struct attn_shape *s, int ta, int tb, int m,
                       int n, int k, float alpha, struct pair_mat a, struct pair_mat b, float beta,
                       float *c, int ldc, long c_b_stride, long c_h_stride) {
  for (int hi = 0; hi < s->h; hi++)
    cuda_matmul_batched(ctx, ta, tb, m, n, k, alpha, a.p + hi * a.h_stride, a.ld, a.b_stride,
                        b.p + hi * b.h_stride, b.ld, b.b_stride, beta, c + hi * c_h_stride, ldc,
                        c_b_stride, s->b);
}

static unsigned row_blocks(long rows) {
  unsigned b = div_up(rows, AT_WARPS);
  return b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS;
}

extern "C" void cuda_attention_fwd(const struct ops_ctx *ctx, const struct attn_shape *s,
                                   const float *q, const float *k, const float *v, float p,
                                   struct rng_stream rng, float *probs, float *probs_drop,
                                   float *out) {
  const int tq = s->tq, tk = s->tk, dh = s->dh;
  const long plane = (long)tq * tk;
  /* p = 1 drops everything; 1/(1-p) would turn 0 * inf into NaN. */
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  if (s->b <= 0 || s->h <= 0 || tq <= 0 || tk <= 0) return;
  if (tq <= AT_FUSED_MAX && tk <= AT_FUSED_MAX && dh <= AT_FUSED_MAX) {
    LAUNCH(attn_fused_fwd, dim3(s->h, s->b), AT_WARPS * 32, fused_floats(s) * sizeof(float),
           cuda_stream(ctx))
    (*s, q, k, v, p, keep_scale, rng.key, rng.counter, probs, probs_drop, out);
    LAUNCH_CHECK("attn_fused_fwd");
    return;
  }
  struct pair_mat qm = {q, s->ldq, (long)tq * s->ldq, dh}, km = {k, s->ldk, (long)tk * s->ldk, dh};
  struct pair_mat pm = {probs, tk, (long)s->h * plane, plane};
  /* S = Q K^T (unscaled; the softmax kernel scales) */
  pairs_gemm(ctx, s, 0, 1, tq, tk, dh, 1.0f, qm, km, 0.0f, probs, tk, (long)s->h * plane, plane);
  LAUNCH(attn_softmax_kernel, row_blocks((long)s->b * s->h * tq), AT_WARPS * 32, 0,
         cuda_stream(ctx))
  (*s, p, keep_scale, rng.key, rng.counter, probs, probs_drop);
  LAUNCH_CHECK("attn_softmax_kernel");
  if (p > 0.0f) pm.p = probs_drop;
  struct pair_mat vm = {v, s->ldv, (long)tk * s->ldv, dh};
  /* Out = P V */
  pairs_gemm(ctx, s, 0, 0, tq, dh, tk, 1.0f, pm, vm, 0.0f, out, s->ldo, (long)tq * s->ldo, dh);
}

extern "C" void cuda_attention_bwd(const struct ops_ctx *ctx, const struct attn_shape *s,
                                   const float *dout, const float *q, const float *k,
                                   const float *v, const float *probs, const float *probs_drop,
                                   float *dq, float *dk, float *dv) {
  const int tq = s->tq, tk = s->tk, dh = s->dh;
  const long plane = (long)tq * tk, pb = (long)s->h * plane;
  if (s->b <= 0 || s->h <= 0 || tq <= 0 || tk <= 0) return;
  const float *pd = probs_drop ? probs_drop : probs;
  struct pair_mat dom = {dout, s->ldo, (long)tq * s->ldo, dh};
  struct pair_mat pdm = {pd, tk, pb, plane};
  /* dV += Pd^T dOut */
  if (dv)
    pairs_gemm(ctx, s, 1, 0, tk, dh, tq, 1.0f, pdm, dom, 1.0f, dv, s->ldv, (long)tk * s->ldv, dh);
  if (!dq && !dk) return;
  float *ds = ctx->scratch;
  struct pair_mat vm = {v, s->ldv, (long)tk * s->ldv, dh};
  /* dPd = dOut V^T */
  pairs_gemm(ctx, s, 0, 1, tq, tk, dh, 1.0f, dom, vm, 0.0f, ds, tk, pb, plane);
  long rows = (long)s->b * s->h * tq;
  LAUNCH(attn_dsoftmax_kernel, row_blocks(rows), AT_WARPS * 32, 0, cuda_stream(ctx))
  ((int)rows, tk, probs, pd, ds);
  LAUNCH_CHECK("attn_dsoftmax_kernel");
  struct pair_mat dsm = {ds, tk, pb, plane};
  struct pair_mat km = {k, s->ldk, (long)tk * s->ldk, dh}, qm = {q, s->ldq, (long)tq * s->ldq, dh};
  /* dQ += scale dS K;  dK += scale dS^T Q */
  if (dq)
    pairs_gemm(ctx, s, 0, 0, tq, dh, tk, s->scale, dsm, km, 1.0f, dq, s->ldq, (long)tq * s->ldq,
               dh);
  if (dk)
    pairs_gemm(ctx, s, 1, 0, tk, dh, tq, s->scale, dsm, qm, 1.0f, dk, s->ldk, (long)tk * s->ldk,
               dh);
}
