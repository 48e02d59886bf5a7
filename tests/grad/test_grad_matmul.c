/* test_grad_matmul.c — matmul (all four transpose combinations, padded
 * leading dimensions, alpha and beta), batched matmul, and the linear layer
 * forward and backward (with and without bias) against float64 references:
 * central differences on small shapes, the analytic float64 gradient on
 * shapes large enough to take the multi-threaded paths.
 *
 * Tolerances are the rigorous float32 dot-product bound: a sum of K float32
 * products is within gamma(K) * sum |terms| of the exact value, gamma(K) =
 * K u / (1 - K u), u = 2^-24, whatever the summation order (so any GEMM
 * blocking or thread split); `absref` is the reference on absolute values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

/* op(M)[i][j] of a row-major M with leading dimension ld. */
static double op_at(const float *m, int ld, int t, int i, int j, int take_abs) {
  double v = t ? m[(size_t)j * ld + i] : m[(size_t)i * ld + j];
  return take_abs ? fabs(v) : v;
}

/* want (m, n) = alpha op(A) op(B) + beta C0, absref the same on |.|. */
static void gemm_ref(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, const float *c0, int ldc, double *want,
                     double *absref) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0, sa = 0;
      for (int p = 0; p < k; p++) {
        s += op_at(a, lda, ta, i, p, 0) * op_at(b, ldb, tb, p, j, 0);
        sa += op_at(a, lda, ta, i, p, 1) * op_at(b, ldb, tb, p, j, 1);
      }
      double c = c0[(size_t)i * ldc + j];
      want[(size_t)i * n + j] = alpha * s + beta * c;
      absref[(size_t)i * n + j] = fabs(alpha) * sa + fabs(beta * c);
    }
}

/* One matmul call vs the reference; C has padding columns that must stay
 * untouched. */
static void check_matmul(int threads, int ta, int tb, int m, int n, int k, int pad, uint64_t seed) {
  int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
  float *c0 = malloc(nc * sizeof *c0), *got = malloc((size_t)m * n * sizeof *got);
  double *want = malloc((size_t)m * n * sizeof *want), *absref = malloc((size_t)m * n * 8);
  gc_fill(a, na, seed, 1.0f);
  gc_fill(b, nb, seed + 1, 1.0f);
  gc_fill(c0, nc, seed + 2, 1.0f);
  memcpy(c, c0, nc * sizeof *c);
  const float alpha = 0.75f, beta = -0.5f;
  struct ops_ctx ctx = {.threads = threads};
  ops_cpu()->matmul(&ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc, want, absref);
  for (int i = 0; i < m; i++) {
    memcpy(got + (size_t)i * n, c + (size_t)i * ldc, n * sizeof *got);
    for (int j = n; j < ldc; j++)
      TU_CHECK(c[(size_t)i * ldc + j] == c0[(size_t)i * ldc + j]);
  }
  /* K products, the alpha scaling and the beta C add. */
  TU_CHECK(gc_cmp_bound("matmul", got, want, absref, (size_t)m * n, k + 3) == 0);
  free(a), free(b), free(c), free(c0), free(got), free(want), free(absref);
}

/* Batched matmul with gaps between the matrices (strides larger than the
 * matrices), checked matrix by matrix. */
static void check_batched(int threads, int ta, int tb, int m, int n, int k, int batch,
                          uint64_t seed) {
  int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
  long sa = (long)m * k + 5, sb = (long)k * n + 3, sc = (long)m * n + 7;
  size_t na = (size_t)sa * batch, nb = (size_t)sb * batch, nc = (size_t)sc * batch;
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
  float *c0 = malloc(nc * sizeof *c0);
  double *want = malloc((size_t)m * n * sizeof *want), *absref = malloc((size_t)m * n * 8);
  gc_fill(a, na, seed, 1.0f);
  gc_fill(b, nb, seed + 1, 1.0f);
  gc_fill(c0, nc, seed + 2, 1.0f);
  memcpy(c, c0, nc * sizeof *c);
  struct ops_ctx ctx = {.threads = threads};
  ops_cpu()->matmul_batched(&ctx, ta, tb, m, n, k, 1.0f, a, lda, sa, b, ldb, sb, 0.25f, c, ldc, sc,
                            batch);
  for (int i = 0; i < batch; i++) {
    gemm_ref(ta, tb, m, n, k, 1.0f, a + i * sa, lda, b + i * sb, ldb, 0.25f, c0 + i * sc, ldc, want,
             absref);
    TU_CHECK(gc_cmp_bound("batched", c + i * sc, want, absref, (size_t)m * n, k + 3) == 0);
    for (long j = (long)m * n; j < sc; j++)
      TU_CHECK(c[i * sc + j] == c0[i * sc + j]);
  }
  free(a), free(b), free(c), free(c0), free(want), free(absref);
}

struct lin_case {
  int m, k, n, bias;
};

/* in = [x (m, k) | w (n, k) | bias (n)] -> y (m, n) */
static void linear_ref(const double *in, double *y, void *ud) {
  const struct lin_case *c = ud;
  const double *x = in, *w = in + (size_t)c->m * c->k, *b = w + (size_t)c->n * c->k;
  for (int i = 0; i < c->m; i++)
    for (int j = 0; j < c->n; j++) {
      double s = c->bias ? b[j] : 0.0;
      for (int p = 0; p < c->k; p++)
        s += x[(size_t)i * c->k + p] * w[(size_t)j * c->k + p];
      y[(size_t)i * c->n + j] = s;
    }
}

/* Analytic gradient of sum dy * y (written, GRAD_INIT added). take_abs gives
 * the |.| bound instead. */
static void linear_ref_bwd(const struct lin_case *c, const float *dy, const float *in, int take_abs,
                           double *g) {
  size_t nx = (size_t)c->m * c->k, nw = (size_t)c->n * c->k;
  const float *x = in, *w = in + nx;
  for (size_t i = 0; i < nx + nw + c->n; i++)
    g[i] = GRAD_INIT;
  for (int i = 0; i < c->m; i++)
    for (int j = 0; j < c->n; j++) {
      double d = dy[(size_t)i * c->n + j];
      if (take_abs) d = fabs(d);
      g[nx + nw + j] += d;
      for (int p = 0; p < c->k; p++) {
        double xv = x[(size_t)i * c->k + p], wv = w[(size_t)j * c->k + p];
        g[(size_t)i * c->k + p] += d * (take_abs ? fabs(wv) : wv);
        g[nx + (size_t)j * c->k + p] += d * (take_abs ? fabs(xv) : xv);
      }
    }
}

static void check_linear(int threads, struct lin_case c, int numeric, uint64_t seed) {
  size_t nx = (size_t)c.m * c.k, nw = (size_t)c.n * c.k, ny = (size_t)c.m * c.n;
  size_t nin = nx + nw + c.n;
  float *in = malloc(nin * sizeof *in), *dy = malloc(ny * sizeof *dy);
  float *y = malloc(ny * sizeof *y), *g = malloc(nin * sizeof *g);
  double *ind = calloc(nin, sizeof *ind), *yd = malloc(ny * sizeof *yd);
  double *gd = malloc(nin * sizeof *gd), *gabs = malloc(nin * sizeof *gabs);
  double *yabs = malloc(ny * sizeof *yabs);
  gc_fill(in, nin, seed, 1.0f);
  gc_fill(dy, ny, seed + 1, 1.0f);
  if (!c.bias)
    for (size_t i = nx + nw; i < nin; i++)
      in[i] = 0.0f;
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];

  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  ops->linear_fwd(&ctx, c.m, c.k, c.n, in, in + nx, c.bias ? in + nx + nw : NULL, y);
  linear_ref(ind, yd, &c);
  for (size_t i = 0; i < nin; i++)
    ind[i] = fabs(ind[i]);
  linear_ref(ind, yabs, &c);
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];
  /* k products plus the bias. */
  TU_CHECK(gc_cmp_bound("linear y", y, yd, yabs, ny, c.k + 1) == 0);

  for (size_t i = 0; i < nin; i++)
    g[i] = GRAD_INIT;
  ops->linear_bwd(&ctx, c.m, c.k, c.n, dy, in, in + nx, g, g + nx, c.bias ? g + nx + nw : NULL);
  if (numeric) {
    double *dyd = malloc(ny * sizeof *dyd);
    for (size_t i = 0; i < ny; i++)
      dyd[i] = dy[i];
    gc_numeric_grad(linear_ref, ind, nin, ny, dyd, &c, 1e-5, gd);
    for (size_t i = 0; i < nin; i++)
      gd[i] += GRAD_INIT;
    free(dyd);
  } else {
    linear_ref_bwd(&c, dy, in, 0, gd);
  }
  linear_ref_bwd(&c, dy, in, 1, gabs);
  /* dx: n products; dw, dbias: m products; each plus the GRAD_INIT add.
   * Central differences of this bilinear reference are exact to ~1e-10,
   * well inside the bound. */
  TU_CHECK(gc_cmp_bound("linear dx", g, gd, gabs, nx, c.n + 1) == 0);
  TU_CHECK(gc_cmp_bound("linear dw", g + nx, gd + nx, gabs + nx, nw, c.m + 1) == 0);
  if (c.bias)
    TU_CHECK(
        gc_cmp_bound("linear dbias", g + nx + nw, gd + nx + nw, gabs + nx + nw, c.n, c.m + 1) == 0);
  else
    for (int j = 0; j < c.n; j++)
      TU_CHECK(g[nx + nw + j] == GRAD_INIT);

  /* NULL gradients are skipped: only dx again doubles its gradient. */
  ops->linear_bwd(&ctx, c.m, c.k, c.n, dy, in, in + nx, g, NULL, NULL);
  for (size_t i = 0; i < nx; i++)
    gd[i] = 2 * gd[i] - GRAD_INIT;
  TU_CHECK(gc_cmp_bound("linear dx twice", g, gd, gabs, nx, 2 * (c.n + 1)) == 0);

  free(in), free(dy), free(y), free(g), free(ind), free(yd), free(gd), free(gabs), free(yabs);
}

struct lin_act_case {
  struct lin_case lin;
  enum act_kind act;
};

/* in as linear_ref -> y = act(x w^T + bias), in double. */
static void linear_act_ref(const double *in, double *y, void *ud) {
  const struct lin_act_case *c = ud;
  linear_ref(in, y, (void *)&c->lin);
  for (size_t i = 0; i < (size_t)c->lin.m * c->lin.n; i++) {
    double v = y[i];
    y[i] = c->act == ACT_RELU   ? (v > 0 ? v : 0)
           : c->act == ACT_SILU ? v / (1 + exp(-v))
                                : 0.5 * v * (1 + erf(v / sqrt(2.0)));
  }
}

/* The fused linear + activation against the double reference: values and a
 * numeric gradient of every input, GRAD_INIT-accumulated. */
static void check_linear_act(int threads, struct lin_act_case c, uint64_t seed) {
  const int m = c.lin.m, k = c.lin.k, n = c.lin.n;
  size_t nx = (size_t)m * k, nw = (size_t)n * k, ny = (size_t)m * n, nin = nx + nw + n;
  float *in = malloc(nin * sizeof *in), *dy = malloc(ny * sizeof *dy), *y = malloc(ny * 4);
  float *h = malloc(ny * 4), *dh = malloc(ny * 4), *g = malloc(nin * sizeof *g);
  double *ind = malloc(nin * sizeof *ind), *yd = malloc(ny * sizeof *yd);
  double *dyd = malloc(ny * sizeof *dyd), *num = malloc(nin * sizeof *num);
  gc_fill(in, nin, seed, 1.0f);
  gc_fill(dy, ny, seed + 1, 1.0f);
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];
  for (size_t i = 0; i < ny; i++)
    dyd[i] = dy[i];
  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  ops->linear_act_fwd(&ctx, c.act, m, k, n, in, in + nx, in + nx + nw, h, y);
  linear_act_ref(ind, yd, &c);
  /* a K-term float dot product, then the activation: gradcheck.h's budget */
  TU_CHECK(gc_compare("linear_act y", y, yd, ny, 1e-4, 1e-5) == 0);
  for (size_t i = 0; i < nin; i++)
    g[i] = GRAD_INIT;
  ops->linear_act_bwd(&ctx, c.act, m, k, n, dy, in, in + nx, h, dh, g, g + nx, g + nx + nw);
  gc_numeric_grad(linear_act_ref, ind, nin, ny, dyd, &c, 1e-5, num);
  for (size_t i = 0; i < nin; i++)
    num[i] += GRAD_INIT;
  /* gradcheck.h's 1e-4 relative + 1e-5 absolute (float products of O(1)
   * terms over K or M <= 9 rows; ReLU's kink is not hit by random inputs
   * at h = 1e-5 except with probability ~1e-5 per element) */
  TU_CHECK(gc_compare("linear_act dx", g, num, nx, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("linear_act dw", g + nx, num + nx, nw, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("linear_act dbias", g + nx + nw, num + nx + nw, (size_t)n, 1e-4, 1e-5) == 0);
  free(in), free(dy), free(y), free(h), free(dh), free(g), free(ind), free(yd), free(dyd),
      free(num);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++)
    for (int act = ACT_RELU; act <= ACT_GELU; act++)
      check_linear_act(threads, (struct lin_act_case){{9, 5, 7, 1}, (enum act_kind)act},
                       300 + 10 * threads + act);
  for (int threads = 1; threads <= 2; threads++)
    for (int ta = 0; ta <= 1; ta++)
      for (int tb = 0; tb <= 1; tb++) {
        uint64_t seed = 100 + 10 * threads + 2 * ta + tb;
        check_matmul(threads, ta, tb, 5, 7, 9, 3, seed);      /* small: one sgemm */
        check_matmul(threads, ta, tb, 301, 40, 33, 2, seed);  /* split by rows */
        check_matmul(threads, ta, tb, 9, 333, 50, 1, seed);   /* split by columns */
        check_batched(threads, ta, tb, 48, 40, 72, 5, seed);  /* parallel over the batch */
        check_batched(threads, ta, tb, 130, 30, 40, 1, seed); /* one matrix, split inside */
      }
  for (int threads = 1; threads <= 2; threads++) {
    check_linear(threads, (struct lin_case){6, 5, 4, 1}, 1, 200 + threads);
    check_linear(threads, (struct lin_case){7, 3, 5, 0}, 1, 210 + threads);
    /* Large enough for the threaded GEMM splits and dbias blocks (n > 64). */
    check_linear(threads, (struct lin_case){300, 64, 130, 1}, 0, 220 + threads);
    check_linear(threads, (struct lin_case){257, 96, 70, 0}, 0, 230 + threads);
  }
  TU_DONE();
}
