/* test_grad_conv2d.c — Conv2d forward against a float64 direct convolution,
 * backward (dx, dw, dbias) against the float64 analytic gradient everywhere
 * and against central differences of the float64 forward (every element on
 * small shapes, a sample on large ones), at thread counts 1 and 2.
 *
 * Tolerances are the rigorous float32 dot-product bound: a sum of K float32
 * products differs from the exact one by at most gamma(K) * sum |terms| with
 * gamma(K) = K u / (1 - K u), u = 2^-24. Each check states its K; the bound
 * covers any summation order, so it holds for every GEMM blocking and thread
 * split, and `absref` (the reference evaluated on absolute values) supplies
 * sum |terms| per element. Shapes that take the Winograd path (3x3, stride
 * 1, >= 16 channels) get the same kind of bound for the products Winograd
 * forms (winograd_abs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/winograd.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f
/* Scratch overrun guard. */
#define CANARY 16

/* c (n, m) = a (n, k) . b (k, m) */
static void mm(const double *a, const double *b, double *c, int n, int k, int m) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double acc = 0.0;
      for (int l = 0; l < k; l++)
        acc += a[i * k + l] * b[l * m + j];
      c[i * m + j] = acc;
    }
}

/* out (n, n) = l (n, k) . x (k, k) . l^T: the sandwich every transform is. */
static void sandwich(const double *l, const double *x, double *out, int n, int k) {
  double t[16], lt[16];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < k; j++)
      lt[j * n + i] = l[i * k + j];
  mm(l, x, t, n, k, k);
  mm(t, lt, out, n, k, n);
}

/* The absolute values of F(2x2, 3x3)'s matrices (kernels/cpu/winograd.c):
 * B^T (4, 4), G (4, 3), A^T (2, 4), and B = (B^T)^T, G^T, A = (A^T)^T. */
static const double BT_ABS[16] = {1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1};
static const double B_ABS[16] = {1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1};
static const double G_ABS[12] = {1, 0, 0, .5, .5, .5, .5, .5, .5, 0, 0, 1};
static const double GT_ABS[12] = {1, .5, .5, 0, 0, .5, .5, 0, 0, .5, .5, 1};
static const double AT_ABS[8] = {1, 1, 1, 0, 0, 1, 1, 1};
static const double A_ABS[8] = {1, 0, 1, 1, 1, 1, 0, 1};

struct conv_case {
  struct conv2d_shape s;
  int bias;
};

static size_t x_len(const struct conv2d_shape *s) { return (size_t)s->n * s->c * s->h * s->w; }
static size_t w_len(const struct conv2d_shape *s) { return (size_t)s->oc * s->c * s->kh * s->kw; }
static size_t y_len(const struct conv2d_shape *s) { return (size_t)s->n * s->oc * s->oh * s->ow; }

/* Input x (n, c, h, w) at (i, ci, iy, ix), 0 in the padding; -1 if outside. */
static long x_at(const struct conv2d_shape *s, int i, int ci, int iy, int ix) {
  if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) return -1;
  return (((long)i * s->c + ci) * s->h + iy) * s->w + ix;
}

/* in = [x | w | bias (oc, when used)] -> y (n, oc, oh, ow), direct loops. */
static void conv_ref(const double *in, double *y, void *ud) {
  const struct conv_case *cc = ud;
  const struct conv2d_shape *s = &cc->s;
  const double *x = in, *w = in + x_len(s), *b = w + w_len(s);
  for (int i = 0; i < s->n; i++)
    for (int o = 0; o < s->oc; o++)
      for (int oy = 0; oy < s->oh; oy++)
        for (int ox = 0; ox < s->ow; ox++) {
          double acc = cc->bias ? b[o] : 0.0;
          for (int ci = 0; ci < s->c; ci++)
            for (int ki = 0; ki < s->kh; ki++)
              for (int kj = 0; kj < s->kw; kj++) {
                long xi =
                    x_at(s, i, ci, oy * s->stride - s->pad + ki, ox * s->stride - s->pad + kj);
                if (xi >= 0) acc += w[((o * s->c + ci) * s->kh + ki) * s->kw + kj] * x[xi];
              }
          y[(((long)i * s->oc + o) * s->oh + oy) * s->ow + ox] = acc;
        }
}

/* Analytic gradients of sum dy * y: dx, dw, db written (not accumulated). */
static void conv_ref_bwd(const struct conv2d_shape *s, const double *dy, const double *x,
                         const double *w, double *dx, double *dw, double *db) {
  memset(dx, 0, x_len(s) * sizeof *dx);
  memset(dw, 0, w_len(s) * sizeof *dw);
  memset(db, 0, (size_t)s->oc * sizeof *db);
  for (int i = 0; i < s->n; i++)
    for (int o = 0; o < s->oc; o++)
      for (int oy = 0; oy < s->oh; oy++)
        for (int ox = 0; ox < s->ow; ox++) {
          double g = dy[(((long)i * s->oc + o) * s->oh + oy) * s->ow + ox];
          db[o] += g;
          for (int ci = 0; ci < s->c; ci++)
            for (int ki = 0; ki < s->kh; ki++)
              for (int kj = 0; kj < s->kw; kj++) {
                long xi =
                    x_at(s, i, ci, oy * s->stride - s->pad + ki, ox * s->stride - s->pad + kj);
                long wi = ((o * s->c + ci) * s->kh + ki) * s->kw + kj;
                if (xi < 0) continue;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
}

static double *absd(const double *a, size_t n) {
  double *r = malloc(n * sizeof *r);
  for (size_t i = 0; i < n; i++)
    r[i] = fabs(a[i]);
  return r;
}

/* d/d in[j] of sum wy * conv_ref(in) by central differences. */
static double numeric_at(struct conv_case *cc, double *in, size_t j, const double *wy,
                         double *ybuf) {
  const double h = 1e-5;
  size_t ny = y_len(&cc->s);
  double x0 = in[j], lp = 0, lm = 0;
  in[j] = x0 + h;
  conv_ref(in, ybuf, cc);
  for (size_t i = 0; i < ny; i++)
    lp += wy[i] * ybuf[i];
  in[j] = x0 - h;
  conv_ref(in, ybuf, cc);
  for (size_t i = 0; i < ny; i++)
    lm += wy[i] * ybuf[i];
  in[j] = x0;
  return (lp - lm) / (2 * h);
}

/* The Winograd path's error bounds. F(2x2, 3x3) forms other products than
 * direct convolution (transformed kernels times transformed input tiles), so
 * direct convolution's sum |w x| does not bound its error; the same
 * algorithm run on absolute values (|x|, |w|, |dy| and the transforms'
 * |coefficients|) sums the absolute values of every product it forms, and
 * times gamma(D) bounds the float32 error when each product passes through at
 * most D roundings (the depths are stated where they are used). Written:
 * ybound (n, oc, oh, ow) + |bias|, dxbound (n, c, h, w) + GRAD_INIT and
 * dwbound (oc, c, 3, 3) + GRAD_INIT. */
static void winograd_abs(const struct conv2d_shape *s, const double *x, const double *w,
                         const double *bias, const double *dy, double *ybound, double *dxbound,
                         double *dwbound) {
  int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, c = s->c, oc = s->oc;
  double *u = malloc((size_t)oc * c * 16 * sizeof *u);
  double *du = calloc((size_t)oc * c * 16, sizeof *du);
  double *v = malloc((size_t)c * 16 * sizeof *v), *dm = malloc((size_t)oc * 16 * sizeof *dm);
  for (int k = 0; k < oc * c; k++) {
    double g[9];
    for (int j = 0; j < 9; j++)
      g[j] = fabs(w[9 * k + j]);
    sandwich(G_ABS, g, u + 16 * k, 4, 3);
  }
  for (size_t j = 0; j < x_len(s); j++)
    dxbound[j] = GRAD_INIT;
  for (int i = 0; i < s->n; i++)
    for (int ty = 0; ty < th; ty++)
      for (int tx = 0; tx < tw; tx++) {
        for (int ci = 0; ci < c; ci++) { /* |B^T| |d| |B| */
          double d[16];
          for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) {
              long xi = x_at(s, i, ci, 2 * ty + r - s->pad, 2 * tx + q - s->pad);
              d[4 * r + q] = xi >= 0 ? fabs(x[xi]) : 0.0;
            }
          sandwich(BT_ABS, d, v + 16 * ci, 4, 4);
        }
        for (int o = 0; o < oc; o++) { /* |A| |dY| |A^T|, and the outputs */
          double g[4] = {0}, m[16] = {0}, yt[4];
          for (int r = 0; r < 2; r++)
            for (int q = 0; q < 2; q++)
              if (2 * ty + r < s->oh && 2 * tx + q < s->ow)
                g[2 * r + q] =
                    fabs(dy[(((long)i * oc + o) * s->oh + 2 * ty + r) * s->ow + 2 * tx + q]);
          sandwich(A_ABS, g, dm + 16 * o, 4, 2);
          for (int ci = 0; ci < c; ci++)
            for (int e = 0; e < 16; e++) {
              m[e] += u[16 * ((long)o * c + ci) + e] * v[16 * ci + e];
              du[16 * ((long)o * c + ci) + e] += dm[16 * o + e] * v[16 * ci + e];
            }
          sandwich(AT_ABS, m, yt, 2, 4);
          for (int r = 0; r < 2; r++)
            for (int q = 0; q < 2; q++)
              if (2 * ty + r < s->oh && 2 * tx + q < s->ow)
                ybound[(((long)i * oc + o) * s->oh + 2 * ty + r) * s->ow + 2 * tx + q] =
                    yt[2 * r + q] + (bias ? fabs(bias[o]) : 0.0);
        }
        for (int ci = 0; ci < c; ci++) { /* |B| (sum over o of |U|^T |dM|) |B^T| */
          double z[16] = {0}, dd[16];
          for (int o = 0; o < oc; o++)
            for (int e = 0; e < 16; e++)
              z[e] += u[16 * ((long)o * c + ci) + e] * dm[16 * o + e];
          sandwich(B_ABS, z, dd, 4, 4);
          for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) {
              long xi = x_at(s, i, ci, 2 * ty + r - s->pad, 2 * tx + q - s->pad);
              if (xi >= 0) dxbound[xi] += dd[4 * r + q];
            }
        }
      }
  for (int k = 0; k < oc * c; k++) { /* |G^T| |dU| |G| */
    double dg[9];
    sandwich(GT_ABS, du + 16 * k, dg, 3, 4);
    for (int j = 0; j < 9; j++)
      dwbound[9 * k + j] = dg[j] + GRAD_INIT;
  }
  free(u), free(du), free(v), free(dm);
}

/* Inputs up to this many are differentiated numerically in full; larger
 * cases check a sample of SAMPLES entries each of x, w and bias. */
#define FULL_NUMERIC 700
#define SAMPLES 8

/* Checks the op's gradient `got` (GRAD_INIT already added by the op's
 * accumulation) at entry j of `in` against central differences. The
 * difference itself is accurate to ~1e-9 here (linear in each input, h
 * cancels), far inside the float32 bound it is tested with. */
static int numeric_check(const char *what, struct conv_case *cc, double *in, size_t off, size_t len,
                         const float *got, const double *absref, double k, const double *wy,
                         double *ybuf) {
  int bad = 0;
  int full = len <= FULL_NUMERIC;
  size_t count = full ? len : SAMPLES;
  for (size_t q = 0; q < count; q++) {
    /* Samples spread over the buffer and always include both ends. */
    size_t j = full ? q : (q == count - 1 ? len - 1 : (size_t)(ops_rng_bits(77, off, q) % len));
    double num = numeric_at(cc, in, off + j, wy, ybuf) + GRAD_INIT;
    double tol = gc_gamma(k) * absref[j] + 1e-7;
    if (!(fabs(got[j] - num) <= tol)) {
      if (bad < 5)
        fprintf(stderr, "%s numeric[%zu]: got %.9g want %.9g (tol %.3g)\n", what, j, got[j], num,
                tol);
      bad++;
    }
  }
  return bad;
}

static void run_case(struct conv_case cc, uint64_t seed) {
  struct conv2d_shape *s = &cc.s;
  s->oh = (s->h + 2 * s->pad - s->kh) / s->stride + 1;
  s->ow = (s->w + 2 * s->pad - s->kw) / s->stride + 1;
  size_t nx = x_len(s), nw = w_len(s), ny = y_len(s), nb = (size_t)s->oc;
  size_t nin = nx + nw + nb;
  float *in = malloc(nin * sizeof *in), *wy = malloc(ny * sizeof *wy);
  double *ind = calloc(nin, sizeof *ind), *wyd = calloc(ny, sizeof *wyd);
  double *yd = malloc(ny * sizeof *yd), *yabs = malloc(ny * sizeof *yabs);
  double *gd = malloc(nin * sizeof *gd), *gabs = malloc(nin * sizeof *gabs);
  gc_fill(in, nin, seed, 1.0f);
  gc_fill(wy, ny, seed + 1, 1.0f);
  for (size_t i = 0; i < nin; i++)
    ind[i] = in[i];
  for (size_t i = 0; i < ny; i++)
    wyd[i] = wy[i];
  if (!cc.bias)
    for (size_t i = nx + nw; i < nin; i++)
      ind[i] = 0.0;

  /* References: values, analytic gradients, and both on absolute values for
   * the error bounds. */
  conv_ref(ind, yd, &cc);
  conv_ref_bwd(s, wyd, ind, ind + nx, gd, gd + nx, gd + nx + nw);
  double *inabs = absd(ind, nin), *wyabs = absd(wyd, ny);
  conv_ref(inabs, yabs, &cc);
  conv_ref_bwd(s, wyabs, inabs, inabs + nx, gabs, gabs + nx, gabs + nx + nw);
  for (size_t i = 0; i < nin; i++)
    gd[i] += GRAD_INIT;
  for (size_t i = 0; i < nin; i++)
    gabs[i] += GRAD_INIT;
  int wino = winograd_fits(s);
  if (wino)
    winograd_abs(s, ind, ind + nx, cc.bias ? ind + nx + nw : NULL, wyd, yabs, gabs, gabs + nx);

  const struct ops_backend *ops = ops_cpu();
  float *y_first = NULL, *dx_first = NULL;
  for (int threads = 1; threads <= 2; threads++) {
    size_t sl = ops->conv2d_scratch(s, threads);
    float *scratch = malloc((sl + CANARY) * sizeof *scratch);
    for (int i = 0; i < CANARY; i++)
      scratch[sl + i] = 1234.5f;
    struct ops_ctx ctx = {.threads = threads, .scratch = scratch, .scratch_len = sl};
    float *y = malloc(ny * sizeof *y), *g = malloc(nin * sizeof *g);
    const float *bias = cc.bias ? in + nx + nw : NULL;

    ops->conv2d_fwd(&ctx, s, in, in + nx, bias, y);
    /* Forward: reduction of K = c*kh*kw products, plus the bias add.
     * Winograd: 2 roundings in B^T d B, 4 in G g G^T, the product, c - 1 in
     * the GEMM's sum, 4 in A^T M A, the bias add. */
    double kf = wino ? s->c + 11.0 : (double)s->c * s->kh * s->kw + 1;
    TU_CHECK(gc_cmp_bound("y", y, yd, yabs, ny, kf) == 0);

    for (size_t i = 0; i < nin; i++)
      g[i] = GRAD_INIT;
    float *db = cc.bias ? g + nx + nw : NULL;
    ops->conv2d_bwd(&ctx, s, wy, in, in + nx, g, g + nx, db);
    /* dx: oc products per column (GEMM), summed over up to kh*kw taps
     * (col2im), then the padded buffer and GRAD_INIT adds. */
    double kdx = (double)s->oc * s->kh * s->kw + s->kh * s->kw + 2;
    /* Winograd dx: 2 in A dY A^T, 4 in U, the product, oc - 1 in the GEMM,
     * 4 in B dV B^T, 3 overlap-adds of tiles, the add into dx. */
    if (wino) kdx = s->oc + 14.0;
    /* dw, dbias: one term per output position of every image, plus the
     * per-thread partial sums and the GRAD_INIT add. */
    double kdw = (double)s->n * s->oh * s->ow + threads + 1;
    /* Winograd dw: 2 in A dY A^T, 2 in B^T d B, the product, one term per
     * tile of every image plus an add per group of images (at most n) in the
     * GEMMs, the per-thread partial sums, 4 in G^T dU G, the GRAD_INIT add. */
    double kdww =
        wino ? (double)s->n * ((s->oh + 1) / 2) * ((s->ow + 1) / 2) + s->n + threads + 10 : kdw;
    TU_CHECK(gc_cmp_bound("dx", g, gd, gabs, nx, kdx) == 0);
    TU_CHECK(gc_cmp_bound("dw", g + nx, gd + nx, gabs + nx, nw, kdww) == 0);
    if (cc.bias) TU_CHECK(gc_cmp_bound("dbias", db, gd + nx + nw, gabs + nx + nw, nb, kdw) == 0);
    for (int i = 0; i < CANARY; i++)
      TU_CHECK(scratch[sl + i] == 1234.5f);

    if (threads == 1) {
      double *ybuf = malloc(ny * sizeof *ybuf);
      TU_CHECK(numeric_check("dx", &cc, ind, 0, nx, g, gabs, kdx, wyd, ybuf) == 0);
      TU_CHECK(numeric_check("dw", &cc, ind, nx, nw, g + nx, gabs + nx, kdww, wyd, ybuf) == 0);
      if (cc.bias)
        TU_CHECK(
            numeric_check("dbias", &cc, ind, nx + nw, nb, db, gabs + nx + nw, kdw, wyd, ybuf) == 0);
      free(ybuf);
      y_first = y;
      dx_first = g;
    } else {
      /* Each image's output and input gradient are computed alone whatever
       * the thread count, so they must be bit-identical across counts. */
      TU_CHECK(memcmp(y, y_first, ny * sizeof *y) == 0);
      TU_CHECK(memcmp(g, dx_first, nx * sizeof *g) == 0);

      /* NULL gradients are skipped: only dw again doubles its gradient. */
      ops->conv2d_bwd(&ctx, s, wy, in, in + nx, NULL, g + nx, NULL);
      double *twice = malloc(nw * sizeof *twice);
      for (size_t i = 0; i < nw; i++)
        twice[i] = 2 * gd[nx + i] - GRAD_INIT;
      TU_CHECK(gc_cmp_bound("dw twice", g + nx, twice, gabs + nx, nw, 2 * kdww) == 0);
      for (size_t i = 0; i < nx; i++)
        TU_CHECK(g[i] == dx_first[i]);
      free(twice);
      free(y), free(g), free(y_first), free(dx_first);
    }
    free(scratch);
  }
  free(in), free(wy), free(ind), free(wyd), free(yd), free(yabs), free(gd), free(gabs);
  free(inabs), free(wyabs);
}

int main(void) {
  /* {n, c, h, w, oc, kh, kw, stride, pad} (oh, ow derived), bias */
  /* The attn_cnn stack at batch 2. */
  run_case((struct conv_case){{2, 3, 32, 32, 3, 5, 5, 1, 2, 0, 0}, 1}, 101);
  run_case((struct conv_case){{2, 3, 32, 32, 32, 3, 3, 1, 1, 0, 0}, 1}, 102);
  run_case((struct conv_case){{2, 32, 16, 16, 64, 3, 3, 1, 1, 0, 0}, 1}, 103);
  /* Winograd with ResNet10's paddings: p2 on 4x4 (6x6 out, 9 tiles, groups of
   * 16 images: 18 images make a full and a partial group, one per thread);
   * p0 with odd outputs (5x7: cut tiles), no bias. */
  run_case((struct conv_case){{18, 16, 4, 4, 16, 3, 3, 1, 2, 0, 0}, 1}, 111);
  run_case((struct conv_case){{3, 16, 7, 9, 17, 3, 3, 1, 0, 0, 0}, 0}, 112);
  /* Stride 2 on an odd size (last window drops a column), no bias. */
  run_case((struct conv_case){{3, 4, 9, 9, 5, 3, 3, 2, 1, 0, 0}, 0}, 104);
  /* ResNet stem k7 s2 p3 on a non-square image. */
  run_case((struct conv_case){{2, 3, 15, 13, 4, 7, 7, 2, 3, 0, 0}, 1}, 105);
  /* 1x1 stride 1: the no-im2col path, with and without bias. */
  run_case((struct conv_case){{3, 6, 5, 7, 4, 1, 1, 1, 0, 0, 0}, 1}, 106);
  run_case((struct conv_case){{3, 6, 5, 7, 4, 1, 1, 1, 0, 0, 0}, 0}, 107);
  /* 1x1 stride 2 (a downsampling shortcut) goes through im2col. */
  run_case((struct conv_case){{2, 5, 7, 6, 3, 1, 1, 2, 0, 0, 0}, 1}, 108);
  /* One image on two threads, an even kernel, no padding. */
  run_case((struct conv_case){{1, 2, 7, 5, 3, 2, 2, 1, 0, 0, 0}, 1}, 109);
  /* Non-overlapping k3 s3 with floor (10 -> 3 rows), more threads than work
   * per thread. */
  run_case((struct conv_case){{5, 3, 10, 8, 2, 3, 3, 3, 0, 0, 0}, 1}, 110);
  TU_DONE();
}
