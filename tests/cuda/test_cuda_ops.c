/* test_cuda_ops.c — every op of the CUDA backend, forward and backward, run
 * in the SIMT emulator against the CPU backend on random shapes chosen to
 * leave partial warps, partial blocks and partial tiles.
 *
 * Inputs are uniform in [-1, 1); gradient buffers start random, so the
 * "backward accumulates" convention is checked too. An element passes when
 * |cuda - cpu| <= atol + rtol |cpu|. The tolerances, per family:
 * - GEMM-based ops (matmul, linear, conv2d, attention): both sides are
 *   float32 OpenBLAS products (cuBLAS is served by OpenBLAS here), but the
 *   CUDA side sums in a different order (im2col layout, batched chunks, the
 *   fused attention's own dot products) and the CPU sums some reductions in
 *   double: float32 rounding of O(1) terms over K <= ~600 terms stays below
 *   K * 6e-8 ~ 4e-5 relative; we allow rtol 1e-4, atol 1e-5.
 * - Reductions (layernorm, batchnorm, the loss, mean over the last
 *   axis): both sides accumulate in ops_acc_t (double, kernels/ops_shared.h)
 *   and finish with the same float maths, so they differ only by the order
 *   of double sums, ~1e-16 relative per term, which can move a float result
 *   by an ulp at most: rtol 1e-5, atol 1e-5 (the float rounding of the saved
 *   statistics, ~1e-7 relative, amplified at most ~10x by rstd in the
 *   backward, stays below).
 * - Elementwise ops with the same formula on both sides (activations,
 *   dropout, add/axpy/scale, transpose, embedding, posenc, maxpool, patch
 *   extraction, padding, the optimizers, mean over the middle axis): the same float operations in
 * the same order, so they must agree to rtol 1e-6, atol 0 — in the emulator the math library is the
 * CPU's; on a GPU expf/erff differ by ~2 ulp. Integer outputs (maxpool indices, dropout masks, the
 * loss's row count, num_batches_tracked, the score's counts, the guard's record) must be equal. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops.h"
#include "kernels/ops_shared.h"

static const struct ops_backend *CPU, *GPU;
static struct ops_ctx cctx = {.threads = 1}, gctx = {.threads = 1};
static int failures = 0;
static uint64_t seed = 1;

enum { GEMM, RED, EXACT };
static const double RTOL[] = {1e-4, 1e-5, 1e-6}, ATOL[] = {1e-5, 1e-5, 0.0};

static float *hrand(size_t n) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  uint64_t s = seed++;
  for (size_t i = 0; i < n; i++)
    x[i] = 2.0f * ops_rng_uniform(s, 0, i) - 1.0f;
  return x;
}

static void *dev(const void *h, size_t bytes) {
  void *d = GPU->alloc(GPU, bytes);
  if (!d) {
    fprintf(stderr, "device allocation of %zu bytes failed\n", bytes);
    exit(1);
  }
  GPU->upload(GPU, d, h, bytes);
  return d;
}

/* Compares device buffer `d` (n floats) with host `want`. */
static void cmp(const char *what, const float *d, const float *want, size_t n, int tol) {
  float *got = malloc((n ? n : 1) * sizeof *got);
  GPU->download(GPU, got, d, n * sizeof *got);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double diff = fabs((double)got[i] - want[i]);
    int same_nan = isnan(got[i]) && isnan(want[i]);
    if (!same_nan && !(diff <= ATOL[tol] + RTOL[tol] * fabs(want[i]))) {
      if (bad < 5) fprintf(stderr, "%s[%zu]: cuda %.9g cpu %.9g\n", what, i, got[i], want[i]);
      bad++;
    }
  }
  if (bad) {
    fprintf(stderr, "FAIL %s: %d of %zu elements beyond rtol %g atol %g\n", what, bad, n, RTOL[tol],
            ATOL[tol]);
    failures++;
  }
  free(got);
}

/* Device bytes that must equal host `want` exactly (counters, indices). */
static void cmp_bytes(const char *what, const void *d, const void *want, size_t bytes) {
  unsigned char *got = malloc(bytes ? bytes : 1);
  GPU->download(GPU, got, d, bytes);
  if (memcmp(got, want, bytes)) {
    fprintf(stderr, "FAIL %s: differs\n", what);
    failures++;
  }
  free(got);
}

/* A float tensor on both sides: host copy for the CPU, device copy. */
struct t {
  float *h, *d;
  size_t n;
};
static struct t mk(size_t n) {
  struct t t = {hrand(n), NULL, n};
  t.d = dev(t.h, n * sizeof(float));
  return t;
}
static void drop(struct t *t) {
  free(t->h);
  GPU->release(GPU, t->d);
}
#define CMP(what, t, tol) cmp(what, (t).d, (t).h, (t).n, tol)

static void scratch(size_t cpu_floats, size_t gpu_floats) {
  free(cctx.scratch);
  if (gctx.scratch) GPU->release(GPU, gctx.scratch);
  cctx.scratch = malloc((cpu_floats ? cpu_floats : 1) * sizeof(float));
  gctx.scratch = GPU->alloc(GPU, (gpu_floats ? gpu_floats : 1) * sizeof(float));
  cctx.scratch_len = cpu_floats;
  gctx.scratch_len = gpu_floats;
}

/* memset0 of a range starting inside a buffer and ending mid-float: the
 * bytes in range are zero, the rest untouched (bytes compared exactly). */
static void test_memset0(void) {
  struct t x = mk(101);
  const size_t from = 3 * sizeof(float), bytes = 37 * sizeof(float) + 2;
  memset((char *)x.h + from, 0, bytes);
  GPU->memset0(GPU, (char *)x.d + from, bytes);
  cmp_bytes("memset0", x.d, x.h, x.n * sizeof(float));
  drop(&x);
}

static void test_matmul(void) {
  const int m = 37, n = 29, k = 53;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5, batch = 3;
      long sa = (long)lda * (ta ? k : m) + 7, sb = (long)ldb * (tb ? n : k) + 1,
           sc = (long)ldc * m + 4;
      struct t a = mk(sa * batch), b = mk(sb * batch), c = mk(sc * batch);
      CPU->matmul(&cctx, ta, tb, m, n, k, 0.7f, a.h, lda, b.h, ldb, 0.3f, c.h, ldc);
      GPU->matmul(&gctx, ta, tb, m, n, k, 0.7f, a.d, lda, b.d, ldb, 0.3f, c.d, ldc);
      CMP("matmul", c, GEMM);
      CPU->matmul_batched(&cctx, ta, tb, m, n, k, -1.1f, a.h, lda, sa, b.h, ldb, sb, 1.0f, c.h, ldc,
                          sc, batch);
      GPU->matmul_batched(&gctx, ta, tb, m, n, k, -1.1f, a.d, lda, sa, b.d, ldb, sb, 1.0f, c.d, ldc,
                          sc, batch);
      CMP("matmul_batched", c, GEMM);
      drop(&a);
      drop(&b);
      drop(&c);
    }
}

/* run.tf32: operands rounded to 10-bit mantissas (relative error <= 2^-11
 * each), so |cuda - cpu| <= 2^-10 sum_k |a||b| plus float32's own
 * rounding (2^-20 of the same sum); and the mode must show: some element
 * moves by more than the FP32 tolerance. */
static void test_tf32(void) {
  const int m = 33, n = 40, k = 64;
  struct t a = mk((size_t)m * k), b = mk((size_t)k * n), c = mk((size_t)m * n);
  CPU->matmul(&cctx, 0, 0, m, n, k, 1.0f, a.h, k, b.h, n, 0.0f, c.h, n);
  char msg[256];
  const struct ops_backend *tf32 = cuda_backend_open(1, msg, sizeof msg);
  if (!tf32) {
    fprintf(stderr, "FAIL tf32: %s\n", msg);
    failures++;
    return;
  }
  struct ops_ctx tctx = gctx;
  tctx.state = tf32->state;
  tf32->matmul(&tctx, 0, 0, m, n, k, 1.0f, a.d, k, b.d, n, 0.0f, c.d, n);
  float *got = malloc(c.n * sizeof *got);
  tf32->download(tf32, got, c.d, c.n * sizeof *got);
  cuda_backend_close(tf32);
  int bad = 0, moved = 0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double mag = 0;
      for (int p = 0; p < k; p++)
        mag += fabs((double)a.h[i * k + p] * b.h[p * n + j]);
      double diff = fabs((double)got[i * n + j] - c.h[i * n + j]);
      bad += diff > mag * (ldexp(1.0, -10) + ldexp(1.0, -20));
      moved += diff > ATOL[GEMM] + RTOL[GEMM] * fabs(c.h[i * n + j]);
    }
  if (bad || !moved) {
    fprintf(stderr, "FAIL tf32 matmul: %d elements beyond the TF32 bound, %d moved\n", bad, moved);
    failures++;
  }
  free(got);
  drop(&a);
  drop(&b);
  drop(&c);
}

static void test_linear(void) {
  const int m = 45, k = 70, n = 33;
  struct t x = mk(m * k), w = mk(n * k), bias = mk(n), y = mk(m * n), dy = mk(m * n);
  struct t dx = mk(m * k), dw = mk(n * k), db = mk(n);
  for (int with_bias = 0; with_bias < 2; with_bias++) {
    CPU->linear_fwd(&cctx, m, k, n, x.h, w.h, with_bias ? bias.h : NULL, y.h);
    GPU->linear_fwd(&gctx, m, k, n, x.d, w.d, with_bias ? bias.d : NULL, y.d);
    CMP("linear_fwd", y, GEMM);
  }
  CPU->linear_bwd(&cctx, m, k, n, dy.h, x.h, w.h, dx.h, dw.h, db.h);
  GPU->linear_bwd(&gctx, m, k, n, dy.d, x.d, w.d, dx.d, dw.d, db.d);
  CMP("linear_bwd dx", dx, GEMM);
  CMP("linear_bwd dw", dw, GEMM);
  CMP("linear_bwd dbias", db, GEMM);
  CPU->linear_bwd(&cctx, m, k, n, dy.h, x.h, w.h, NULL, dw.h, NULL);
  GPU->linear_bwd(&gctx, m, k, n, dy.d, x.d, w.d, NULL, dw.d, NULL);
  CMP("linear_bwd dw only", dw, GEMM);
  /* fused with each activation, with and without a bias */
  struct t h = mk(m * n), dh = mk(m * n);
  for (int act = ACT_RELU; act <= ACT_GELU; act++)
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      const float *bh = with_bias ? bias.h : NULL, *bd = with_bias ? bias.d : NULL;
      CPU->linear_act_fwd(&cctx, (enum act_kind)act, m, k, n, x.h, w.h, bh, h.h, y.h);
      GPU->linear_act_fwd(&gctx, (enum act_kind)act, m, k, n, x.d, w.d, bd, h.d, y.d);
      CMP("linear_act_fwd h", h, GEMM);
      CMP("linear_act_fwd y", y, GEMM);
      CPU->linear_act_bwd(&cctx, (enum act_kind)act, m, k, n, dy.h, x.h, w.h, h.h, dh.h, dx.h, dw.h,
                          with_bias ? db.h : NULL);
      GPU->linear_act_bwd(&gctx, (enum act_kind)act, m, k, n, dy.d, x.d, w.d, h.d, dh.d, dx.d, dw.d,
                          with_bias ? db.d : NULL);
      CMP("linear_act_bwd dh", dh, GEMM);
      CMP("linear_act_bwd dx", dx, GEMM);
      CMP("linear_act_bwd dw", dw, GEMM);
      CMP("linear_act_bwd dbias", db, GEMM);
    }
  struct t *all[] = {&x, &w, &bias, &y, &dy, &dx, &dw, &db, &h, &dh};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    drop(all[i]);
}

static void test_conv2d(void) {
  /* strided + padded, pointwise, and a 5x5 at stride 1 */
  struct conv2d_shape shapes[] = {{3, 5, 9, 11, 7, 3, 3, 2, 1, 0, 0},
                                  {2, 4, 8, 6, 6, 1, 1, 1, 0, 0, 0},
                                  {2, 3, 7, 7, 4, 5, 5, 1, 2, 0, 0}};
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
    struct conv2d_shape s = shapes[si];
    s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
    s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
    size_t xin = (size_t)s.n * s.c * s.h * s.w, yout = (size_t)s.n * s.oc * s.oh * s.ow;
    size_t wn = (size_t)s.oc * s.c * s.kh * s.kw;
    scratch(CPU->conv2d_scratch(&s, 1), GPU->conv2d_scratch(&s, 1));
    struct t x = mk(xin), w = mk(wn), b = mk(s.oc), y = mk(yout), dy = mk(yout);
    struct t dx = mk(xin), dw = mk(wn), db = mk(s.oc);
    CPU->conv2d_fwd(&cctx, &s, x.h, w.h, b.h, y.h);
    GPU->conv2d_fwd(&gctx, &s, x.d, w.d, b.d, y.d);
    CMP("conv2d_fwd", y, GEMM);
    CPU->conv2d_bwd(&cctx, &s, dy.h, x.h, w.h, dx.h, dw.h, db.h);
    GPU->conv2d_bwd(&gctx, &s, dy.d, x.d, w.d, dx.d, dw.d, db.d);
    CMP("conv2d_bwd dx", dx, GEMM);
    CMP("conv2d_bwd dw", dw, GEMM);
    CMP("conv2d_bwd dbias", db, GEMM);
    CPU->conv2d_bwd(&cctx, &s, dy.h, x.h, w.h, dx.h, NULL, NULL);
    GPU->conv2d_bwd(&gctx, &s, dy.d, x.d, w.d, dx.d, NULL, NULL);
    CMP("conv2d_bwd dx only", dx, GEMM);
    struct t *all[] = {&x, &w, &b, &y, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
      drop(all[i]);
  }
}

static void test_batchnorm(void) {
  const int n = 3, c = 5, hw = 37;
  size_t len = (size_t)n * c * hw;
  struct t x = mk(len), gamma = mk(c), beta = mk(c), rm = mk(c), rv = mk(c), y = mk(len);
  struct t sm = mk(c), sr = mk(c), dy = mk(len), dx = mk(len), dg = mk(c), dbt = mk(c);
  for (int i = 0; i < c; i++)
    rv.h[i] = 0.5f + 0.5f * fabsf(rv.h[i]); /* a variance */
  GPU->upload(GPU, rv.d, rv.h, c * sizeof(float));
  int64_t tracked = 41, *tracked_d = dev(&tracked, sizeof tracked);
  CPU->batchnorm2d_fwd(&cctx, n, c, hw, x.h, gamma.h, beta.h, rm.h, rv.h, &tracked, 0.1f, 1e-5f, 1,
                       y.h, sm.h, sr.h);
  GPU->batchnorm2d_fwd(&gctx, n, c, hw, x.d, gamma.d, beta.d, rm.d, rv.d, tracked_d, 0.1f, 1e-5f, 1,
                       y.d, sm.d, sr.d);
  cmp_bytes("batchnorm_fwd num_batches_tracked", tracked_d, &tracked, sizeof tracked);
  CMP("batchnorm_fwd y", y, RED);
  CMP("batchnorm_fwd running_mean", rm, RED);
  CMP("batchnorm_fwd running_var", rv, RED);
  CMP("batchnorm_fwd save_mean", sm, RED);
  CMP("batchnorm_fwd save_rstd", sr, RED);
  CPU->batchnorm2d_bwd(&cctx, n, c, hw, dy.h, x.h, gamma.h, sm.h, sr.h, dx.h, dg.h, dbt.h);
  GPU->batchnorm2d_bwd(&gctx, n, c, hw, dy.d, x.d, gamma.d, sm.d, sr.d, dx.d, dg.d, dbt.d);
  CMP("batchnorm_bwd dx", dx, RED);
  CMP("batchnorm_bwd dgamma", dg, RED);
  CMP("batchnorm_bwd dbeta", dbt, RED);
  CPU->batchnorm2d_fwd(&cctx, n, c, hw, x.h, gamma.h, beta.h, rm.h, rv.h, &tracked, 0.1f, 1e-5f, 0,
                       y.h, sm.h, sr.h);
  GPU->batchnorm2d_fwd(&gctx, n, c, hw, x.d, gamma.d, beta.d, rm.d, rv.d, tracked_d, 0.1f, 1e-5f, 0,
                       y.d, sm.d, sr.d);
  CMP("batchnorm_fwd eval", y, RED);
  cmp_bytes("batchnorm_fwd eval num_batches_tracked", tracked_d, &tracked, sizeof tracked);
  GPU->release(GPU, tracked_d);
  struct t *all[] = {&x, &gamma, &beta, &rm, &rv, &y, &sm, &sr, &dy, &dx, &dg, &dbt};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    drop(all[i]);
}

static void test_pool_means(void) {
  const int n = 2, c = 3, h = 9, w = 11;
  int ks[][2] = {{2, 2}, {3, 2}}; /* disjoint and overlapping windows */
  for (int v = 0; v < 2; v++) {
    int k = ks[v][0], s = ks[v][1], oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    size_t in = (size_t)n * c * h * w, out = (size_t)n * c * oh * ow;
    struct t x = mk(in), y = mk(out), dy = mk(out), dx = mk(in);
    int32_t *idx = malloc(out * sizeof *idx);
    int32_t *didx = GPU->alloc(GPU, out * sizeof *didx);
    CPU->maxpool2d_fwd(&cctx, n, c, h, w, k, s, x.h, y.h, idx);
    GPU->maxpool2d_fwd(&gctx, n, c, h, w, k, s, x.d, y.d, didx);
    CMP("maxpool_fwd", y, EXACT);
    cmp_bytes("maxpool_fwd idx", didx, idx, out * sizeof *idx);
    CPU->maxpool2d_bwd(&cctx, n, c, h, w, k, s, dy.h, idx, dx.h);
    GPU->maxpool2d_bwd(&gctx, n, c, h, w, k, s, dy.d, didx, dx.d);
    CMP("maxpool_bwd", dx, EXACT);
    free(idx);
    GPU->release(GPU, didx);
    drop(&x);
    drop(&y);
    drop(&dy);
    drop(&dx);
  }
  const int b = 3, t = 37, d = 45;
  struct t x = mk((size_t)b * t * d), y = mk((size_t)b * d), dx = mk((size_t)b * t * d);
  CPU->mean_mid_fwd(&cctx, b, t, d, x.h, y.h);
  GPU->mean_mid_fwd(&gctx, b, t, d, x.d, y.d);
  CMP("mean_mid_fwd", y, EXACT);
  CPU->mean_mid_bwd(&cctx, b, t, d, y.h, dx.h);
  GPU->mean_mid_bwd(&gctx, b, t, d, y.d, dx.d);
  CMP("mean_mid_bwd", dx, EXACT);
  struct t r = mk((size_t)b * t);
  CPU->mean_last_fwd(&cctx, b * t, d, x.h, r.h);
  GPU->mean_last_fwd(&gctx, b * t, d, x.d, r.d);
  CMP("mean_last_fwd", r, RED);
  CPU->mean_last_bwd(&cctx, b * t, d, r.h, dx.h);
  GPU->mean_last_bwd(&gctx, b * t, d, r.d, dx.d);
  CMP("mean_last_bwd", dx, EXACT);
  drop(&x);
  drop(&y);
  drop(&dx);
  drop(&r);
}

/* LayerNorm and BatchNorm on inputs 1000 + U[-1, 1): a mean far above the
 * spread. A float variance E[x^2] - E[x]^2 cancels here: E[x^2] ~ 1e6
 * carries an absolute rounding error of ~ulp(1e6) = 0.06 per addition
 * against a variance of 1/3, so such a kernel is off by O(1) or NaN. The
 * two-pass statistics in ops_acc_t agree with the CPU's within RED: the
 * means (ulp 6e-5 at 1000) round to the same float unless the two sides'
 * double sums, ~1e-13 apart, straddle a float rounding boundary. */
static void offset_by(struct t *t, float by) {
  for (size_t i = 0; i < t->n; i++)
    t->h[i] += by;
  GPU->upload(GPU, t->d, t->h, t->n * sizeof(float));
}

/* CMP, the name marked " offset" for offset inputs. */
static void ln_cmp(const char *name, float offset, const struct t *t) {
  char what[64];
  snprintf(what, sizeof what, "%s%s", name, offset != 0 ? " offset" : "");
  CMP(what, *t, RED);
}

/* LayerNorm over rows x d inputs (offset by `offset`), forward, backward and
 * the dgamma-only backward, CUDA against the CPU within RED. */
static void layernorm_case(int rows, int d, float offset) {
  size_t len = (size_t)rows * d;
  struct t x = mk(len), g = mk(d), b = mk(d), y = mk(len), mean = mk(rows), rstd = mk(rows);
  struct t dy = mk(len), dx = mk(len), dg = mk(d), db = mk(d);
  if (offset != 0) offset_by(&x, offset);
  CPU->layernorm_fwd(&cctx, rows, d, x.h, g.h, b.h, 1e-5f, y.h, mean.h, rstd.h);
  GPU->layernorm_fwd(&gctx, rows, d, x.d, g.d, b.d, 1e-5f, y.d, mean.d, rstd.d);
  ln_cmp("layernorm_fwd y", offset, &y);
  ln_cmp("layernorm_fwd mean", offset, &mean);
  ln_cmp("layernorm_fwd rstd", offset, &rstd);
  CPU->layernorm_bwd(&cctx, rows, d, dy.h, x.h, g.h, mean.h, rstd.h, dx.h, dg.h, db.h);
  GPU->layernorm_bwd(&gctx, rows, d, dy.d, x.d, g.d, mean.d, rstd.d, dx.d, dg.d, db.d);
  ln_cmp("layernorm_bwd dx", offset, &dx);
  ln_cmp("layernorm_bwd dgamma", offset, &dg);
  ln_cmp("layernorm_bwd dbeta", offset, &db);
  CPU->layernorm_bwd(&cctx, rows, d, dy.h, x.h, g.h, mean.h, rstd.h, NULL, dg.h, NULL);
  GPU->layernorm_bwd(&gctx, rows, d, dy.d, x.d, g.d, mean.d, rstd.d, NULL, dg.d, NULL);
  ln_cmp("layernorm_bwd dgamma only", offset, &dg);
  struct t *all[] = {&x, &g, &b, &y, &mean, &rstd, &dy, &dx, &dg, &db};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    drop(all[i]);
}

static void test_norm_offset(void) {
  layernorm_case(37, 300, 1000.0f); /* ~10 values per lane of the row's warp */

  const int n = 4, c = 5, hw = 97; /* 388 values per channel: 256 threads, partial */
  size_t bl = (size_t)n * c * hw;
  struct t bx = mk(bl), gamma = mk(c), beta = mk(c), rm = mk(c), rv = mk(c), by = mk(bl);
  struct t sm = mk(c), sr = mk(c), bdy = mk(bl), bdx = mk(bl), bdg = mk(c), bdb = mk(c);
  offset_by(&bx, 1000.0f);
  for (int i = 0; i < c; i++)
    rv.h[i] = 0.5f + 0.5f * fabsf(rv.h[i]);
  GPU->upload(GPU, rv.d, rv.h, c * sizeof(float));
  CPU->batchnorm2d_fwd(&cctx, n, c, hw, bx.h, gamma.h, beta.h, rm.h, rv.h, NULL, 0.1f, 1e-5f, 1,
                       by.h, sm.h, sr.h);
  GPU->batchnorm2d_fwd(&gctx, n, c, hw, bx.d, gamma.d, beta.d, rm.d, rv.d, NULL, 0.1f, 1e-5f, 1,
                       by.d, sm.d, sr.d);
  CMP("batchnorm_fwd offset y", by, RED);
  CMP("batchnorm_fwd offset running_mean", rm, RED);
  CMP("batchnorm_fwd offset running_var", rv, RED);
  CMP("batchnorm_fwd offset save_mean", sm, RED);
  CMP("batchnorm_fwd offset save_rstd", sr, RED);
  CPU->batchnorm2d_bwd(&cctx, n, c, hw, bdy.h, bx.h, gamma.h, sm.h, sr.h, bdx.h, bdg.h, bdb.h);
  GPU->batchnorm2d_bwd(&gctx, n, c, hw, bdy.d, bx.d, gamma.d, sm.d, sr.d, bdx.d, bdg.d, bdb.d);
  CMP("batchnorm_bwd offset dx", bdx, RED);
  CMP("batchnorm_bwd offset dgamma", bdg, RED);
  CMP("batchnorm_bwd offset dbeta", bdb, RED);
  struct t *ball[] = {&bx, &gamma, &beta, &rm, &rv, &by, &sm, &sr, &bdy, &bdx, &bdg, &bdb};
  for (size_t i = 0; i < sizeof ball / sizeof *ball; i++)
    drop(ball[i]);
}

static void test_attention(void) {
  struct {
    int b, h, tq, tk, dh, pad;
    enum mask_kind mask;
    float p;
  } cases[] = {
      {2, 1, 64, 64, 64, 0, MASK_CAUSAL, 0.0f},  /* attn_cnn: fused kernel */
      {2, 1, 64, 64, 64, 0, MASK_CAUSAL, 0.25f}, /* fused, with dropout */
      {2, 3, 17, 23, 8, 5, MASK_GIVEN, 0.1f},    /* fused, several heads, odd tiles */
      {2, 2, 70, 67, 12, 3, MASK_NONE, 0.2f},    /* GEMM path, several heads */
      {3, 1, 65, 33, 20, 0, MASK_CAUSAL, 0.0f},  /* GEMM path, one head */
  };
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    struct attn_shape s = {
        cases[ci].b, cases[ci].h, cases[ci].tq, cases[ci].tk,   cases[ci].dh, 0, 0,
        0,           0,           0.0f,         cases[ci].mask, NULL};
    int hd = s.h * s.dh;
    s.ldq = hd + cases[ci].pad;
    s.ldk = hd + 2 * cases[ci].pad;
    s.ldv = hd;
    s.ldo = hd + cases[ci].pad;
    s.scale = 1.0f / sqrtf((float)s.dh);
    float p = cases[ci].p;
    size_t nq = (size_t)s.b * s.tq * s.ldq, nk = (size_t)s.b * s.tk * s.ldk;
    size_t nv = (size_t)s.b * s.tk * s.ldv, no = (size_t)s.b * s.tq * s.ldo;
    size_t np = (size_t)s.b * s.h * s.tq * s.tk;
    struct t q = mk(nq), k = mk(nk), v = mk(nv), o = mk(no), pr = mk(np), pd = mk(np);
    struct t dout = mk(no), dq = mk(nq), dk = mk(nk), dv = mk(nv);
    float *mask_h = NULL, *mask_d = NULL;
    if (s.mask == MASK_GIVEN) {
      mask_h = malloc((size_t)s.tq * s.tk * sizeof *mask_h);
      for (int i = 0; i < s.tq * s.tk; i++) /* every query keeps key 0 */
        mask_h[i] = (i % s.tk == 0 || ops_rng_uniform(99, 0, i) < 0.6f) ? 1.0f : 0.0f;
      mask_d = dev(mask_h, (size_t)s.tq * s.tk * sizeof *mask_h);
    }
    struct attn_shape sc = s, sg = s;
    sc.given_mask = mask_h;
    sg.given_mask = mask_d;
    scratch(CPU->attention_scratch(&sc, 1), GPU->attention_scratch(&sg, 1));
    struct rng_stream rng = {1234, 7};
    CPU->attention_fwd(&cctx, &sc, q.h, k.h, v.h, p, rng, pr.h, p > 0 ? pd.h : NULL, o.h);
    GPU->attention_fwd(&gctx, &sg, q.d, k.d, v.d, p, rng, pr.d, p > 0 ? pd.d : NULL, o.d);
    char what[64];
    snprintf(what, sizeof what, "attention case %zu probs", ci);
    CMP(what, pr, RED);
    if (p > 0) {
      snprintf(what, sizeof what, "attention case %zu probs_drop", ci);
      CMP(what, pd, RED);
    }
    snprintf(what, sizeof what, "attention case %zu out", ci);
    CMP(what, o, GEMM);
    CPU->attention_bwd(&cctx, &sc, dout.h, q.h, k.h, v.h, pr.h, p > 0 ? pd.h : NULL, dq.h, dk.h,
                       dv.h);
    GPU->attention_bwd(&gctx, &sg, dout.d, q.d, k.d, v.d, pr.d, p > 0 ? pd.d : NULL, dq.d, dk.d,
                       dv.d);
    snprintf(what, sizeof what, "attention case %zu dq", ci);
    CMP(what, dq, GEMM);
    snprintf(what, sizeof what, "attention case %zu dk", ci);
    CMP(what, dk, GEMM);
    snprintf(what, sizeof what, "attention case %zu dv", ci);
    CMP(what, dv, GEMM);
    free(mask_h);
    if (mask_d) GPU->release(GPU, mask_d);
    struct t *all[] = {&q, &k, &v, &o, &pr, &pd, &dout, &dq, &dk, &dv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
      drop(all[i]);
  }
}

static void test_embedding_dropout_elementwise(void) {
  const int n = 41, d = 37, vocab = 9;
  int32_t idx[41];
  for (int i = 0; i < n; i++)
    idx[i] = (i * 7) % vocab; /* repeated ids */
  int32_t *didx = dev(idx, sizeof idx);
  struct t table = mk((size_t)vocab * d), y = mk((size_t)n * d), dtable = mk((size_t)vocab * d);
  CPU->embedding_fwd(&cctx, n, d, idx, table.h, y.h);
  GPU->embedding_fwd(&gctx, n, d, didx, table.d, y.d);
  CMP("embedding_fwd", y, EXACT);
  CPU->embedding_bwd(&cctx, n, d, idx, y.h, dtable.h);
  GPU->embedding_bwd(&gctx, n, d, didx, y.d, dtable.d);
  CMP("embedding_bwd", dtable, EXACT);
  struct t px = mk((size_t)3 * 19 * 34), py = mk(px.n);
  CPU->posenc_fwd(&cctx, 3, 19, 34, px.h, py.h);
  GPU->posenc_fwd(&gctx, 3, 19, 34, px.d, py.d);
  CMP("posenc_fwd", py, EXACT);
  GPU->release(GPU, didx);
  drop(&table);
  drop(&y);
  drop(&dtable);
  drop(&px);
  drop(&py);

  const size_t len = 1000 + 37; /* a tail past the last full block */
  struct t x = mk(len), dy = mk(len), dx = mk(len), out = mk(len);
  uint8_t *keep = malloc(len), *dkeep = GPU->alloc(GPU, len);
  float ps[] = {0.0f, 0.3f, 1.0f};
  for (int i = 0; i < 3; i++) {
    struct rng_stream rng = {42, (uint64_t)i};
    CPU->dropout_fwd(&cctx, len, ps[i], rng, x.h, out.h, keep);
    GPU->dropout_fwd(&gctx, len, ps[i], rng, x.d, out.d, dkeep);
    CMP("dropout_fwd", out, EXACT);
    cmp_bytes("dropout_fwd keep", dkeep, keep, len);
    CPU->dropout_bwd(&cctx, len, ps[i], dy.h, keep, dx.h);
    GPU->dropout_bwd(&gctx, len, ps[i], dy.d, dkeep, dx.d);
    CMP("dropout_bwd", dx, EXACT);
  }
  free(keep);
  GPU->release(GPU, dkeep);
  for (int kind = ACT_RELU; kind <= ACT_GELU; kind++) {
    CPU->act_fwd(&cctx, (enum act_kind)kind, len, x.h, out.h);
    GPU->act_fwd(&gctx, (enum act_kind)kind, len, x.d, out.d);
    CMP("act_fwd", out, EXACT);
    CPU->act_bwd(&cctx, (enum act_kind)kind, len, x.h, dy.h, dx.h);
    GPU->act_bwd(&gctx, (enum act_kind)kind, len, x.d, dy.d, dx.d);
    CMP("act_bwd", dx, EXACT);
  }
  CPU->add_fwd(&cctx, len, x.h, dy.h, out.h);
  GPU->add_fwd(&gctx, len, x.d, dy.d, out.d);
  CMP("add_fwd", out, EXACT);
  CPU->axpy(&cctx, len, -0.3f, x.h, out.h);
  GPU->axpy(&gctx, len, -0.3f, x.d, out.d);
  CMP("axpy", out, EXACT);
  CPU->scale(&cctx, len, 1.7f, out.h);
  GPU->scale(&gctx, len, 1.7f, out.d);
  CMP("scale", out, EXACT);
  /* grad_clip: scaled to half the norm (the two sides sum the norm in
   * different orders: RED), then the guard's record. */
  double norm = 0;
  for (size_t i = 0; i < len; i++)
    norm += (double)out.h[i] * out.h[i];
  const float loss = 0.25f, nan_loss = NAN;
  float *loss_d = dev(&loss, sizeof loss), *nan_d = dev(&nan_loss, sizeof nan_loss);
  int64_t bad[2] = {-1, -1}, *bad_d = dev(bad, sizeof bad);
  CPU->grad_clip(&cctx, len, out.h, (float)(sqrt(norm) / 2), &loss, 9, bad);
  GPU->grad_clip(&gctx, len, out.d, (float)(sqrt(norm) / 2), loss_d, 9, bad_d);
  CMP("grad_clip", out, RED);
  CPU->grad_clip(&cctx, len, out.h, 1e-3f, &nan_loss, 10, bad);
  GPU->grad_clip(&gctx, len, out.d, 1e-3f, nan_d, 10, bad_d);
  CMP("grad_clip guarded", out, RED);
  cmp_bytes("grad_clip bad", bad_d, bad, sizeof bad);
  GPU->release(GPU, loss_d);
  GPU->release(GPU, nan_d);
  GPU->release(GPU, bad_d);
  drop(&x);
  drop(&dy);
  drop(&dx);
  drop(&out);

  const int b = 3, r = 37, c = 45; /* two tiles each way, partial */
  struct t tx = mk((size_t)b * r * c), ty = mk(tx.n), tdx = mk(tx.n);
  CPU->transpose_fwd(&cctx, b, r, c, tx.h, ty.h);
  GPU->transpose_fwd(&gctx, b, r, c, tx.d, ty.d);
  CMP("transpose_fwd", ty, EXACT);
  CPU->transpose_bwd(&cctx, b, r, c, ty.h, tdx.h);
  GPU->transpose_bwd(&gctx, b, r, c, ty.d, tdx.d);
  CMP("transpose_bwd", tdx, EXACT);
  drop(&tx);
  drop(&ty);
  drop(&tdx);
}

static void test_patch_pad(void) {
  const int n = 2, c = 3, h = 12, w = 8, p = 4, pad = 3;
  size_t in = (size_t)n * c * h * w, pl = (size_t)n * c * (h + 2 * pad) * (w + 2 * pad);
  struct t x = mk(in), y = mk(in), dx = mk(in), py = mk(pl);
  CPU->patch_fwd(&cctx, n, c, h, w, p, x.h, y.h);
  GPU->patch_fwd(&gctx, n, c, h, w, p, x.d, y.d);
  CMP("patch_fwd", y, EXACT);
  CPU->patch_bwd(&cctx, n, c, h, w, p, y.h, dx.h);
  GPU->patch_bwd(&gctx, n, c, h, w, p, y.d, dx.d);
  CMP("patch_bwd", dx, EXACT);
  CPU->pad2d_fwd(&cctx, n, c, h, w, pad, x.h, py.h);
  GPU->pad2d_fwd(&gctx, n, c, h, w, pad, x.d, py.d);
  CMP("pad2d_fwd", py, EXACT);
  CPU->pad2d_bwd(&cctx, n, c, h, w, pad, py.h, dx.h);
  GPU->pad2d_bwd(&gctx, n, c, h, w, pad, py.d, dx.d);
  CMP("pad2d_bwd", dx, EXACT);
  drop(&x);
  drop(&y);
  drop(&dx);
  drop(&py);
}

static void test_cross_entropy(void) {
  const int n = 100, classes = 11; /* 13 blocks of 8 rows */
  int32_t labels[100];
  for (int i = 0; i < n; i++)
    labels[i] = i % 9 == 4 ? -1 : (i * 5) % classes; /* some ignored rows */
  int32_t *dl = dev(labels, sizeof labels);
  struct t z = mk((size_t)n * classes), pr = mk(z.n), loss = mk(1), dz = mk(z.n);
  float eps[] = {0.0f, 0.1f}, div[] = {0.0f, 150.0f};
  const float dloss = 0.7f;
  float *dloss_d = dev(&dloss, sizeof dloss);
  int32_t count = -1, *count_d = dev(&count, sizeof count);
  for (int v = 0; v < 2; v++) {
    CPU->cross_entropy_fwd(&cctx, n, classes, z.h, labels, -1, eps[v], div[v], pr.h, loss.h,
                           &count);
    GPU->cross_entropy_fwd(&gctx, n, classes, z.d, dl, -1, eps[v], div[v], pr.d, loss.d, count_d);
    CMP("cross_entropy_fwd probs", pr, RED);
    CMP("cross_entropy_fwd loss", loss, RED);
    cmp_bytes("cross_entropy_fwd count", count_d, &count, sizeof count);
    /* d loss from memory, then NULL (1) */
    CPU->cross_entropy_bwd(&cctx, n, classes, pr.h, labels, -1, eps[v], div[v], &count,
                           v ? NULL : &dloss, dz.h);
    GPU->cross_entropy_bwd(&gctx, n, classes, pr.d, dl, -1, eps[v], div[v], count_d,
                           v ? NULL : dloss_d, dz.d);
    CMP("cross_entropy_bwd", dz, RED);
  }
  GPU->release(GPU, dloss_d);
  GPU->release(GPU, count_d);
  GPU->release(GPU, dl);
  drop(&z);
  drop(&pr);
  drop(&loss);
  drop(&dz);
}

/* The training score over 70 classes (three lanes' worth per row), with
 * ties placed in different lanes and loop rounds of the warp's scan. */
static void test_score(void) {
  const int n = 77, classes = 70;
  int32_t labels[77];
  struct t z = mk((size_t)n * classes);
  for (int r = 0; r < n; r++) {
    labels[r] = r % 7 == 3 ? -1 : (r * 11) % classes;
    if (r % 3 == 0) { /* a tie of maxima, sometimes at the label */
      z.h[(size_t)r * classes + 40] = 5.0f;
      z.h[(size_t)r * classes + (r % 2 ? 5 : labels[r] >= 0 ? labels[r] : 6)] = 5.0f;
    }
  }
  GPU->upload(GPU, z.d, z.h, z.n * sizeof(float));
  int32_t *dl = dev(labels, sizeof labels);
  const float loss = 1.25f;
  double acc[3] = {0.5, 1, 2};
  float *loss_d = dev(&loss, sizeof loss);
  double *acc_d = dev(acc, sizeof acc);
  CPU->score(&cctx, n, classes, z.h, labels, -1, &loss, 3.0f, acc);
  GPU->score(&gctx, n, classes, z.d, dl, -1, loss_d, 3.0f, acc_d);
  cmp_bytes("score", acc_d, acc, sizeof acc);
  GPU->release(GPU, dl);
  GPU->release(GPU, loss_d);
  GPU->release(GPU, acc_d);
  drop(&z);
}

/* A batch of 5 rows, 2 of them tail, under each transform alone and all
 * together, normalised or not: the same maths on both sides (EXACT). */
static void test_augment(void) {
  enum { N = 5, VALID = 3, IMAGE = 3 * 32 * 32 };
  uint8_t *src = malloc((size_t)N * IMAGE);
  int32_t labels[N] = {3, 1, 4, 1, 5};
  for (size_t i = 0; i < (size_t)N * IMAGE; i++)
    src[i] = (uint8_t)(ops_rng_bits(77, 0, i) >> 56);
  uint8_t *src_d = dev(src, (size_t)N * IMAGE);
  int32_t *labels_d = dev(labels, sizeof labels), y[N], y_d[N];
  int32_t *y_dev = dev(labels, sizeof labels);
  struct t x = mk((size_t)N * IMAGE);
  const unsigned flags[] = {AUG_CROP, AUG_FLIP, AUG_ROTATE, AUG_CUTOUT,
                            AUG_CROP | AUG_FLIP | AUG_ROTATE | AUG_CUTOUT};
  for (size_t f = 0; f < sizeof flags / sizeof *flags; f++)
    for (int norm = 0; norm < 2; norm++) {
      struct augment_params a = {.flags = flags[f],
                                 .crop_pad = 4,
                                 .rotate_deg = 5.0f,
                                 .cutout_size = 16,
                                 .cutout_p = 0.9f,
                                 .normalize = norm,
                                 .mean = {0.49f, 0.48f, 0.45f},
                                 .std = {0.25f, 0.24f, 0.26f},
                                 .key = 1000 + f};
      CPU->augment(&cctx, &a, N, VALID, src, labels, 7, 3, x.h, y);
      GPU->augment(&gctx, &a, N, VALID, src_d, labels_d, 7, 3, x.d, y_dev);
      CMP("augment", x, EXACT);
      GPU->download(GPU, y_d, y_dev, sizeof y_d);
      if (memcmp(y, y_d, sizeof y)) {
        fprintf(stderr, "FAIL augment labels\n");
        failures++;
      }
    }
  GPU->release(GPU, src_d);
  GPU->release(GPU, labels_d);
  GPU->release(GPU, y_dev);
  free(src);
  drop(&x);
}

static void test_optim(void) {
  const size_t n = 1000 + 77;
  struct t p = mk(n), g = mk(n), m = mk(n), v = mk(n);
  for (size_t i = 0; i < n; i++)
    v.h[i] = fabsf(v.h[i]); /* a second moment */
  GPU->upload(GPU, v.d, v.h, n * sizeof(float));
  for (int decoupled = 0; decoupled < 2; decoupled++)
    for (long step = 1; step <= 2; step++) {
      CPU->adam_step(&cctx, n, p.h, g.h, m.h, v.h, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, decoupled,
                     step);
      GPU->adam_step(&gctx, n, p.d, g.d, m.d, v.d, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.05f, decoupled,
                     step);
      CMP("adam param", p, EXACT);
      CMP("adam m", m, EXACT);
      CMP("adam v", v, EXACT);
    }
  float moms[] = {0.0f, 0.9f};
  for (int mi = 0; mi < 2; mi++)
    for (long step = 1; step <= 2; step++) {
      CPU->sgd_step(&cctx, n, p.h, g.h, m.h, 0.1f, moms[mi], 1e-3f, step);
      GPU->sgd_step(&gctx, n, p.d, g.d, m.d, 0.1f, moms[mi], 1e-3f, step);
      CMP("sgd param", p, EXACT);
      CMP("sgd buf", m, EXACT);
    }
  drop(&p);
  drop(&g);
  drop(&m);
  drop(&v);
}

int main(void) {
  char msg[256];
  if (cuda_backend_probe(msg, sizeof msg)) {
    fprintf(stderr, "the emulated device does not answer: %s\n", msg);
    return 1;
  }
  CPU = ops_cpu();
  if (!(GPU = cuda_backend_open(0, msg, sizeof msg))) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  gctx.state = GPU->state;
  test_memset0();
  test_matmul();
  test_tf32();
  test_linear();
  test_conv2d();
  test_batchnorm();
  test_pool_means();
  layernorm_case(37, 70, 0);
  test_norm_offset();
  test_attention();
  test_embedding_dropout_elementwise();
  test_cross_entropy();
  test_score();
  test_augment();
  test_optim();
  test_patch_pad();
  free(cctx.scratch);
  GPU->release(GPU, gctx.scratch);
  cuda_backend_close(GPU);
  if (failures) {
    fprintf(stderr, "%d comparisons failed\n", failures);
    return 1;
  }
  printf("every CUDA op matches the CPU backend\n");
  return 0;
}
