/* test_grad_pool.c — MaxPool2d (values, argmax indices with torch's tie and
 * NaN rules, backward accumulation for overlapping and disjoint windows),
 * mean over the middle axis and mean over the last axis, forward against
 * float64 references and backward against central differences; thread
 * counts 1 and 2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

struct pool_case {
  int n, c, h, w, k, s;
};

static int out_dim(int len, int k, int s) { return (len - k) / s + 1; }

/* x (n, c, h, w) -> y (n, c, oh, ow): the maximum, and in *idx (when given)
 * the first window position, in row-major order, that holds it. */
static void maxpool_ref_idx(const struct pool_case *p, const double *x, double *y, int *idx) {
  int oh = out_dim(p->h, p->k, p->s), ow = out_dim(p->w, p->k, p->s);
  for (long pl = 0; pl < (long)p->n * p->c; pl++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        int bi = -1;
        double best = 0;
        for (int ki = 0; ki < p->k; ki++)
          for (int kj = 0; kj < p->k; kj++) {
            int i = (oy * p->s + ki) * p->w + ox * p->s + kj;
            double v = x[pl * p->h * p->w + i];
            if (bi < 0 || v > best) best = v, bi = i;
          }
        y[(pl * oh + oy) * ow + ox] = best;
        if (idx) idx[(pl * oh + oy) * ow + ox] = bi;
      }
}

static void maxpool_ref(const double *x, double *y, void *ud) { maxpool_ref_idx(ud, x, y, NULL); }

static void run_maxpool(struct pool_case p, int threads, int ties, uint64_t seed) {
  int oh = out_dim(p.h, p.k, p.s), ow = out_dim(p.w, p.k, p.s);
  size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * oh * ow;
  float *x = malloc(nx * 4), *y = malloc(ny * 4), *dy = malloc(ny * 4), *dx = malloc(nx * 4);
  int32_t *idx = malloc(ny * sizeof *idx);
  int *idx_ref = malloc(ny * sizeof *idx_ref);
  double *xd = calloc(nx, 8), *yd = malloc(ny * 8), *dyd = calloc(ny, 8), *num = malloc(nx * 8);
  gc_fill(x, nx, seed, 1.0f);
  /* Ties: three levels only, so most windows hold their maximum twice. */
  if (ties)
    for (size_t i = 0; i < nx; i++)
      x[i] = roundf(x[i]);
  gc_fill(dy, ny, seed + 1, 1.0f);
  for (size_t i = 0; i < nx; i++)
    xd[i] = x[i];
  for (size_t i = 0; i < ny; i++)
    dyd[i] = dy[i];

  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  ops->maxpool2d_fwd(&ctx, p.n, p.c, p.h, p.w, p.k, p.s, x, y, idx);
  maxpool_ref_idx(&p, xd, yd, idx_ref);
  /* A maximum is one of its inputs: exact. */
  TU_CHECK(gc_compare("maxpool y", y, yd, ny, 0, 0) == 0);
  for (size_t i = 0; i < ny; i++)
    TU_CHECK(idx[i] == idx_ref[i]);

  for (size_t i = 0; i < nx; i++)
    dx[i] = GRAD_INIT;
  ops->maxpool2d_bwd(&ctx, p.n, p.c, p.h, p.w, p.k, p.s, dy, idx, dx);
  if (ties) {
    /* Not differentiable at ties: the gradient goes to the first maximum. */
    for (size_t i = 0; i < nx; i++)
      num[i] = GRAD_INIT;
    for (size_t i = 0; i < ny; i++) {
      size_t plane = i / ((size_t)oh * ow);
      num[plane * p.h * p.w + idx_ref[i]] += dy[i];
    }
  } else {
    /* Distinct values (gaps >> h): central differences are exact up to
     * rounding, ~1e-11. */
    gc_numeric_grad(maxpool_ref, xd, nx, ny, dyd, &p, 1e-5, num);
    for (size_t i = 0; i < nx; i++)
      num[i] += GRAD_INIT;
  }
  /* An input collects at most k*k float32 adds (overlapping windows) onto
   * GRAD_INIT: (k*k + 1) u relative to sums of O(1) values, 1e-6 covers it. */
  TU_CHECK(gc_compare("maxpool dx", dx, num, nx, 1e-6, 1e-6) == 0);

  free(x), free(y), free(dy), free(dx), free(idx), free(idx_ref);
  free(xd), free(yd), free(dyd), free(num);
}

/* NaN propagates as in torch (a NaN in the window is the maximum). */
static void run_maxpool_nan(void) {
  float x[16];
  for (int i = 0; i < 16; i++)
    x[i] = (float)i;
  x[5] = NAN;
  float y[4];
  int32_t idx[4];
  struct ops_ctx ctx = {.threads = 1};
  ops_cpu()->maxpool2d_fwd(&ctx, 1, 1, 4, 4, 2, 2, x, y, idx);
  TU_CHECK(isnan(y[0]) && idx[0] == 5);
  TU_CHECK(y[1] == 7.0f && idx[1] == 7);
  TU_CHECK(y[3] == 15.0f && idx[3] == 15);
  /* Two NaNs: the last one scanned (torch's `val > max || isnan(val)`); a
   * window of -inf: its first element. */
  x[10] = NAN, x[11] = NAN;
  x[2] = x[3] = x[6] = x[7] = -INFINITY; /* the window (0, 1) */
  ops_cpu()->maxpool2d_fwd(&ctx, 1, 1, 4, 4, 2, 2, x, y, idx);
  TU_CHECK(isnan(y[3]) && idx[3] == 11);
  TU_CHECK(isinf(y[1]) && y[1] < 0 && idx[1] == 2);
  /* Inference passes no idx: the same maxima. */
  float y2[4];
  ops_cpu()->maxpool2d_fwd(&ctx, 1, 1, 4, 4, 2, 2, x, y2, NULL);
  for (int i = 0; i < 4; i++)
    TU_CHECK(memcmp(&y2[i], &y[i], sizeof y[i]) == 0);
}

struct mean_case {
  int b, t, d;
};

/* x (b, t, d) -> y (b, d), mean over t. */
static void mean_mid_ref(const double *x, double *y, void *ud) {
  const struct mean_case *m = ud;
  for (int i = 0; i < m->b; i++)
    for (int j = 0; j < m->d; j++) {
      double s = 0;
      for (int r = 0; r < m->t; r++)
        s += x[((size_t)i * m->t + r) * m->d + j];
      y[(size_t)i * m->d + j] = s / m->t;
    }
}

/* x (rows = b, cols = t*d) -> y (rows), mean over the row. */
static void mean_last_ref(const double *x, double *y, void *ud) {
  const struct mean_case *m = ud;
  int cols = m->t * m->d;
  for (int i = 0; i < m->b; i++) {
    double s = 0;
    for (int j = 0; j < cols; j++)
      s += x[(size_t)i * cols + j];
    y[i] = s / cols;
  }
}

static void run_means(struct mean_case m, int threads, uint64_t seed) {
  size_t nx = (size_t)m.b * m.t * m.d, nmid = (size_t)m.b * m.d, nlast = m.b;
  float *x = malloc(nx * 4), *y = malloc(nmid * 4), *dy = malloc(nmid * 4), *dx = malloc(nx * 4);
  double *xd = calloc(nx, 8), *yd = malloc(nmid * 8), *dyd = calloc(nmid, 8), *num = malloc(nx * 8);
  gc_fill(x, nx, seed, 1.0f);
  gc_fill(dy, nmid, seed + 1, 1.0f);
  for (size_t i = 0; i < nx; i++)
    xd[i] = x[i];
  for (size_t i = 0; i < nmid; i++)
    dyd[i] = dy[i];
  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();

  ops->mean_mid_fwd(&ctx, m.b, m.t, m.d, x, y);
  mean_mid_ref(xd, yd, &m);
  /* mean_mid sums t float32 values of O(1) in float: t u absolute on the
   * sum, divided by t: ~u per element; 1e-6 absolute (t <= 64) covers it. */
  TU_CHECK(gc_compare("mean_mid y", y, yd, nmid, 1e-6, 1e-6) == 0);
  for (size_t i = 0; i < nx; i++)
    dx[i] = GRAD_INIT;
  ops->mean_mid_bwd(&ctx, m.b, m.t, m.d, dy, dx);
  gc_numeric_grad(mean_mid_ref, xd, nx, nmid, dyd, &m, 1e-5, num);
  for (size_t i = 0; i < nx; i++)
    num[i] += GRAD_INIT;
  /* One division and one add per element. */
  TU_CHECK(gc_compare("mean_mid dx", dx, num, nx, 1e-6, 1e-7) == 0);

  int cols = m.t * m.d;
  ops->mean_last_fwd(&ctx, m.b, cols, x, y);
  mean_last_ref(xd, yd, &m);
  /* Summed in double, rounded once. */
  TU_CHECK(gc_compare("mean_last y", y, yd, nlast, 1e-6, 1e-7) == 0);
  for (size_t i = 0; i < nx; i++)
    dx[i] = GRAD_INIT;
  ops->mean_last_bwd(&ctx, m.b, cols, dy, dx);
  gc_numeric_grad(mean_last_ref, xd, nx, nlast, dyd, &m, 1e-5, num);
  for (size_t i = 0; i < nx; i++)
    num[i] += GRAD_INIT;
  TU_CHECK(gc_compare("mean_last dx", dx, num, nx, 1e-6, 1e-7) == 0);

  free(x), free(y), free(dy), free(dx), free(xd), free(yd), free(dyd), free(num);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    uint64_t s = 10 * threads;
    run_maxpool((struct pool_case){2, 3, 8, 8, 2, 2}, threads, 0, s + 1); /* the models' 2x2 */
    run_maxpool((struct pool_case){2, 3, 7, 9, 2, 2}, threads, 0, s + 2); /* floor drops edges */
    run_maxpool((struct pool_case){1, 3, 9, 8, 3, 2}, threads, 0, s + 3); /* overlapping */
    run_maxpool((struct pool_case){3, 2, 6, 7, 3, 1}, threads, 1, s + 4); /* overlap, ties */
    run_maxpool((struct pool_case){2, 2, 8, 6, 2, 2}, threads, 1, s + 5); /* disjoint, ties */
    run_means((struct mean_case){3, 5, 7}, threads, s + 6);
    run_means((struct mean_case){4, 64, 9}, threads, s + 7);
  }
  run_maxpool_nan();
  TU_DONE();
}
