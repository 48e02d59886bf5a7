/* test_grad_layernorm.c — LayerNorm forward (y, saved mean and rstd) against a
 * float64 reference, and backward (dx, dgamma, dbeta) against central
 * differences of that reference, at thread counts 1 and 2. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

struct ln_case {
  int rows, d;
  float eps;
};

/* in = [x (rows, d) | gamma (d) | beta (d)] -> y (rows, d) */
static void ln_ref(const double *in, double *y, void *ud) {
  const struct ln_case *c = ud;
  const double *gamma = in + (size_t)c->rows * c->d, *beta = gamma + c->d;
  for (int r = 0; r < c->rows; r++) {
    const double *xr = in + (size_t)r * c->d;
    double mu = 0, var = 0;
    for (int j = 0; j < c->d; j++)
      mu += xr[j];
    mu /= c->d;
    for (int j = 0; j < c->d; j++)
      var += (xr[j] - mu) * (xr[j] - mu);
    var /= c->d;
    for (int j = 0; j < c->d; j++)
      y[(size_t)r * c->d + j] = (xr[j] - mu) / sqrt(var + c->eps) * gamma[j] + beta[j];
  }
}

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

static void sub_init(float *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    a[i] -= GRAD_INIT;
}

static void run_case(int rows, int d, float offset, int threads, uint64_t seed) {
  struct ln_case c = {rows, d, 1e-5f};
  const size_t nx = (size_t)rows * d, nin = nx + 2 * (size_t)d;
  float *in = malloc(nin * sizeof *in), *w = malloc(nx * sizeof *w);
  float *y = malloc(nx * sizeof *y), *mean = malloc(rows * sizeof *mean);
  float *rstd = malloc(rows * sizeof *rstd), *dgrad = malloc(nin * sizeof *dgrad);
  double *ind = malloc(nin * sizeof *ind), *yd = malloc(nx * sizeof *yd);
  double *wd = malloc(nx * sizeof *wd), *num = malloc(nin * sizeof *num);
  double *mean_d = malloc(rows * sizeof *mean_d), *rstd_d = malloc(rows * sizeof *rstd_d);
  gc_fill(in, nx, seed, 2.0f);
  for (size_t i = 0; i < nx; i++)
    in[i] += offset;
  gc_fill(in + nx, (size_t)d, seed + 1, 0.5f); /* gamma around 1 */
  for (int j = 0; j < d; j++)
    in[nx + j] += 1.0f;
  gc_fill(in + nx + d, (size_t)d, seed + 2, 0.5f);
  gc_fill(w, nx, seed + 3, 1.0f);
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];
  for (size_t i = 0; i < nx; i++)
    wd[i] = w[i];
  for (int r = 0; r < rows; r++) {
    double mu = 0, var = 0;
    for (int j = 0; j < d; j++)
      mu += ind[(size_t)r * d + j];
    mu /= d;
    for (int j = 0; j < d; j++)
      var += pow(ind[(size_t)r * d + j] - mu, 2);
    mean_d[r] = mu;
    rstd_d[r] = 1.0 / sqrt(var / d + c.eps);
  }

  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  ops->layernorm_fwd(&ctx, rows, d, in, in + nx, in + nx + d, c.eps, y, mean, rstd);
  ln_ref(ind, yd, &c);
  /* y: a few float roundings of O(1) values after float64 statistics, so
   * 1e-5 relative; 1e-6 absolute for outputs near 0 where gamma xhat and beta
   * (each O(1), rounded) cancel. mean/rstd: one rounding of a double, 1e-6. */
  TU_CHECK(gc_compare("y", y, yd, nx, 1e-5, 1e-6) == 0);
  TU_CHECK(gc_compare("mean", mean, mean_d, rows, 1e-6, 1e-7) == 0);
  TU_CHECK(gc_compare("rstd", rstd, rstd_d, rows, 1e-6, 0) == 0);

  for (size_t i = 0; i < nin; i++)
    dgrad[i] = GRAD_INIT;
  ops->layernorm_bwd(&ctx, rows, d, w, in, in + nx, mean, rstd, dgrad, dgrad + nx, dgrad + nx + d);
  sub_init(dgrad, nin);
  gc_numeric_grad(ln_ref, ind, nin, nx, wd, &c, 1e-5, num);
  /* gradcheck.h's float32 budget: reductions of length <= max(rows, d) = 64,
   * 1e-4 relative + 1e-5 absolute. */
  TU_CHECK(gc_compare("dx", dgrad, num, nx, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("dgamma", dgrad + nx, num + nx, d, 1e-4, 1e-5) == 0);
  TU_CHECK(gc_compare("dbeta", dgrad + nx + d, num + nx + d, d, 1e-4, 1e-5) == 0);

  /* NULL gradients are skipped and the others still accumulate: a second
   * call with only dgamma doubles it. */
  for (int j = 0; j < d; j++)
    dgrad[nx + j] += GRAD_INIT;
  ops->layernorm_bwd(&ctx, rows, d, w, in, in + nx, mean, rstd, NULL, dgrad + nx, NULL);
  for (int j = 0; j < d; j++) {
    dgrad[nx + j] -= GRAD_INIT;
    num[nx + j] *= 2;
  }
  TU_CHECK(gc_compare("dgamma twice", dgrad + nx, num + nx, d, 1e-4, 1e-5) == 0);

  free(in), free(w), free(y), free(mean), free(rstd), free(dgrad);
  free(ind), free(yd), free(wd), free(num), free(mean_d), free(rstd_d);
}

int main(void) {
  run_case(5, 7, 0.0f, 1, 11);    /* odd width, one partial column block */
  run_case(6, 64, 3.0f, 2, 21);   /* the models' width, rows mean ~3 */
  run_case(33, 40, -1.0f, 2, 31); /* rows not a multiple of the thread count */
  TU_DONE();
}
