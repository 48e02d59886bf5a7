/* test_grad_batchnorm.c — BatchNorm2d against float64 references of
 * torch.nn.BatchNorm2d: training forward (y, saved mean and rstd, running
 * statistics with momentum 0.1 and the unbiased variance, over two steps),
 * training backward (dx, dgamma, dbeta) against central differences, and the
 * eval forward on running statistics; thread counts 1 and 2. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f
#define EPS 1e-5f
#define MOMENTUM 0.1f

struct bn_case {
  int n, c, hw;
};

/* Batch mean and biased variance of channel ch of x (n, c, hw). */
static void bn_stats(const struct bn_case *b, const double *x, int ch, double *mean, double *var) {
  double cnt = (double)b->n * b->hw, s = 0, q = 0;
  for (int i = 0; i < b->n; i++)
    for (int j = 0; j < b->hw; j++)
      s += x[((size_t)i * b->c + ch) * b->hw + j];
  *mean = s / cnt;
  for (int i = 0; i < b->n; i++)
    for (int j = 0; j < b->hw; j++)
      q += pow(x[((size_t)i * b->c + ch) * b->hw + j] - *mean, 2);
  *var = q / cnt;
}

/* Training forward, in = [x (n, c, hw) | gamma (c) | beta (c)] -> y. */
static void bn_ref(const double *in, double *y, void *ud) {
  const struct bn_case *b = ud;
  size_t nx = (size_t)b->n * b->c * b->hw;
  const double *gamma = in + nx, *beta = gamma + b->c;
  for (int ch = 0; ch < b->c; ch++) {
    double mean, var;
    bn_stats(b, in, ch, &mean, &var);
    for (int i = 0; i < b->n; i++)
      for (int j = 0; j < b->hw; j++) {
        size_t k = ((size_t)i * b->c + ch) * b->hw + j;
        y[k] = (in[k] - mean) / sqrt(var + EPS) * gamma[ch] + beta[ch];
      }
  }
}

static void run_case(struct bn_case b, float offset, int threads, uint64_t seed) {
  size_t nx = (size_t)b.n * b.c * b.hw, nin = nx + 2 * (size_t)b.c;
  float *in = malloc(nin * sizeof *in), *dy = malloc(nx * sizeof *dy), *y = malloc(nx * 4);
  float *g = malloc(nin * sizeof *g), *rm = malloc(b.c * 4), *rv = malloc(b.c * 4);
  float *smean = malloc(b.c * 4), *srstd = malloc(b.c * 4);
  double *ind = calloc(nin, sizeof *ind), *yd = malloc(nx * 8), *dyd = calloc(nx, sizeof *dyd);
  double *num = malloc(nin * 8), *want_m = malloc(b.c * 8), *want_r = malloc(b.c * 8);
  double *rm_d = malloc(b.c * 8), *rv_d = malloc(b.c * 8);
  gc_fill(in, nx, seed, 1.0f);
  for (size_t i = 0; i < nx; i++)
    in[i] += offset;
  gc_fill(in + nx, b.c, seed + 1, 0.5f); /* gamma around 1 */
  for (int ch = 0; ch < b.c; ch++)
    in[nx + ch] += 1.0f;
  gc_fill(in + nx + b.c, b.c, seed + 2, 0.5f);
  gc_fill(dy, nx, seed + 3, 1.0f);
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];
  for (size_t i = 0; i < nx; i++)
    dyd[i] = dy[i];
  for (int ch = 0; ch < b.c; ch++) {
    rm[ch] = 0.25f * ch, rv[ch] = 1.0f + 0.5f * ch;
    rm_d[ch] = rm[ch], rv_d[ch] = rv[ch];
  }

  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  double cnt = (double)b.n * b.hw;
  int64_t tracked = 5;
  /* Two training steps on the same batch: the running statistics compound. */
  for (int step = 0; step < 2; step++) {
    ops->batchnorm2d_fwd(&ctx, b.n, b.c, b.hw, in, in + nx, in + nx + b.c, rm, rv, &tracked,
                         MOMENTUM, EPS, 1, y, smean, srstd);
    for (int ch = 0; ch < b.c; ch++) {
      double mean, var;
      bn_stats(&b, ind, ch, &mean, &var);
      want_m[ch] = mean;
      want_r[ch] = 1.0 / sqrt(var + EPS);
      rm_d[ch] = (1 - (double)MOMENTUM) * rm_d[ch] + (double)MOMENTUM * mean;
      rv_d[ch] = (1 - (double)MOMENTUM) * rv_d[ch] + (double)MOMENTUM * var * cnt / (cnt - 1);
    }
  }
  TU_CHECK(tracked == 7); /* num_batches_tracked counts training forwards */
  bn_ref(ind, yd, &b);
  /* y = x a + b' with |x a| and |b'| up to (|offset| + 1) * rstd * gamma;
   * each is rounded once before they cancel, so the absolute error is a few
   * ulps of that magnitude: 8 u (|offset| + 1) * 3 (rstd <= 1.8, gamma <=
   * 1.5). 1e-5 relative covers the O(1) results. */
  double atol = 8 * ldexp(1.0, -24) * (fabs(offset) + 1) * 3;
  TU_CHECK(gc_compare("y", y, yd, nx, 1e-5, atol) == 0);
  /* Statistics are accumulated in double and rounded once: 1e-6 relative;
   * the mean's absolute 1e-7 covers channels whose mean is near zero. */
  TU_CHECK(gc_compare("save_mean", smean, want_m, b.c, 1e-6, 1e-7) == 0);
  TU_CHECK(gc_compare("save_rstd", srstd, want_r, b.c, 1e-6, 0) == 0);
  /* Running statistics: a float32 blend per step, two steps: 1e-6 relative
   * (a few roundings), 1e-7 absolute for means near zero. */
  TU_CHECK(gc_compare("running_mean", rm, rm_d, b.c, 1e-6, 1e-7) == 0);
  TU_CHECK(gc_compare("running_var", rv, rv_d, b.c, 1e-6, 1e-7) == 0);

  for (size_t i = 0; i < nin; i++)
    g[i] = GRAD_INIT;
  ops->batchnorm2d_bwd(&ctx, b.n, b.c, b.hw, dy, in, in + nx, smean, srstd, g, g + nx,
                       g + nx + b.c);
  gc_numeric_grad(bn_ref, ind, nin, nx, dyd, &b, 1e-5, num);
  for (size_t i = 0; i < nin; i++)
    num[i] += GRAD_INIT;
  /* gradcheck.h's budget, 1e-4 relative + 1e-5 absolute: sums run in
   * double; the float parts are saved mean/rstd (1 ulp each, scaled by
   * |x - mean| rstd <= ~3.5) and a three-term combination per element. */
  TU_CHECK(gc_compare("dx", g, num, nx, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("dgamma", g + nx, num + nx, b.c, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("dbeta", g + nx + b.c, num + nx + b.c, b.c, 1e-4, 1e-5) == 0);

  /* NULL gradients are skipped: only dgamma again doubles its gradient. */
  ops->batchnorm2d_bwd(&ctx, b.n, b.c, b.hw, dy, in, in + nx, smean, srstd, NULL, g + nx, NULL);
  for (int ch = 0; ch < b.c; ch++)
    num[nx + ch] = 2 * num[nx + ch] - GRAD_INIT;
  TU_CHECK(gc_compare("dgamma twice", g + nx, num + nx, b.c, 1e-4, 1e-5) == 0);

  /* Eval: running statistics, which stay as they are, and save_* untouched. */
  for (int ch = 0; ch < b.c; ch++)
    smean[ch] = srstd[ch] = -7.0f;
  ops->batchnorm2d_fwd(&ctx, b.n, b.c, b.hw, in, in + nx, in + nx + b.c, rm, rv, &tracked, MOMENTUM,
                       EPS, 0, y, smean, srstd);
  TU_CHECK(tracked == 7);
  for (int ch = 0; ch < b.c; ch++) {
    TU_CHECK(smean[ch] == -7.0f && srstd[ch] == -7.0f);
    TU_CLOSE(rm[ch], rm_d[ch], 1e-6, 1e-7);
    for (int i = 0; i < b.n; i++)
      for (int j = 0; j < b.hw; j++) {
        size_t k = ((size_t)i * b.c + ch) * b.hw + j;
        yd[k] =
            ((double)in[k] - rm[ch]) / sqrt((double)rv[ch] + EPS) * in[nx + ch] + in[nx + b.c + ch];
      }
  }
  /* Same budget as the training forward, scale from the running mean. */
  TU_CHECK(gc_compare("y eval", y, yd, nx, 1e-5, atol) == 0);

  free(in), free(dy), free(y), free(g), free(rm), free(rv), free(smean), free(srstd);
  free(ind), free(yd), free(dyd), free(num), free(want_m), free(want_r), free(rm_d), free(rv_d);
}

int main(void) {
  run_case((struct bn_case){4, 3, 5}, 0.0f, 1, 11);
  run_case((struct bn_case){4, 3, 5}, 0.0f, 2, 11);    /* channels not a multiple of threads */
  run_case((struct bn_case){8, 4, 49}, 3.0f, 2, 21);   /* mean far from the first element */
  run_case((struct bn_case){3, 5, 37}, 100.0f, 2, 31); /* |mean| >> std: shifted sums */
  run_case((struct bn_case){2, 2, 1}, -1.0f, 1, 41);   /* hw 1, as after global pooling */
  TU_DONE();
}
