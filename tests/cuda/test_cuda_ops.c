/* test_cuda_ops.c — the CUDA backend's memory entries, matrix products,
 * convolution, normalisation, pooling and attention ops, forward and
 * backward, run in the SIMT emulator against the CPU backend on random
 * shapes chosen to leave partial warps, partial blocks and partial tiles
 * (tolerances: ops_compare.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops_shared.h"
#include "ops_compare.h"

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

/* cuda_backend_time_ms: the work it times is done when it returns (the
 * product is right), and the time is a finite non-negative figure. */
struct timed_gemm {
  int m, n, k;
  const float *a, *b;
  float *c;
};
static void timed_gemm_issue(void *arg) {
  const struct timed_gemm *g = arg;
  GPU->matmul(&gctx, 0, 0, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b, g->n, 0.0f, g->c, g->n);
}
static void test_timed(void) {
  const int m = 19, n = 23, k = 31;
  struct t a = mk((size_t)m * k), b = mk((size_t)k * n), c = mk((size_t)m * n);
  CPU->matmul(&cctx, 0, 0, m, n, k, 1.0f, a.h, k, b.h, n, 0.0f, c.h, n);
  struct timed_gemm g = {m, n, k, a.d, b.d, c.d};
  double ms = cuda_backend_time_ms(GPU, timed_gemm_issue, &g);
  CMP("matmul timed by cuda_backend_time_ms", c, GEMM);
  if (!(ms >= 0 && ms < 1e6)) {
    fprintf(stderr, "FAIL cuda_backend_time_ms: %g ms\n", ms);
    failures++;
  }
  drop(&a);
  drop(&b);
  drop(&c);
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
  /* strided + padded, pointwise, a 5x5 at stride 1; the 4th: weight
   * gradients of 1400 x 4608 floats per image, which cuda's scratch takes
   * two images at a time, so dw is summed over two batched GEMMs (2 + 1
   * images). Its output is 1x1, so dw sums 3 products per element; only dw
   * and dbias are compared there (forward and dx sum 4608 and 1400 terms,
   * beyond what the GEMM tolerance is for). */
  struct conv2d_shape shapes[] = {{3, 5, 9, 11, 7, 3, 3, 2, 1, 0, 0},
                                  {2, 4, 8, 6, 6, 1, 1, 1, 0, 0, 0},
                                  {2, 3, 7, 7, 4, 5, 5, 1, 2, 0, 0},
                                  {3, 512, 3, 3, 1400, 3, 3, 1, 0, 0, 0}};
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
    const int dw_only = si == 3;
    struct conv2d_shape s = shapes[si];
    s.oh = (s.h + 2 * s.pad - s.kh) / s.stride + 1;
    s.ow = (s.w + 2 * s.pad - s.kw) / s.stride + 1;
    size_t xin = (size_t)s.n * s.c * s.h * s.w, yout = (size_t)s.n * s.oc * s.oh * s.ow;
    size_t wn = (size_t)s.oc * s.c * s.kh * s.kw;
    scratch(CPU->conv2d_scratch(&s, 1), GPU->conv2d_scratch(&s, 1));
    struct t x = mk(xin), w = mk(wn), b = mk(s.oc), y = mk(yout), dy = mk(yout);
    struct t dx = mk(xin), dw = mk(wn), db = mk(s.oc);
    if (dw_only) {
      CPU->conv2d_bwd(&cctx, &s, dy.h, x.h, w.h, NULL, dw.h, db.h);
      GPU->conv2d_bwd(&gctx, &s, dy.d, x.d, w.d, NULL, dw.d, db.d);
      CMP("conv2d_bwd dw (two batched GEMMs)", dw, GEMM);
      CMP("conv2d_bwd dbias (two batched GEMMs)", db, GEMM);
    } else {
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
    }
    struct t *all[] = {&x, &w, &b, &y, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
      drop(all[i]);
  }
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
    CPU->maxpool2d_fwd(&cctx, n, c, h, w, k, s, x.h, y.h, NULL); /* inference: no idx */
    GPU->maxpool2d_fwd(&gctx, n, c, h, w, k, s, x.d, y.d, NULL);
    CMP("maxpool_fwd without idx", y, EXACT);
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

/* Training forward (statistics, running buffers, num_batches_tracked),
 * backward, then the eval forward, on inputs shifted by `offset` (large
 * offsets test the two-pass variance). */
static void batchnorm_case(int n, int c, int hw, float offset) {
  size_t len = (size_t)n * c * hw;
  struct t x = mk(len), gamma = mk(c), beta = mk(c), rm = mk(c), rv = mk(c), y = mk(len);
  struct t sm = mk(c), sr = mk(c), dy = mk(len), dx = mk(len), dg = mk(c), dbt = mk(c);
  if (offset != 0) offset_by(&x, offset);
  for (int i = 0; i < c; i++)
    rv.h[i] = 0.5f + 0.5f * fabsf(rv.h[i]); /* a variance */
  GPU->upload(GPU, rv.d, rv.h, c * sizeof(float));
  int64_t tracked = 41, *tracked_d = dev(&tracked, sizeof tracked);
  char what[96];
#define BN_CMP(name, t)                                                                            \
  do {                                                                                             \
    snprintf(what, sizeof what, "batchnorm %s (offset %g)", name, offset);                         \
    CMP(what, t, RED);                                                                             \
  } while (0)
  CPU->batchnorm2d_fwd(&cctx, n, c, hw, x.h, gamma.h, beta.h, rm.h, rv.h, &tracked, 0.1f, 1e-5f, 1,
                       y.h, sm.h, sr.h);
  GPU->batchnorm2d_fwd(&gctx, n, c, hw, x.d, gamma.d, beta.d, rm.d, rv.d, tracked_d, 0.1f, 1e-5f, 1,
                       y.d, sm.d, sr.d);
  cmp_bytes("batchnorm_fwd num_batches_tracked", tracked_d, &tracked, sizeof tracked);
  BN_CMP("fwd y", y);
  BN_CMP("fwd running_mean", rm);
  BN_CMP("fwd running_var", rv);
  BN_CMP("fwd save_mean", sm);
  BN_CMP("fwd save_rstd", sr);
  CPU->batchnorm2d_bwd(&cctx, n, c, hw, dy.h, x.h, gamma.h, sm.h, sr.h, dx.h, dg.h, dbt.h);
  GPU->batchnorm2d_bwd(&gctx, n, c, hw, dy.d, x.d, gamma.d, sm.d, sr.d, dx.d, dg.d, dbt.d);
  BN_CMP("bwd dx", dx);
  BN_CMP("bwd dgamma", dg);
  BN_CMP("bwd dbeta", dbt);
  CPU->batchnorm2d_fwd(&cctx, n, c, hw, x.h, gamma.h, beta.h, rm.h, rv.h, &tracked, 0.1f, 1e-5f, 0,
                       y.h, sm.h, sr.h);
  GPU->batchnorm2d_fwd(&gctx, n, c, hw, x.d, gamma.d, beta.d, rm.d, rv.d, tracked_d, 0.1f, 1e-5f, 0,
                       y.d, sm.d, sr.d);
  BN_CMP("fwd eval", y);
#undef BN_CMP
  cmp_bytes("batchnorm_fwd eval num_batches_tracked", tracked_d, &tracked, sizeof tracked);
  GPU->release(GPU, tracked_d);
  struct t *all[] = {&x, &gamma, &beta, &rm, &rv, &y, &sm, &sr, &dy, &dx, &dg, &dbt};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    drop(all[i]);
}

static void test_norm_offset(void) {
  layernorm_case(37, 300, 1000.0f);  /* ~10 values per lane of the row's warp */
  batchnorm_case(4, 5, 97, 1000.0f); /* 388 values per channel: 256 threads, partial */
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

int main(void) {
  oc_open();
  test_memset0();
  test_matmul();
  test_tf32();
  test_timed();
  test_linear();
  test_conv2d();
  batchnorm_case(3, 5, 37, 0);
  test_pool_means();
  layernorm_case(37, 70, 0);
  test_norm_offset();
  test_attention();
  return oc_close(
      "every matrix, convolution, normalisation, pooling and attention op of CUDA matches "
      "the CPU backend");
}
