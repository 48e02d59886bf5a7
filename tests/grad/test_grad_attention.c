/* test_grad_attention.c — scaled dot-product attention against a float64
 * reference (probs, probs_drop, out) and its backward (dq, dk, dv) against
 * central differences of that reference, over the layouts the models use:
 * no / causal / given masks, several heads split contiguously, row strides
 * wider than h*dh, tq != tk down to tk = 1 (cross-attention on one memory
 * token), dh = 1 with 8 tokens (Ultimus), a large dh (channel attention),
 * dropout p = 0.1 on the weights, and 1 or 2 threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

struct attn_case {
  struct attn_shape s;
  float p;
  struct rng_stream rng;
  double *probs; /* (b, h, tq, tk), the last reference call's, or NULL */
};

static size_t q_len(const struct attn_shape *s) { return (size_t)s->b * s->tq * s->ldq; }
static size_t k_len(const struct attn_shape *s) { return (size_t)s->b * s->tk * s->ldk; }
static size_t v_len(const struct attn_shape *s) { return (size_t)s->b * s->tk * s->ldv; }
static size_t o_len(const struct attn_shape *s) { return (size_t)s->b * s->tq * s->ldo; }

static int masked(const struct attn_shape *s, int i, int j) {
  if (s->mask == MASK_CAUSAL) return j > i;
  if (s->mask == MASK_GIVEN) return s->given_mask[(size_t)i * s->tk + j] == 0.0f;
  return 0;
}

/* in = [q | k | v] in their strided layouts -> y = out (b, tq, ldo), the
 * padding columns left 0 (they carry weight 0 in the check). */
static void attn_ref(const double *in, double *y, void *ud) {
  struct attn_case *c = ud;
  const struct attn_shape *s = &c->s;
  const double *q = in, *k = q + q_len(s), *v = k + k_len(s);
  const double keep_scale = 1.0 / (1.0 - c->p);
  double *row = malloc((size_t)s->tk * sizeof *row);
  memset(y, 0, o_len(s) * sizeof *y);
  for (int b = 0; b < s->b; b++)
    for (int h = 0; h < s->h; h++)
      for (int i = 0; i < s->tq; i++) {
        const double *qi = q + ((size_t)b * s->tq + i) * s->ldq + (size_t)h * s->dh;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < s->tk; j++) {
          const double *kj = k + ((size_t)b * s->tk + j) * s->ldk + (size_t)h * s->dh;
          double dot = 0;
          for (int e = 0; e < s->dh; e++)
            dot += qi[e] * kj[e];
          row[j] = masked(s, i, j) ? -INFINITY : s->scale * dot;
          mx = fmax(mx, row[j]);
        }
        for (int j = 0; j < s->tk; j++)
          sum += row[j] = exp(row[j] - mx);
        const size_t flat = (((size_t)b * s->h + h) * s->tq + i) * s->tk;
        double *oi = y + ((size_t)b * s->tq + i) * s->ldo + (size_t)h * s->dh;
        for (int j = 0; j < s->tk; j++) {
          double pr = row[j] / sum;
          if (c->probs) c->probs[flat + j] = pr;
          if (c->p > 0)
            pr *= ops_dropout_keep(c->rng.key, c->rng.counter, flat + j, c->p) * keep_scale;
          const double *vj = v + ((size_t)b * s->tk + j) * s->ldv + (size_t)h * s->dh;
          for (int e = 0; e < s->dh; e++)
            oi[e] += pr * vj[e];
        }
      }
  free(row);
}

/* Gradients and the output's padding start at this value so the test sees
 * += rather than =, and that padding columns are never written. */
#define INIT 0.5f

static void sub_init(float *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    a[i] -= INIT;
}

/* Weight 0 on the padding columns of out, which are not outputs. */
static void zero_padding(const struct attn_shape *s, float *w) {
  for (size_t r = 0; r < (size_t)s->b * s->tq; r++)
    for (int e = s->h * s->dh; e < s->ldo; e++)
      w[r * s->ldo + e] = 0.0f;
}

static void run_case(const char *name, struct attn_shape s, float p, int threads, uint64_t seed) {
  fprintf(stderr, "case %s (threads %d)\n", name, threads);
  struct attn_case c = {s, p, {seed * 7919, 3}, NULL};
  const size_t nq = q_len(&s), nk = k_len(&s), nv = v_len(&s), no = o_len(&s);
  const size_t nin = nq + nk + nv, plane = (size_t)s.b * s.h * s.tq * s.tk;
  float *in = malloc(nin * sizeof *in), *out = malloc(no * sizeof *out);
  float *w = malloc(no * sizeof *w), *grad = malloc(nin * sizeof *grad);
  float *probs = malloc(plane * sizeof *probs);
  float *probs_drop = p > 0 ? malloc(plane * sizeof *probs_drop) : NULL;
  double *ind = malloc(nin * sizeof *ind), *outd = malloc(no * sizeof *outd);
  double *wd = malloc(no * sizeof *wd), *num = malloc(nin * sizeof *num);
  double *probsd = malloc(plane * sizeof *probsd);
  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  ctx.scratch_len = ops->attention_scratch(&s, threads);
  ctx.scratch = malloc(ctx.scratch_len * sizeof *ctx.scratch);

  gc_fill(in, nin, seed, 1.0f);
  gc_fill(w, no, seed + 1, 1.0f);
  zero_padding(&s, w);
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];
  for (size_t i = 0; i < no; i++)
    wd[i] = w[i], out[i] = INIT;

  ops->attention_fwd(&ctx, &s, in, in + nq, in + nq + nk, p, c.rng, probs, probs_drop, out);
  c.probs = probsd;
  attn_ref(ind, outd, &c);
  c.probs = NULL;
  /* The kernel must leave the padding of out at its initial value, so the
   * expected value there is INIT. */
  for (size_t r = 0; r < (size_t)s.b * s.tq; r++)
    for (int e = s.h * s.dh; e < s.ldo; e++)
      outd[r * s.ldo + e] = INIT;
  /* Scores are dot products of length dh <= 64 of values in [-1, 1] and
   * outputs sums of tk <= 12 terms: float rounding ~ dh * 6e-8 relative on
   * scores, which exp passes on to probs as absolute error. 1e-5 relative +
   * 1e-6 absolute covers both with margin. */
  TU_CHECK(gc_compare("probs", probs, probsd, plane, 1e-5, 1e-6) == 0);
  TU_CHECK(gc_compare("out", out, outd, no, 1e-5, 1e-6) == 0);
  if (p > 0) {
    /* probs_drop is exactly probs * keep / (1-p) with the float scale. */
    size_t kept = 0;
    int bad = 0;
    for (size_t i = 0; i < plane; i++) {
      int keep = ops_dropout_keep(c.rng.key, c.rng.counter, i, p);
      kept += (size_t)keep;
      bad += probs_drop[i] != (keep ? probs[i] * (1.0f / (1.0f - p)) : 0.0f);
    }
    TU_CHECK(bad == 0);
    TU_CHECK(kept > 0 && kept < plane); /* the mask does drop something */
  }

  for (size_t i = 0; i < nin; i++)
    grad[i] = INIT;
  ops->attention_bwd(&ctx, &s, w, in, in + nq, in + nq + nk, probs, probs_drop, grad, grad + nq,
                     grad + nq + nk);
  sub_init(grad, nin);
  gc_numeric_grad(attn_ref, ind, nin, no, wd, &c, 1e-5, num);
  /* gradcheck.h's float32 budget: reductions of length max(dh, tq, tk) <= 64,
   * 1e-4 relative + 1e-5 absolute. Padding columns of q, k, v are not inputs:
   * their numeric gradient is 0 and the kernel must leave them at INIT. */
  TU_CHECK(gc_compare("dq", grad, num, nq, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("dk", grad + nq, num + nq, nk, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("dv", grad + nq + nk, num + nq + nk, nv, 1e-4, 1e-5) == 0);

  /* Only dv requested: dq, dk skipped (NULL), dv accumulates again. */
  float *dv = grad + nq + nk;
  for (size_t i = 0; i < nv; i++)
    dv[i] += INIT;
  ops->attention_bwd(&ctx, &s, w, in, in + nq, in + nq + nk, probs, probs_drop, NULL, NULL, dv);
  sub_init(dv, nv);
  for (size_t i = 0; i < nv; i++)
    num[nq + nk + i] *= 2;
  TU_CHECK(gc_compare("dv twice", dv, num + nq + nk, nv, 1e-4, 1e-5) == 0);

  free(in), free(out), free(w), free(grad), free(probs), free(probs_drop), free(ind);
  free(outd), free(wd), free(num), free(probsd), free(ctx.scratch);
}

static struct attn_shape shape(int b, int h, int tq, int tk, int dh, int pad, enum mask_kind m,
                               const float *given) {
  const int wdt = h * dh;
  /* Different paddings per operand, so a mixed-up stride shows. */
  return (struct attn_shape){.b = b,
                             .h = h,
                             .tq = tq,
                             .tk = tk,
                             .dh = dh,
                             .ldq = wdt + pad,
                             .ldk = wdt + 2 * pad,
                             .ldv = wdt + 3 * pad,
                             .ldo = wdt + pad,
                             .scale = 1.0f / sqrtf((float)dh),
                             .mask = m,
                             .given_mask = given};
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    run_case("none", shape(2, 1, 5, 5, 4, 0, MASK_NONE, NULL), 0.0f, threads, 1);
    /* attn_cnn's layout in miniature: causal, contiguous rows */
    run_case("causal", shape(2, 1, 6, 6, 8, 0, MASK_CAUSAL, NULL), 0.0f, threads, 2);
    /* multi-head causal with padded strides (captioning self-attention) */
    run_case("causal heads", shape(3, 2, 6, 6, 3, 2, MASK_CAUSAL, NULL), 0.0f, threads, 3);
    /* a given mask with zeros off the diagonal, tq != tk, padded strides */
    float given[4 * 7];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 7; j++)
        given[i * 7 + j] = (float)(j == i || (i * 3 + j * 5) % 4 != 0);
    run_case("given", shape(3, 2, 4, 7, 5, 3, MASK_GIVEN, given), 0.0f, threads, 4);
    /* cross-attention on one memory token: P = 1, dq = dk = 0 */
    run_case("tk=1", shape(2, 2, 5, 1, 4, 1, MASK_NONE, NULL), 0.0f, threads, 5);
    /* Ultimus: 8 tokens of width 1, scale 1/sqrt(8) */
    struct attn_shape u = shape(3, 1, 8, 8, 1, 0, MASK_NONE, NULL);
    u.scale = 1.0f / sqrtf(8.0f);
    run_case("ultimus", u, 0.0f, threads, 6);
    /* channel attention: C = 12 tokens of width H*W = 64, scale 1/sqrt(C) */
    struct attn_shape ch = shape(2, 1, 12, 12, 64, 0, MASK_NONE, NULL);
    ch.scale = 1.0f / sqrtf(12.0f);
    run_case("channels", ch, 0.0f, threads, 7);
    /* ViT: heads, dropout on the attention weights */
    run_case("dropout", shape(2, 4, 6, 6, 4, 0, MASK_NONE, NULL), 0.1f, threads, 8);
    run_case("dropout causal padded", shape(2, 2, 5, 5, 3, 2, MASK_CAUSAL, NULL), 0.1f, threads, 9);
  }
  TU_DONE();
}
