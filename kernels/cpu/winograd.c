/* winograd.c — Conv2d 3x3 stride 1 (any padding) by Winograd's minimal
 * filtering F(2x2, 3x3) (Lavin & Gray, 2016). Each 2x2 output tile is
 *   Y = A^T [ sum over input channels of (G g G^T) . (B^T d B) ] A
 * for its 4x4 input tile d and 3x3 kernels g ('.' elementwise), so the sum
 * over channels becomes 16 GEMMs, one per position xi of the 4x4 tile:
 *   M[xi] (oc, N) = U[xi] (oc, c) V[xi] (c, N),   N = the tiles of G images,
 * 16 multiplies per tile and channel pair where im2col needs 36 (0.44x the
 * GEMM work). Backward runs the adjoints of the same linear maps:
 *   dM = A dY A^T,  dV[xi] = U[xi]^T dM[xi],  dd = B dV B^T (tiles overlap-added),
 *   dU[xi] += dM[xi] V[xi]^T,  dg = G^T dU G.
 * The transforms' coefficients are 0, +-1 and +-1/2, so the rounding they
 * add is a few float additions per term (bounds in tests/grad/test_grad_conv2d.c).
 *
 * Scratch (each of the 16 planes padded by PLANE_PAD floats): U (16, oc, c),
 * shared, then one region per thread:
 *   V  (16, c, N)    transformed input tiles; dV overwrites it in backward
 *   M  (16, oc, N)   the GEMMs' output (forward) or dM (backward)
 *   xp (c, hp, wp)   one zero-padded image, hp = 2*th + 2 for th tile rows
 *   dU (16, oc, c)   the thread's weight-gradient partial (backward)
 * Images are split as im2col's are (groups counted from image 0), so each
 * image's output and input gradient do not depend on the thread count. */
#include "kernels/cpu/winograd.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/cpu/conv_split.h"

/* The GEMMs are (oc, c) x (c, N): groups of images give them about this many
 * columns, as im2col's groups do. */
#define WINO_COLS 256
#define WINO_GROUP_MAX 16
/* Below this many channels the 16 GEMMs of K = c are too thin for the
 * transforms to pay (the 3-channel stems stay on im2col). */
#define WINO_MIN_CHANNELS 16

struct wino_dims {
  int th, tw, tiles; /* 2x2 output tiles per image: th rows, tw columns */
  int hp, wp;        /* padded image holding every tile's 4x4 input */
  int group;         /* images per GEMM */
  size_t cols;       /* GEMM column capacity: group * tiles */
  /* Strides, in floats, of the 16 planes of U (16, oc, c), V (16, c, cols)
   * and M (16, oc, cols): one cache line more than the plane, see PLANE_PAD. */
  size_t uplane, vplane, mplane;
};

/* The transforms touch all 16 planes at the same offset. With channel counts
 * and tile counts powers of two, unpadded planes lie a multiple of 4 KiB
 * apart, so the 16 streams share one L1 set and evict each other; a 64-byte
 * shift per plane spreads them. Measured on an AVX-512 Xeon, one thread, 64
 * images, forward: c64 32x32 -> 32 from 77.6 to 20.8 ms (im2col: 44.2 ms),
 * c128 16x16 -> 128 from 57.6 to 29.6 ms; the arithmetic, and so every bit
 * of the result, is unchanged. */
#define PLANE_PAD 16

static size_t plane_stride(size_t floats) { return floats + PLANE_PAD; }

static struct wino_dims wino_dims(const struct conv2d_shape *s) {
  struct wino_dims d;
  d.th = (s->oh + 1) / 2;
  d.tw = (s->ow + 1) / 2;
  d.tiles = d.th * d.tw;
  d.hp = 2 * d.th + 2; /* >= oh + 2 = h + 2 pad */
  d.wp = 2 * d.tw + 2;
  d.group =
      d.tiles >= WINO_COLS ? 1 : conv_imin(WINO_GROUP_MAX, (WINO_COLS + d.tiles - 1) / d.tiles);
  d.cols = (size_t)d.group * d.tiles;
  d.uplane = plane_stride((size_t)s->oc * s->c);
  d.vplane = plane_stride((size_t)s->c * d.cols);
  d.mplane = plane_stride((size_t)s->oc * d.cols);
  return d;
}

/* One thread's scratch, in floats. */
struct wino_region {
  size_t v, m, xp, du, total;
};

static struct wino_region wino_region(const struct conv2d_shape *s, const struct wino_dims *d) {
  struct wino_region r;
  r.v = 16 * d->vplane;
  r.m = 16 * d->mplane;
  r.xp = (size_t)s->c * d->hp * d->wp;
  r.du = 16 * d->uplane;
  r.total = r.v + r.m + r.xp + r.du;
  return r;
}

static int wino_threads(const struct ops_ctx *ctx, const struct conv2d_shape *s,
                        const struct wino_dims *d) {
  return conv_imax(1, conv_imin(ctx->threads, (s->n + d->group - 1) / d->group));
}

int winograd_fits(const struct conv2d_shape *s) {
  return s->kh == 3 && s->kw == 3 && s->stride == 1 && s->c >= WINO_MIN_CHANNELS &&
         s->oc >= WINO_MIN_CHANNELS;
}

size_t winograd_scratch(const struct conv2d_shape *s, int threads) {
  struct wino_dims d = wino_dims(s);
  struct wino_region r = wino_region(s, &d);
  /* U has dU's size */
  return r.du + (size_t)conv_imax(1, conv_imin(threads, s->n)) * r.total;
}

/* U[xi] (oc, c) = G g G^T for every kernel g (3, 3) of w (oc, c, 3, 3). */
static void weight_transform(const struct ops_ctx *ctx, const struct conv2d_shape *s,
                             const struct wino_dims *d, const float *w, float *u) {
  long kernels = (long)s->oc * s->c;
  size_t plane = d->uplane;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (kernels > 4096)
  for (long k = 0; k < kernels; k++) {
    const float *g = w + 9 * k;
    float t[4][3]; /* G g */
    for (int q = 0; q < 3; q++) {
      float g0 = g[q], g1 = g[3 + q], g2 = g[6 + q];
      t[0][q] = g0;
      t[1][q] = 0.5f * (g0 + g1 + g2);
      t[2][q] = 0.5f * (g0 - g1 + g2);
      t[3][q] = g2;
    }
    for (int r = 0; r < 4; r++) { /* (G g) G^T, row by row */
      u[(4 * r + 0) * plane + k] = t[r][0];
      u[(4 * r + 1) * plane + k] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
      u[(4 * r + 2) * plane + k] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
      u[(4 * r + 3) * plane + k] = t[r][2];
    }
  }
}

/* V[xi][ci][col0 + tile] = (B^T d B)[xi] for each 4x4 tile d of xp (c, hp, wp);
 * tile (ty, tx) starts at row 2 ty, column 2 tx. */
static void input_transform(const struct conv2d_shape *s, const struct wino_dims *d,
                            const float *xp, float *v, size_t col0) {
  size_t plane = d->vplane;
  int wp = d->wp;
  for (int ci = 0; ci < s->c; ci++) {
    const float *img = xp + (size_t)ci * d->hp * wp;
    float *vc = v + (size_t)ci * d->cols + col0;
    for (int ty = 0; ty < d->th; ty++)
      for (int tx = 0; tx < d->tw; tx++) {
        const float *p = img + (size_t)(2 * ty) * wp + 2 * tx;
        float t[4][4]; /* B^T d */
        for (int q = 0; q < 4; q++) {
          float d0 = p[q], d1 = p[wp + q], d2 = p[2 * wp + q], d3 = p[3 * wp + q];
          t[0][q] = d0 - d2;
          t[1][q] = d1 + d2;
          t[2][q] = d2 - d1;
          t[3][q] = d1 - d3;
        }
        size_t col = (size_t)ty * d->tw + tx;
        for (int r = 0; r < 4; r++) { /* (B^T d) B, row by row */
          vc[(4 * r + 0) * plane + col] = t[r][0] - t[r][2];
          vc[(4 * r + 1) * plane + col] = t[r][1] + t[r][2];
          vc[(4 * r + 2) * plane + col] = t[r][2] - t[r][1];
          vc[(4 * r + 3) * plane + col] = t[r][1] - t[r][3];
        }
      }
  }
}

/* y_img (oc, oh, ow) = A^T M A (+ bias) for each tile, M[xi][o][col0 + tile];
 * a last tile reaching past an odd oh or ow is cut. */
static void output_transform(const struct conv2d_shape *s, const struct wino_dims *d,
                             const float *m, size_t col0, const float *bias, float *y_img) {
  size_t plane = d->mplane;
  for (int o = 0; o < s->oc; o++) {
    const float *mo = m + (size_t)o * d->cols + col0;
    float *yo = y_img + (size_t)o * s->oh * s->ow;
    float b = bias ? bias[o] : 0.0f;
    for (int ty = 0; ty < d->th; ty++)
      for (int tx = 0; tx < d->tw; tx++) {
        size_t col = (size_t)ty * d->tw + tx;
        float t[2][4]; /* A^T M */
        for (int q = 0; q < 4; q++) {
          float m0 = mo[q * plane + col], m1 = mo[(4 + q) * plane + col];
          float m2 = mo[(8 + q) * plane + col], m3 = mo[(12 + q) * plane + col];
          t[0][q] = m0 + m1 + m2;
          t[1][q] = m1 - m2 - m3;
        }
        for (int r = 0; r < 2 && 2 * ty + r < s->oh; r++) {
          float *row = yo + (size_t)(2 * ty + r) * s->ow + 2 * tx;
          row[0] = t[r][0] + t[r][1] + t[r][2] + b;
          if (2 * tx + 1 < s->ow) row[1] = t[r][1] - t[r][2] - t[r][3] + b;
        }
      }
  }
}

/* dM[xi][o][col0 + tile] = (A dY A^T)[xi] for each 2x2 tile of dy_img (oc, oh, ow),
 * zero past an odd edge. */
static void grad_transform(const struct conv2d_shape *s, const struct wino_dims *d,
                           const float *dy_img, float *m, size_t col0) {
  size_t plane = d->mplane;
  for (int o = 0; o < s->oc; o++) {
    const float *dyo = dy_img + (size_t)o * s->oh * s->ow;
    float *mo = m + (size_t)o * d->cols + col0;
    for (int ty = 0; ty < d->th; ty++)
      for (int tx = 0; tx < d->tw; tx++) {
        float g[2][2] = {{0}};
        for (int r = 0; r < 2 && 2 * ty + r < s->oh; r++)
          for (int c = 0; c < 2 && 2 * tx + c < s->ow; c++)
            g[r][c] = dyo[(size_t)(2 * ty + r) * s->ow + 2 * tx + c];
        float a[4][2]; /* A dY */
        for (int c = 0; c < 2; c++) {
          a[0][c] = g[0][c];
          a[1][c] = g[0][c] + g[1][c];
          a[2][c] = g[0][c] - g[1][c];
          a[3][c] = -g[1][c];
        }
        size_t col = (size_t)ty * d->tw + tx;
        for (int r = 0; r < 4; r++) { /* (A dY) A^T, row by row */
          mo[(4 * r + 0) * plane + col] = a[r][0];
          mo[(4 * r + 1) * plane + col] = a[r][0] + a[r][1];
          mo[(4 * r + 2) * plane + col] = a[r][0] - a[r][1];
          mo[(4 * r + 3) * plane + col] = -a[r][1];
        }
      }
  }
}

/* xp (c, hp, wp) += B dV B^T for each tile, dV[xi][ci][col0 + tile]; the
 * tiles overlap by two rows and columns. */
static void input_grad_transform(const struct conv2d_shape *s, const struct wino_dims *d,
                                 const float *v, size_t col0, float *xp) {
  size_t plane = d->vplane;
  int wp = d->wp;
  for (int ci = 0; ci < s->c; ci++) {
    const float *vc = v + (size_t)ci * d->cols + col0;
    float *img = xp + (size_t)ci * d->hp * wp;
    for (int ty = 0; ty < d->th; ty++)
      for (int tx = 0; tx < d->tw; tx++) {
        size_t col = (size_t)ty * d->tw + tx;
        float e[4][4]; /* B dV */
        for (int q = 0; q < 4; q++) {
          float z0 = vc[q * plane + col], z1 = vc[(4 + q) * plane + col];
          float z2 = vc[(8 + q) * plane + col], z3 = vc[(12 + q) * plane + col];
          e[0][q] = z0;
          e[1][q] = z1 - z2 + z3;
          e[2][q] = z1 + z2 - z0;
          e[3][q] = -z3;
        }
        float *p = img + (size_t)(2 * ty) * wp + 2 * tx;
        for (int r = 0; r < 4; r++) { /* (B dV) B^T, row by row */
          float *row = p + (size_t)r * wp;
          row[0] += e[r][0];
          row[1] += e[r][1] - e[r][2] + e[r][3];
          row[2] += e[r][1] + e[r][2] - e[r][0];
          row[3] += -e[r][3];
        }
      }
  }
}

void winograd_fwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *x,
                  const float *w, const float *bias, float *y) {
  struct wino_dims d = wino_dims(s);
  struct wino_region r = wino_region(s, &d);
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * s->oh * s->ow;
  size_t uplane = d.uplane, vplane = d.vplane, mplane = d.mplane;
  float *u = ctx->scratch;
  weight_transform(ctx, s, &d, w, u);
#pragma omp parallel num_threads(wino_threads(ctx, s, &d))
  {
    int t = omp_get_thread_num(), team = omp_get_num_threads();
    float *v = u + r.du + (size_t)t * r.total, *m = v + r.v, *xp = m + r.m;
    int i0, i1;
    conv_thread_images(s->n, d.group, t, team, &i0, &i1);
    for (int i = i0; i < i1; i += d.group) {
      int g = conv_imin(d.group, i1 - i), n = g * d.tiles;
      for (int j = 0; j < g; j++) {
        conv_pad_image(s->c, s->h, s->w, s->pad, d.hp, d.wp, x + (i + j) * in_len, xp);
        input_transform(s, &d, xp, v, (size_t)j * d.tiles);
      }
      /* M[xi] (oc, n) = U[xi] (oc, c) . V[xi] (c, n) */
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, n, s->c, 1.0f,
                    u + xi * uplane, s->c, v + xi * vplane, (int)d.cols, 0.0f, m + xi * mplane,
                    (int)d.cols);
      for (int j = 0; j < g; j++)
        output_transform(s, &d, m, (size_t)j * d.tiles, bias, y + (i + j) * out_len);
    }
  }
}

void winograd_bwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                  const float *x, const float *w, float *dx, float *dw) {
  if (!dx && !dw) return;
  struct wino_dims d = wino_dims(s);
  struct wino_region r = wino_region(s, &d);
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * s->oh * s->ow;
  size_t uplane = d.uplane, vplane = d.vplane, mplane = d.mplane;
  size_t du_off = r.v + r.m + r.xp;
  float *u = ctx->scratch, *regions = u + r.du;
  if (dx) weight_transform(ctx, s, &d, w, u);
  int nt = wino_threads(ctx, s, &d), team = nt;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
    float *v = regions + (size_t)t * r.total, *m = v + r.v, *xp = m + r.m, *du = v + du_off;
    if (dw) memset(du, 0, r.du * sizeof *du);
    int i0, i1;
    conv_thread_images(s->n, d.group, t, team, &i0, &i1);
    for (int i = i0; i < i1; i += d.group) {
      int g = conv_imin(d.group, i1 - i), n = g * d.tiles;
      for (int j = 0; j < g; j++)
        grad_transform(s, &d, dy + (i + j) * out_len, m, (size_t)j * d.tiles);
      if (dw) {
        for (int j = 0; j < g; j++) {
          conv_pad_image(s->c, s->h, s->w, s->pad, d.hp, d.wp, x + (i + j) * in_len, xp);
          input_transform(s, &d, xp, v, (size_t)j * d.tiles);
        }
        /* dU[xi] (oc, c) += dM[xi] (oc, n) . V[xi] (c, n)^T */
        for (int xi = 0; xi < 16; xi++)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, s->c, n, 1.0f,
                      m + xi * mplane, (int)d.cols, v + xi * vplane, (int)d.cols, 1.0f,
                      du + xi * uplane, s->c);
      }
      if (dx) {
        /* dV[xi] (c, n) = U[xi] (oc, c)^T . dM[xi] (oc, n), over V */
        for (int xi = 0; xi < 16; xi++)
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->c, n, s->oc, 1.0f,
                      u + xi * uplane, s->c, m + xi * mplane, (int)d.cols, 0.0f, v + xi * vplane,
                      (int)d.cols);
        for (int j = 0; j < g; j++) {
          memset(xp, 0, r.xp * sizeof *xp);
          input_grad_transform(s, &d, v, (size_t)j * d.tiles, xp);
          conv_unpad_add(s->c, s->h, s->w, s->pad, d.hp, d.wp, xp, dx + (i + j) * in_len);
        }
      }
    }
  }
  if (!dw) return;
  /* dw (oc, c, 3, 3) += G^T (partials summed in thread order) G */
  long kernels = (long)s->oc * s->c;
#pragma omp parallel for num_threads(ctx->threads) schedule(static) if (kernels > 4096)
  for (long k = 0; k < kernels; k++) {
    float z[4][4];
    for (int xi = 0; xi < 16; xi++) {
      float acc = 0.0f;
      for (int t = 0; t < team; t++)
        acc += regions[(size_t)t * r.total + du_off + (size_t)xi * uplane + (size_t)k];
      z[xi / 4][xi % 4] = acc;
    }
    float h[3][4]; /* G^T dU */
    for (int q = 0; q < 4; q++) {
      h[0][q] = z[0][q] + 0.5f * (z[1][q] + z[2][q]);
      h[1][q] = 0.5f * (z[1][q] - z[2][q]);
      h[2][q] = 0.5f * (z[1][q] + z[2][q]) + z[3][q];
    }
    float *gk = dw + 9 * k;
    for (int a = 0; a < 3; a++) { /* (G^T dU) G, row by row */
      gk[3 * a + 0] += h[a][0] + 0.5f * (h[a][1] + h[a][2]);
      gk[3 * a + 1] += 0.5f * (h[a][1] - h[a][2]);
      gk[3 * a + 2] += 0.5f * (h[a][1] + h[a][2]) + h[a][3];
    }
  }
}
