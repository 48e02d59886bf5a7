/* test_grad_act.c — ReLU, SiLU and exact GELU against float64 references
 * (forward) and central differences of them (backward); ReLU's gradient at
 * exactly 0 is torch's 0; thread counts give bitwise-identical results. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

struct act_case {
  enum act_kind kind;
  size_t n;
};

static double act_ref1(enum act_kind kind, double x) {
  switch (kind) {
  case ACT_RELU:
    return x > 0 ? x : 0;
  case ACT_SILU:
    return x / (1 + exp(-x));
  case ACT_GELU:
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  }
  return NAN;
}

static void act_ref(const double *x, double *y, void *ud) {
  const struct act_case *c = ud;
  for (size_t i = 0; i < c->n; i++)
    y[i] = act_ref1(c->kind, x[i]);
}

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

/* Elements in the reference check: odd, so no vector width divides it. */
enum { SMALL = 257 };

static void check_kind(enum act_kind kind, const char *name) {
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx one = {.threads = 1}, two = {.threads = 2};

  /* Small case against the reference. Central differences are wrong within
   * h of ReLU's kink, so keep |x| >= 1e-3 there (exactly 0 is checked
   * below). */
  struct act_case c = {kind, SMALL};
  float x[SMALL], w[SMALL], y[SMALL], dx[SMALL];
  double xd[SMALL], yd[SMALL], wd[SMALL], num[SMALL];
  gc_fill(x, c.n, 100 + kind, 5.0f);
  gc_fill(w, c.n, 200 + kind, 1.0f);
  for (size_t i = 0; i < c.n; i++) {
    if (fabsf(x[i]) < 1e-3f) x[i] = 1e-3f;
    xd[i] = x[i];
    wd[i] = w[i];
  }
  ops->act_fwd(&one, kind, c.n, x, y);
  act_ref(xd, yd, &c);
  /* expf/erff are accurate to a few ulp: 1e-6 relative; GELU's 1 + erf(x)
   * cancels for x << 0, leaving ~1e-7 absolute error on tiny outputs. */
  TU_CHECK(gc_compare(name, y, yd, c.n, 1e-6, 1e-6) == 0);
  for (size_t i = 0; i < c.n; i++)
    dx[i] = GRAD_INIT;
  ops->act_bwd(&one, kind, c.n, x, w, dx);
  for (size_t i = 0; i < c.n; i++)
    dx[i] -= GRAD_INIT;
  gc_numeric_grad(act_ref, xd, c.n, c.n, wd, &c, 1e-5, num);
  /* No reductions: a few float roundings, within gradcheck.h's 1e-4/1e-5. */
  TU_CHECK(gc_compare(name, dx, num, c.n, 1e-4, 1e-5) == 0);

  /* Large case (parallel path): 1 and 2 threads bitwise equal. */
  const size_t n = 100003;
  float *xl = malloc(n * sizeof *xl), *dyl = malloc(n * sizeof *dyl);
  float *y1 = malloc(n * sizeof *y1), *y2 = malloc(n * sizeof *y2);
  float *d1 = calloc(n, sizeof *d1), *d2 = calloc(n, sizeof *d2);
  gc_fill(xl, n, 300 + kind, 6.0f);
  gc_fill(dyl, n, 400 + kind, 1.0f);
  ops->act_fwd(&one, kind, n, xl, y1);
  ops->act_fwd(&two, kind, n, xl, y2);
  ops->act_bwd(&one, kind, n, xl, dyl, d1);
  ops->act_bwd(&two, kind, n, xl, dyl, d2);
  TU_CHECK(memcmp(y1, y2, n * sizeof *y1) == 0);
  TU_CHECK(memcmp(d1, d2, n * sizeof *d1) == 0);
  free(xl), free(dyl), free(y1), free(y2), free(d1), free(d2);
}

int main(void) {
  check_kind(ACT_RELU, "relu");
  check_kind(ACT_SILU, "silu");
  check_kind(ACT_GELU, "gelu");

  /* ReLU at exactly 0: output 0 and gradient 0 (torch: x > 0 ? dy : 0). */
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx one = {.threads = 1};
  float z[2] = {0.0f, -0.0f}, yz[2], dyz[2] = {1.0f, 1.0f}, dz[2] = {0.0f, 0.0f};
  ops->act_fwd(&one, ACT_RELU, 2, z, yz);
  ops->act_bwd(&one, ACT_RELU, 2, z, dyz, dz);
  TU_CHECK(yz[0] == 0.0f && yz[1] == 0.0f);
  TU_CHECK(dz[0] == 0.0f && dz[1] == 0.0f);

  /* GELU and SiLU at 0: value 0, slope 1/2 (both are x * (1/2 + O(x))). */
  float g0 = 0.0f, gy, gd = 0.0f, one_f = 1.0f;
  ops->act_fwd(&one, ACT_GELU, 1, &g0, &gy);
  ops->act_bwd(&one, ACT_GELU, 1, &g0, &one_f, &gd);
  TU_CHECK(gy == 0.0f);
  TU_CLOSE(gd, 0.5, 0, 1e-7);
  gd = 0.0f;
  ops->act_fwd(&one, ACT_SILU, 1, &g0, &gy);
  ops->act_bwd(&one, ACT_SILU, 1, &g0, &one_f, &gd);
  TU_CHECK(gy == 0.0f);
  TU_CLOSE(gd, 0.5, 0, 1e-7);
  TU_DONE();
}
