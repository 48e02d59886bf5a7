/* test_grad_dropout.c — dropout's keep mask is ops_dropout_keep of the
 * stream, its frequency is 1 - p on a large n, kept values are scaled by
 * 1/(1-p) and dropped ones are 0, p = 0 copies; the backward matches central
 * differences of a float64 reference using the same mask; 1 and 2 threads
 * give the same bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

struct drop_case {
  size_t n;
  float p;
  struct rng_stream rng;
};

static void drop_ref(const double *x, double *y, void *ud) {
  const struct drop_case *c = ud;
  for (size_t i = 0; i < c->n; i++)
    y[i] = ops_dropout_keep(c->rng.key, c->rng.counter, i, c->p) ? x[i] / (1.0 - c->p) : 0.0;
}

static void check_large(float p, struct rng_stream rng) {
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx one = {.threads = 1}, two = {.threads = 2};
  const size_t n = 1000003;
  float *x = malloc(n * sizeof *x), *y1 = malloc(n * sizeof *y1), *y2 = malloc(n * sizeof *y2);
  float *dx1 = calloc(n, sizeof *dx1), *dx2 = calloc(n, sizeof *dx2);
  uint8_t *k1 = malloc(n), *k2 = malloc(n);
  gc_fill(x, n, 5, 1.0f);
  ops->dropout_fwd(&one, n, p, rng, x, y1, k1);
  ops->dropout_fwd(&two, n, p, rng, x, y2, k2);
  TU_CHECK(memcmp(y1, y2, n * sizeof *y1) == 0);
  TU_CHECK(memcmp(k1, k2, n) == 0);
  const float sc = 1.0f / (1.0f - p);
  size_t kept = 0;
  int bad_mask = 0, bad_y = 0, bad_dx = 0;
  for (size_t i = 0; i < n; i++) {
    kept += k1[i];
    bad_mask += k1[i] != ops_dropout_keep(rng.key, rng.counter, i, p);
    bad_y += y1[i] != (k1[i] ? x[i] * sc : 0.0f);
  }
  TU_CHECK(bad_mask == 0);
  TU_CHECK(bad_y == 0);
  /* Binomial(n, 1-p): standard deviation sqrt(p(1-p)/n) <= 5e-4 of the
   * fraction; 6 sigma would be a broken generator, not bad luck. */
  const double frac = (double)kept / n, sigma = sqrt(p * (1.0 - p) / n);
  TU_CLOSE(frac, 1.0 - p, 0, 6 * sigma);

  ops->dropout_bwd(&one, n, p, x, k1, dx1);
  ops->dropout_bwd(&two, n, p, x, k1, dx2);
  TU_CHECK(memcmp(dx1, dx2, n * sizeof *dx1) == 0);
  for (size_t i = 0; i < n; i++)
    bad_dx += dx1[i] != (k1[i] ? x[i] * sc : 0.0f);
  TU_CHECK(bad_dx == 0);
  free(x), free(y1), free(y2), free(dx1), free(dx2), free(k1), free(k2);
}

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

static void check_grad(float p) {
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = 1};
  struct drop_case c = {300, p, {77, 12}};
  float x[300], y[300], w[300], dx[300];
  uint8_t keep[300];
  double xd[300], yd[300], wd[300], num[300];
  gc_fill(x, c.n, 8, 2.0f);
  gc_fill(w, c.n, 9, 1.0f);
  for (size_t i = 0; i < c.n; i++)
    xd[i] = x[i], wd[i] = w[i], dx[i] = GRAD_INIT;
  ops->dropout_fwd(&ctx, c.n, p, c.rng, x, y, keep);
  drop_ref(xd, yd, &c);
  /* one float rounding of x/(1-p) */
  TU_CHECK(gc_compare("y", y, yd, c.n, 1e-6, 0) == 0);
  ops->dropout_bwd(&ctx, c.n, p, w, keep, dx);
  for (size_t i = 0; i < c.n; i++)
    dx[i] -= GRAD_INIT;
  gc_numeric_grad(drop_ref, xd, c.n, c.n, wd, &c, 1e-5, num);
  /* no reduction: gradcheck.h's 1e-4/1e-5 is loose here */
  TU_CHECK(gc_compare("dx", dx, num, c.n, 1e-4, 1e-5) == 0);
}

int main(void) {
  check_large(0.1f, (struct rng_stream){42, 0});
  check_large(0.5f, (struct rng_stream){42, 1});
  check_grad(0.1f);
  check_grad(0.0f);

  /* p = 0: y is a copy, keep all 1, backward the identity. */
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = 2};
  float x[5] = {1, -2, 3, -4, 5}, y[5], dx[5] = {0};
  uint8_t keep[5] = {0};
  ops->dropout_fwd(&ctx, 5, 0.0f, (struct rng_stream){1, 2}, x, y, keep);
  TU_CHECK(memcmp(x, y, sizeof x) == 0);
  for (int i = 0; i < 5; i++)
    TU_CHECK(keep[i] == 1);
  ops->dropout_bwd(&ctx, 5, 0.0f, x, keep, dx);
  TU_CHECK(memcmp(x, dx, sizeof x) == 0);

  /* Another counter of the same key gives a different mask: the step's
   * counter really reaches the kernel. */
  uint8_t ka[64], kb[64];
  float xa[64], ya[64];
  gc_fill(xa, 64, 3, 1.0f);
  ops->dropout_fwd(&ctx, 64, 0.5f, (struct rng_stream){9, 0}, xa, ya, ka);
  ops->dropout_fwd(&ctx, 64, 0.5f, (struct rng_stream){9, 1}, xa, ya, kb);
  TU_CHECK(memcmp(ka, kb, sizeof ka) != 0);
  TU_DONE();
}
