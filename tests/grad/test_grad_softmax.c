/* test_grad_softmax.c — softmax over the last axis against a float64
 * reference and central differences of it, including rows shifted by 1000
 * (overflow without max subtraction), -inf entries (probability 0), a
 * single column, and the documented NaN row when every entry is -inf. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

struct sm_case {
  int rows, cols;
};

static void sm_ref(const double *x, double *y, void *ud) {
  const struct sm_case *c = ud;
  for (int r = 0; r < c->rows; r++) {
    const double *xr = x + (size_t)r * c->cols;
    double *yr = y + (size_t)r * c->cols, m = -INFINITY, s = 0;
    for (int j = 0; j < c->cols; j++)
      m = fmax(m, xr[j]);
    for (int j = 0; j < c->cols; j++)
      s += exp(xr[j] - m);
    for (int j = 0; j < c->cols; j++)
      yr[j] = exp(xr[j] - m) / s;
  }
}

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

static void run_case(int rows, int cols, int threads, uint64_t seed) {
  struct sm_case c = {rows, cols};
  const size_t n = (size_t)rows * cols;
  float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), *y = malloc(n * sizeof *y);
  float *dx = malloc(n * sizeof *dx);
  double *xd = malloc(n * sizeof *xd), *yd = malloc(n * sizeof *yd);
  double *wd = malloc(n * sizeof *wd), *num = malloc(n * sizeof *num);
  gc_fill(x, n, seed, 3.0f);
  gc_fill(w, n, seed + 1, 1.0f);
  /* Row 0 shifted far up: expf(1000) overflows unless the max is removed. */
  for (int j = 0; j < cols; j++)
    x[j] += 1000.0f;
  /* Row 1 has a masked entry when there is another to keep it finite. */
  if (rows > 1 && cols > 1) x[cols + cols / 2] = -INFINITY;
  for (size_t i = 0; i < n; i++)
    xd[i] = x[i], wd[i] = w[i];

  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  ops->softmax_fwd(&ctx, rows, cols, x, y);
  sm_ref(xd, yd, &c);
  /* Float exp and a float normalisation of values in (0, 1]: 1e-6 relative
   * (exp rounding is relative to each element, so no absolute term is
   * needed beyond 1e-9 for exact zeros). */
  TU_CHECK(gc_compare("y", y, yd, n, 1e-6, 1e-9) == 0);
  if (rows > 1 && cols > 1) TU_CHECK(y[cols + cols / 2] == 0.0f);

  for (size_t i = 0; i < n; i++)
    dx[i] = GRAD_INIT;
  ops->softmax_bwd(&ctx, rows, cols, y, w, dx);
  for (size_t i = 0; i < n; i++)
    dx[i] -= GRAD_INIT;
  gc_numeric_grad(sm_ref, xd, n, n, wd, &c, 1e-5, num);
  /* gradcheck.h's budget: reductions of length cols <= 100. */
  TU_CHECK(gc_compare("dx", dx, num, n, 1e-4, 1e-5) == 0);

  /* In place (y == x) gives the same bytes. */
  float *xi = malloc(n * sizeof *xi);
  memcpy(xi, x, n * sizeof *xi);
  ops->softmax_fwd(&ctx, rows, cols, xi, xi);
  TU_CHECK(memcmp(xi, y, n * sizeof *y) == 0);
  free(x), free(w), free(y), free(dx), free(xi), free(xd), free(yd), free(wd), free(num);
}

int main(void) {
  run_case(5, 9, 1, 1);
  run_case(7, 100, 2, 2);
  run_case(4, 1, 2, 3); /* one column: probability 1, gradient 0 */

  /* All -inf: NaN across the row (as torch.softmax), never stale values. */
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = 1};
  float x[3] = {-INFINITY, -INFINITY, -INFINITY}, y[3] = {0.25f, 0.25f, 0.5f};
  ops->softmax_fwd(&ctx, 1, 3, x, y);
  TU_CHECK(isnan(y[0]) && isnan(y[1]) && isnan(y[2]));
  TU_DONE();
}
