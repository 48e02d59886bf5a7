/* attention.c — scaled dot-product attention, one (batch, head) pair per
 * OpenMP iteration, every product a cblas_sgemm on the caller's strided
 * layout (no copies).
 *
 * For pair g = b*h + head, with Q_g the (tq, dh) block at
 * q + b*tq*ldq + head*dh and row stride ldq (K_g, V_g, Out_g alike):
 *   S = scale Q_g K_g^T (+ mask)    P = softmax_rows(S)          -> probs
 *   Pd = P keep / (1-p) if p > 0, keep from ops_dropout_keep at
 *        the flat (b, h, tq, tk) index                           -> probs_drop
 *   Out_g = (Pd or P) V_g
 * The forward applies dropout when p > 0; the backward reads probs_drop when
 * it is not NULL (it needs neither p nor the stream: see below).
 *
 * A query row with every key masked has an all -inf score row and comes out
 * NaN, as in torch (see softmax.c); no model here builds such a mask. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"

size_t cpu_attention_scratch(const struct attn_shape *s, int threads) {
  /* one (tq, tk) dP/dS buffer per thread, overwritten in place */
  return (size_t)threads * (size_t)s->tq * (size_t)s->tk;
}

/* Masks and normalises one score row in place. */
static void softmax_row(const struct attn_shape *s, int i, float *row) {
  const int tk = s->tk;
  if (s->mask == MASK_CAUSAL) {
    for (int j = i + 1; j < tk; j++)
      row[j] = -INFINITY;
  } else if (s->mask == MASK_GIVEN) {
    const float *m = s->given_mask + (size_t)i * tk;
    for (int j = 0; j < tk; j++)
      if (m[j] == 0.0f) row[j] = -INFINITY;
  }
  ops_softmax_row(row, row, tk);
}

void cpu_attention_fwd(const struct ops_ctx *ctx, const struct attn_shape *s, const float *q,
                       const float *k, const float *v, float p, struct rng_stream rng, float *probs,
                       float *probs_drop, float *out) {
  const int tq = s->tq, tk = s->tk, dh = s->dh, pairs = s->b * s->h;
  const size_t plane = (size_t)tq * tk;
  /* p = 1 drops everything; 1/(1-p) would turn 0 * inf into NaN. */
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int g = 0; g < pairs; g++) {
    const int b = g / s->h, hd = g % s->h;
    const float *qg = q + (size_t)b * tq * s->ldq + (size_t)hd * dh; /* (tq, dh) ld ldq */
    const float *kg = k + (size_t)b * tk * s->ldk + (size_t)hd * dh; /* (tk, dh) ld ldk */
    const float *vg = v + (size_t)b * tk * s->ldv + (size_t)hd * dh; /* (tk, dh) ld ldv */
    float *og = out + (size_t)b * tq * s->ldo + (size_t)hd * dh;     /* (tq, dh) ld ldo */
    float *pg = probs + (size_t)g * plane;                           /* (tq, tk) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, tk, dh, s->scale, qg, s->ldq, kg,
                s->ldk, 0.0f, pg, tk);
    for (int i = 0; i < tq; i++)
      softmax_row(s, i, pg + (size_t)i * tk);
    const float *pv = pg;
    if (p > 0.0f) {
      float *dg = probs_drop + (size_t)g * plane; /* (tq, tk) */
      const uint64_t base = (uint64_t)g * plane;
      for (size_t e = 0; e < plane; e++)
        dg[e] = ops_dropout_keep(rng.key, rng.counter, base + e, p) ? pg[e] * keep_scale : 0.0f;
      pv = dg;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, dh, tk, 1.0f, pv, tk, vg, s->ldv,
                0.0f, og, s->ldo);
  }
}

void cpu_attention_bwd(const struct ops_ctx *ctx, const struct attn_shape *s, const float *dout,
                       const float *q, const float *k, const float *v, const float *probs,
                       const float *probs_drop, float *dq, float *dk, float *dv) {
  const int tq = s->tq, tk = s->tk, dh = s->dh, pairs = s->b * s->h;
  const size_t plane = (size_t)tq * tk;
#pragma omp parallel num_threads(ctx->threads)
  {
    float *ds = ctx->scratch + (size_t)omp_get_thread_num() * plane; /* (tq, tk) */
#pragma omp for schedule(static)
    for (int g = 0; g < pairs; g++) {
      const int b = g / s->h, hd = g % s->h;
      const size_t qoff = (size_t)b * tq * s->ldq + (size_t)hd * dh;
      const size_t koff = (size_t)b * tk * s->ldk + (size_t)hd * dh;
      const size_t voff = (size_t)b * tk * s->ldv + (size_t)hd * dh;
      const float *dog = dout + (size_t)b * tq * s->ldo + (size_t)hd * dh; /* (tq, dh) */
      const float *pg = probs + (size_t)g * plane;                         /* (tq, tk) */
      const float *pd = probs_drop ? probs_drop + (size_t)g * plane : pg;  /* (tq, tk) */
      /* dV += Pd^T dOut */
      if (dv)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, tk, dh, tq, 1.0f, pd, tk, dog, s->ldo,
                    1.0f, dv + voff, s->ldv);
      if (!dq && !dk) continue;
      /* dPd = dOut V^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, tk, dh, 1.0f, dog, s->ldo, v + voff,
                  s->ldv, 0.0f, ds, tk);
      /* With dP = dPd keep/(1-p), P dP = Pd dPd elementwise, so
       * dS = P (dP - rowsum(P dP)) = Pd dPd - P rowsum(Pd dPd): the backward
       * needs neither p nor the keep mask, only probs and probs_drop. */
      for (int i = 0; i < tq; i++) {
        float *dsr = ds + (size_t)i * tk;
        const float *pr = pg + (size_t)i * tk, *pdr = pd + (size_t)i * tk;
        ops_dsoftmax_apply(dsr, pr, tk, 0, 1, ops_row_mul_sum(dsr, pdr, tk, 0, 1));
      }
      /* dQ += scale dS K;  dK += scale dS^T Q */
      if (dq)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, dh, tk, s->scale, ds, tk,
                    k + koff, s->ldk, 1.0f, dq + qoff, s->ldq);
      if (dk)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, tk, dh, tq, s->scale, ds, tk, q + qoff,
                    s->ldq, 1.0f, dk + koff, s->ldk);
    }
  }
}
