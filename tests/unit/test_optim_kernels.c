/* test_optim_kernels.c — Adam (L2 weight decay), AdamW (decoupled) and SGD
 * (with and without momentum and weight decay) over several steps against
 * float64 implementations of torch.optim's update formulas, on buffers below
 * and above the threading threshold, at thread counts 1 and 2; subnormal
 * moments flush to zero. */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops_shared.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

#define STEPS 6

/* Each step the float32 update rounds ~10 intermediate values of relative
 * size O(1) to the step; the parameters drift from the float64 reference by
 * at most STEPS * 10 u * |update| + STEPS u |p| ~ 1e-6 relative: 1e-5
 * relative + 1e-7 absolute (for entries near zero) is a safe bound. The
 * moment estimates are blends of O(1) gradients: same budget. */
#define RTOL 1e-5
#define ATOL 1e-7

static void run_adam(size_t n, int threads, int decoupled, float wd, uint64_t seed) {
  float *p = malloc(n * 4), *g = malloc(n * 4), *m = calloc(n, 4), *v = calloc(n, 4);
  double *pd = malloc(n * 8), *md = calloc(n, 8), *vd = calloc(n, 8);
  gc_fill(p, n, seed, 1.0f);
  for (size_t i = 0; i < n; i++)
    pd[i] = p[i];
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  struct ops_ctx ctx = {.threads = threads};
  for (long step = 1; step <= STEPS; step++) {
    gc_fill(g, n, seed + 100 + step, 1.0f);
    float h[OPS_HYPER_LEN];
    ops_adam_hyper(lr, b1, b2, step, h);
    ops_cpu()->adam_step(&ctx, n, p, g, m, v, h, b2, eps, wd, decoupled);
    /* torch.optim.Adam / AdamW (single-tensor path) in float64, with the
     * hyper-parameters as the float32 values the kernel receives. */
    double bc1 = 1 - pow(b1, (double)step), bc2 = 1 - pow(b2, (double)step);
    for (size_t i = 0; i < n; i++) {
      double gi = g[i];
      if (decoupled)
        pd[i] *= 1 - (double)lr * wd;
      else
        gi += (double)wd * pd[i];
      md[i] = b1 * md[i] + (1 - (double)b1) * gi;
      vd[i] = b2 * vd[i] + (1 - (double)b2) * gi * gi;
      pd[i] -= (double)lr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
    }
  }
  TU_CHECK(gc_compare("adam p", p, pd, n, RTOL, ATOL) == 0);
  TU_CHECK(gc_compare("adam m", m, md, n, RTOL, ATOL) == 0);
  TU_CHECK(gc_compare("adam v", v, vd, n, RTOL, ATOL) == 0);
  free(p), free(g), free(m), free(v), free(pd), free(md), free(vd);
}

static void run_sgd(size_t n, int threads, float momentum, float wd, uint64_t seed) {
  float *p = malloc(n * 4), *g = malloc(n * 4), *buf = malloc(n * 4);
  double *pd = malloc(n * 8), *bd = calloc(n, 8);
  gc_fill(p, n, seed, 1.0f);
  /* The first step must overwrite buf, not blend stale contents. */
  gc_fill(buf, n, seed + 1, 100.0f);
  for (size_t i = 0; i < n; i++)
    pd[i] = p[i];
  const float lr = 0.05f;
  struct ops_ctx ctx = {.threads = threads};
  for (long step = 1; step <= STEPS; step++) {
    gc_fill(g, n, seed + 100 + step, 1.0f);
    float h[OPS_HYPER_LEN];
    ops_sgd_hyper(lr, step, h);
    ops_cpu()->sgd_step(&ctx, n, p, g, buf, h, momentum, wd);
    /* torch.optim.SGD, dampening 0, nesterov off, in float64. */
    for (size_t i = 0; i < n; i++) {
      double d = g[i] + (double)wd * pd[i];
      if (momentum != 0.0f) {
        bd[i] = step == 1 ? d : momentum * bd[i] + d;
        d = bd[i];
      }
      pd[i] -= (double)lr * d;
    }
  }
  TU_CHECK(gc_compare("sgd p", p, pd, n, RTOL, ATOL) == 0);
  /* buf blends O(1) gradients (sum of 0.9^k <= 4.7 before they cancel), each
   * step rounding at that scale: ~4.7 u * STEPS ~ 2e-6 absolute. */
  if (momentum != 0.0f) TU_CHECK(gc_compare("sgd buf", buf, bd, n, RTOL, 2e-6) == 0);
  free(p), free(g), free(buf), free(pd), free(bd);
}

/* The CPU backend flushes subnormals in every thread of the update (see
 * kernels/cpu/backend.c): a subnormal first moment with a zero gradient
 * decays to exactly 0 (kept, it would be 0.9 x 1e-39 = 9e-40). */
static void run_adam_subnormal(size_t n, int threads) {
  float *p = calloc(n, 4), *g = calloc(n, 4), *m = malloc(n * 4), *v = calloc(n, 4);
  for (size_t i = 0; i < n; i++)
    m[i] = 1e-39f;
  struct ops_ctx ctx = {.threads = threads};
  float h[OPS_HYPER_LEN];
  ops_adam_hyper(1e-3f, 0.9f, 0.999f, 2, h);
  ops_cpu()->adam_step(&ctx, n, p, g, m, v, h, 0.999f, 1e-8f, 0.0f, 0);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    kept += m[i] != 0.0f;
  TU_CHECK(kept == 0);
  free(p), free(g), free(m), free(v);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++)
    for (int big = 0; big <= 1; big++) {
      size_t n = big ? 40003 : 1000; /* above / below the threading threshold */
      uint64_t s = 1000 * threads + 100 * big;
      run_adam(n, threads, 0, 0.0f, s + 1);  /* Adam */
      run_adam(n, threads, 0, 0.01f, s + 2); /* Adam, L2 */
      run_adam(n, threads, 1, 0.05f, s + 3); /* AdamW */
      run_sgd(n, threads, 0.0f, 0.0f, s + 4);
      run_sgd(n, threads, 0.9f, 0.0f, s + 5);
      run_sgd(n, threads, 0.9f, 5e-4f, s + 6);
      run_adam_subnormal(n, threads);
    }
  TU_DONE();
}
