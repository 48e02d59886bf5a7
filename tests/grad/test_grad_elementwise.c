/* test_grad_elementwise.c — add, axpy, scale, batched transpose (forward,
 * and backward by central differences) and the sum of squares, on sizes
 * below and above the threading threshold, at thread counts 1 and 2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

static void run_arith(size_t n, int threads, uint64_t seed) {
  float *a = malloc(n * 4), *b = malloc(n * 4), *y = malloc(n * 4);
  gc_fill(a, n, seed, 1.0f);
  gc_fill(b, n, seed + 1, 1.0f);
  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  const float alpha = -0.3f;

  /* A float32 add or multiply is correctly rounded: one rounding of the
   * exact double result, so these are exact equalities. */
  ops->add_fwd(&ctx, n, a, b, y);
  for (size_t i = 0; i < n; i++)
    TU_CHECK(y[i] == (float)((double)a[i] + b[i]));
  memcpy(y, b, n * 4);
  ops->scale(&ctx, n, alpha, y);
  for (size_t i = 0; i < n; i++)
    TU_CHECK(y[i] == (float)((double)alpha * b[i]));

  /* axpy: alpha x then the add, two roundings (one if contracted to an
   * FMA): 2 u of |y| + |alpha x|. */
  memcpy(y, b, n * 4);
  ops->axpy(&ctx, n, alpha, a, y);
  double u = ldexp(1.0, -24);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double want = (double)b[i] + (double)alpha * a[i];
    bad += !(fabs(y[i] - want) <= 2 * u * (fabs(b[i]) + fabs((double)alpha * a[i])));
  }
  TU_CHECK(bad == 0);
  free(a), free(b), free(y);
}

struct tr_case {
  int b, r, c;
};

/* x (b, r, c) -> y (b, c, r) */
static void transpose_ref(const double *x, double *y, void *ud) {
  const struct tr_case *t = ud;
  for (int k = 0; k < t->b; k++)
    for (int i = 0; i < t->r; i++)
      for (int j = 0; j < t->c; j++)
        y[((size_t)k * t->c + j) * t->r + i] = x[((size_t)k * t->r + i) * t->c + j];
}

static void run_transpose(struct tr_case t, int threads, int numeric, uint64_t seed) {
  size_t n = (size_t)t.b * t.r * t.c;
  float *x = malloc(n * 4), *y = malloc(n * 4), *dy = malloc(n * 4), *dx = malloc(n * 4);
  double *xd = calloc(n, 8), *yd = malloc(n * 8), *dyd = calloc(n, 8), *num = malloc(n * 8);
  gc_fill(x, n, seed, 1.0f);
  gc_fill(dy, n, seed + 1, 1.0f);
  for (size_t i = 0; i < n; i++)
    xd[i] = x[i], dyd[i] = dy[i];
  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();

  ops->transpose_fwd(&ctx, t.b, t.r, t.c, x, y);
  transpose_ref(xd, yd, &t);
  TU_CHECK(gc_compare("transpose y", y, yd, n, 0, 0) == 0); /* a copy: exact */

  for (size_t i = 0; i < n; i++)
    dx[i] = GRAD_INIT;
  ops->transpose_bwd(&ctx, t.b, t.r, t.c, dy, dx);
  if (numeric) {
    gc_numeric_grad(transpose_ref, xd, n, n, dyd, &t, 1e-5, num);
  } else {
    /* dx[k, i, j] = dy[k, j, i]: the transpose of dy back to (b, r, c). */
    struct tr_case back = {t.b, t.c, t.r};
    transpose_ref(dyd, num, &back);
  }
  /* One float32 add onto GRAD_INIT: u relative; central differences of a
   * copy are exact to ~1e-11. */
  for (size_t i = 0; i < n; i++)
    num[i] += GRAD_INIT;
  TU_CHECK(gc_compare("transpose dx", dx, num, n, 1e-7, 1e-9) == 0);
  free(x), free(y), free(dy), free(dx), free(xd), free(yd), free(dyd), free(num);
}

/* grad_clip: the norm (double sum of exact squares: n 2^-53 relative) decides
 * between leaving the gradient, scaling it to max_norm, and the guard. */
static void run_clip(size_t n, uint64_t seed) {
  float *x = malloc(n * 4), *g = malloc(n * 4);
  gc_fill(x, n, seed, 3.0f);
  double want = 0;
  for (size_t i = 0; i < n; i++)
    want += (double)x[i] * x[i];
  want = sqrt(want);
  const struct ops_backend *ops = ops_cpu();
  const float loss = 1.5f, nan_loss = NAN;
  for (int threads = 1; threads <= 2; threads++) {
    struct ops_ctx ctx = {.threads = threads};
    int64_t bad[2] = {-1, -1}, steps[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    /* Above the norm: untouched, bitwise. */
    memcpy(g, x, n * 4);
    ops->grad_clip(&ctx, n, g, (float)(want * 1.01), &loss, &steps[3], bad);
    TU_CHECK(memcmp(g, x, n * 4) == 0 && bad[0] == -1);
    /* Half the norm: every element scaled by one float factor, whose
     * rounding and the norm's give 1e-6 relative. */
    const float half = (float)(want / 2);
    ops->grad_clip(&ctx, n, g, half, &loss, &steps[4], bad);
    for (size_t i = 0; i < n; i++)
      TU_CLOSE(g[i], x[i] * (half / (want + 1e-6)), 1e-6, 1e-30);
    TU_CHECK(bad[0] == -1);
    /* A non-finite loss, then a non-finite gradient: the first one stays. */
    memcpy(g, x, n * 4);
    ops->grad_clip(&ctx, n, g, half, &nan_loss, &steps[5], bad);
    TU_CHECK(bad[0] == 5 && bad[1] == 1 && memcmp(g, x, n * 4) == 0);
    g[n / 2] = INFINITY;
    ops->grad_clip(&ctx, n, g, half, &loss, &steps[6], bad);
    TU_CHECK(bad[0] == 5 && bad[1] == 1);
    bad[0] = bad[1] = -1;
    ops->grad_clip(&ctx, n, g, 0.0f, &loss, &steps[7], bad);
    TU_CHECK(bad[0] == 7 && bad[1] == 2);
  }
  free(x), free(g);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    run_arith(1001, threads, 10 + threads);   /* below the threading threshold */
    run_arith(100003, threads, 20 + threads); /* above, odd length */
    run_transpose((struct tr_case){2, 3, 5}, threads, 1, 30 + threads);
    run_transpose((struct tr_case){3, 33, 40}, threads, 1, 40 + threads);  /* partial tiles */
    run_transpose((struct tr_case){4, 130, 67}, threads, 0, 50 + threads); /* threaded */
  }
  run_clip(7, 61);
  run_clip(100003, 62);
  TU_DONE();
}
