/* conv2d.c — Conv2d (PyTorch semantics: cross-correlation, zero padding,
 * equal stride and padding in both dimensions). 3x3 stride-1 kernels with
 * enough channels go to Winograd's F(2x2, 3x3) (winograd.c); the rest run
 * as im2col + sgemm over groups
 * of G images: one image when its output plane P = oh*ow is large, more when
 * it is small (ResNet's 6x6 and 3x3 planes), so that every GEMM has at least
 * GROUP_COLS columns instead of P.
 *
 * Images are split into contiguous static blocks, one per OpenMP thread; each
 * thread owns a region of ctx->scratch:
 *   cols (K, G*P)      K = c*kh*kw; absent for 1x1/stride 1/pad 0 (G = 1),
 *                      where the input image already is the column matrix
 *   out (oc, G*P)      G > 1: the group's GEMM output (forward) or its
 *                      gathered output gradient (backward)
 *   pad (c, hp, wp)    one padded image
 *   dw partial (oc, K) and dbias partial (oc), used by backward only
 * The weight gradient is a reduction over images, so each thread sums its
 * images into its own partial and the partials are added to dw in thread
 * order: results are deterministic for a given thread count. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/cpu/conv_split.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/winograd.h"

/* Sum of x (len) in double. Eight independent accumulators let the compiler
 * vectorise (it may not reorder one serial float chain); the order is fixed. */
static double row_sum(const float *x, int len) {
  double acc[8] = {0};
  int j = 0;
  for (; j + 8 <= len; j += 8)
    for (int l = 0; l < 8; l++)
      acc[l] += x[j + l];
  for (; j < len; j++)
    acc[0] += x[j];
  double s = 0.0;
  for (int l = 0; l < 8; l++)
    s += acc[l];
  return s;
}

/* dbias (oc) += dy (n, oc, P) summed over images and positions, each
 * channel on one thread in image order (the Winograd path's bias gradient). */
static void bias_grad(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                      float *dbias) {
  int p = s->oh * s->ow;
  size_t out_len = (size_t)s->oc * p;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int o = 0; o < s->oc; o++) {
    double acc = 0.0;
    for (int i = 0; i < s->n; i++)
      acc += row_sum(dy + i * out_len + (size_t)o * p, p);
    dbias[o] += (float)acc;
  }
}

/* A 1x1 kernel at stride 1 without padding reads the image as it lies:
 * x_img (c, h*w) is exactly the column matrix. */
static int is_pointwise(const struct conv2d_shape *s) {
  return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

/* A GEMM narrower than this many columns spends much of its time packing
 * its operands: images with smaller output planes share GEMMs of about this
 * width (quiet, 2 threads: resnet10 +15 %, conv_vit +10 % training images/s;
 * a width of 1024 gained nothing more). */
#define GROUP_COLS 256
#define GROUP_MAX 16

/* Images per GEMM. */
static int conv_group(const struct conv2d_shape *s) {
  int p = s->oh * s->ow;
  if (is_pointwise(s) || p >= GROUP_COLS) return 1;
  return conv_imin(GROUP_MAX, (GROUP_COLS + p - 1) / p);
}

/* One thread's scratch, in floats. */
struct conv_region {
  size_t cols; /* im2col matrix (K, G*P) */
  size_t out;  /* group output or output gradient (oc, G*P), G > 1 */
  size_t pad;  /* padded image (c, h + 2 pad, w + 2 pad) */
  size_t dw;   /* dw partial (oc, K) followed by the dbias partial (oc) */
  size_t total;
};

static struct conv_region conv_region(const struct conv2d_shape *s) {
  struct conv_region r = {0};
  size_t k = (size_t)s->c * s->kh * s->kw, gp = (size_t)conv_group(s) * s->oh * s->ow;
  if (!is_pointwise(s)) r.cols = k * gp;
  if (conv_group(s) > 1) r.out = (size_t)s->oc * gp;
  if (s->pad > 0) r.pad = (size_t)s->c * (s->h + 2 * s->pad) * (s->w + 2 * s->pad);
  r.dw = (size_t)s->oc * k + (size_t)s->oc;
  r.total = r.cols + r.out + r.pad + r.dw;
  return r;
}

/* Threads actually used: no more than there are groups of images. */
static int conv_threads(const struct ops_ctx *ctx, const struct conv2d_shape *s) {
  int group = conv_group(s);
  return conv_imax(1, conv_imin(ctx->threads, (s->n + group - 1) / group));
}

size_t cpu_conv2d_scratch(const struct conv2d_shape *s, int threads) {
  if (winograd_fits(s)) return winograd_scratch(s, threads);
  return (size_t)conv_imax(1, conv_imin(threads, s->n)) * conv_region(s).total;
}

/* cols (c*kh*kw, oh*ow), rows ld floats apart, from one padded image xp
 * (c, hp, wp). The row copies are short (ow floats): plain loops, which the
 * compiler vectorises inline, beat a memcpy call per row. */
static void im2col(const struct conv2d_shape *s, const float *xp, float *cols, size_t ld) {
  int wp = s->w + 2 * s->pad, hp = s->h + 2 * s->pad, oh = s->oh, ow = s->ow, st = s->stride;
  size_t row = 0;
  for (int ci = 0; ci < s->c; ci++)
    for (int ki = 0; ki < s->kh; ki++)
      for (int kj = 0; kj < s->kw; kj++, row++) {
        float *dst = cols + row * ld;
        for (int oy = 0; oy < oh; oy++, dst += ow) {
          const float *src = xp + ((size_t)ci * hp + oy * st + ki) * wp + kj;
          if (st == 1)
            for (int ox = 0; ox < ow; ox++)
              dst[ox] = src[ox];
          else
            for (int ox = 0; ox < ow; ox++)
              dst[ox] = src[ox * st];
        }
      }
}

/* dxp (c, hp, wp) += the columns cols (c*kh*kw, oh*ow), rows ld floats
 * apart, scattered back to the padded pixels they were read from. */
static void col2im_add(const struct conv2d_shape *s, const float *cols, size_t ld, float *dxp) {
  int wp = s->w + 2 * s->pad, hp = s->h + 2 * s->pad, oh = s->oh, ow = s->ow, st = s->stride;
  size_t row = 0;
  for (int ci = 0; ci < s->c; ci++)
    for (int ki = 0; ki < s->kh; ki++)
      for (int kj = 0; kj < s->kw; kj++, row++) {
        const float *src = cols + row * ld;
        for (int oy = 0; oy < oh; oy++, src += ow) {
          float *dst = dxp + ((size_t)ci * hp + oy * st + ki) * wp + kj;
          if (st == 1)
            for (int ox = 0; ox < ow; ox++)
              dst[ox] += src[ox];
          else
            for (int ox = 0; ox < ow; ox++)
              dst[ox * st] += src[ox];
        }
      }
}

/* The columns of images [i, i + g) side by side: image j's (K, P) block at
 * column j*P of cols (K, g*P). */
static void group_cols(const struct conv2d_shape *s, const struct conv_region *r, const float *x,
                       int i, int g, float *cols, float *xp) {
  size_t in_len = (size_t)s->c * s->h * s->w, p = (size_t)s->oh * s->ow;
  for (int j = 0; j < g; j++) {
    const float *x_img = x + (size_t)(i + j) * in_len;
    if (r->pad)
      conv_pad_image(s->c, s->h, s->w, s->pad, s->h + 2 * s->pad, s->w + 2 * s->pad, x_img, xp);
    im2col(s, r->pad ? xp : x_img, cols + j * p, (size_t)g * p);
  }
}

void cpu_conv2d_fwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *x,
                    const float *w, const float *bias, float *y) {
  if (winograd_fits(s)) {
    winograd_fwd(ctx, s, x, w, bias, y);
    return;
  }
  int nt = conv_threads(ctx, s), group = conv_group(s);
  int k = s->c * s->kh * s->kw, p = s->oh * s->ow;
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * p;
  struct conv_region r = conv_region(s);
#pragma omp parallel num_threads(nt)
  {
    /* Split by the team actually granted, which may be smaller than asked. */
    int t = omp_get_thread_num(), team = omp_get_num_threads();
    float *cols = ctx->scratch + (size_t)t * r.total, *out = cols + r.cols, *xp = out + r.out;
    int i0, i1;
    conv_thread_images(s->n, group, t, team, &i0, &i1);
    for (int i = i0; i < i1; i += group) {
      int g = conv_imin(group, i1 - i), gp = g * p;
      float *y_img = y + i * out_len; /* (oc, P) */
      const float *src = x + i * in_len;
      if (r.cols) {
        group_cols(s, &r, x, i, g, cols, xp);
        src = cols;
      }
      /* (oc, g*P) = W (oc, K) . cols (K, g*P), straight into y for one image */
      float *dst = g > 1 ? out : y_img;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, gp, k, 1.0f, w, k, src, gp,
                  0.0f, dst, gp);
      if (g == 1 && !bias) continue; /* the GEMM wrote y itself */
      /* each image's (oc, P) block of the group's output, plus the bias */
      for (int j = 0; j < g; j++)
        for (int o = 0; o < s->oc; o++) {
          float *row = y_img + j * out_len + (size_t)o * p;
          const float *from = dst + (size_t)o * gp + (size_t)j * p;
          float b = bias ? bias[o] : 0.0f;
          for (int q = 0; q < p; q++)
            row[q] = from[q] + b;
        }
    }
  }
}

void cpu_conv2d_bwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                    const float *x, const float *w, float *dx, float *dw, float *dbias) {
  if (winograd_fits(s)) {
    winograd_bwd(ctx, s, dy, x, w, dx, dw);
    if (dbias) bias_grad(ctx, s, dy, dbias);
    return;
  }
  int nt = conv_threads(ctx, s), group = conv_group(s);
  int k = s->c * s->kh * s->kw, p = s->oh * s->ow;
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * p;
  struct conv_region r = conv_region(s);
  size_t dw_off = r.cols + r.out + r.pad;
  int team = nt; /* threads granted, which may be fewer than asked */
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
    float *cols = ctx->scratch + (size_t)t * r.total, *out = cols + r.cols, *xp = out + r.out;
    float *pdw = cols + dw_off;           /* (oc, K) */
    float *pdb = pdw + (size_t)s->oc * k; /* (oc) */
    if (dw) memset(pdw, 0, (size_t)s->oc * k * sizeof *pdw);
    if (dbias) memset(pdb, 0, (size_t)s->oc * sizeof *pdb);
    int i0, i1;
    conv_thread_images(s->n, group, t, team, &i0, &i1);
    for (int i = i0; i < i1; i += group) {
      int g = conv_imin(group, i1 - i), gp = g * p;
      const float *dy_grp = dy + i * out_len; /* (oc, g*P) once gathered */
      if (g > 1) {
        for (int j = 0; j < g; j++)
          for (int o = 0; o < s->oc; o++)
            memcpy(out + (size_t)o * gp + (size_t)j * p, dy + (i + j) * out_len + (size_t)o * p,
                   (size_t)p * sizeof *out);
        dy_grp = out;
      }
      if (dw) {
        const float *src = x + i * in_len;
        if (r.cols) {
          group_cols(s, &r, x, i, g, cols, xp);
          src = cols;
        }
        /* pdw (oc, K) += dy (oc, g*P) . cols (K, g*P)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, k, gp, 1.0f, dy_grp, gp, src,
                    gp, 1.0f, pdw, k);
      }
      if (dbias)
        for (int j = 0; j < g; j++)
          for (int o = 0; o < s->oc; o++)
            pdb[o] += (float)row_sum(dy + (i + j) * out_len + (size_t)o * p, p);
      if (dx) {
        float *dx_img = dx + i * in_len; /* (c, h, w) */
        if (!r.cols) {
          /* dx_img (c, P) += W (oc, c)^T . dy_img (oc, P), one image (G = 1) */
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, s->oc, 1.0f, w, k, dy_grp, p,
                      1.0f, dx_img, p);
          continue;
        }
        /* cols (K, g*P) = W (oc, K)^T . dy (oc, g*P), then each image's
         * columns scattered back. cols was consumed by the dw GEMM above. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, gp, s->oc, 1.0f, w, k, dy_grp, gp,
                    0.0f, cols, gp);
        for (int j = 0; j < g; j++) {
          float *dxj = dx_img + j * in_len;
          if (r.pad) {
            memset(xp, 0, r.pad * sizeof *xp);
            col2im_add(s, cols + (size_t)j * p, (size_t)gp, xp);
            conv_unpad_add(s->c, s->h, s->w, s->pad, s->h + 2 * s->pad, s->w + 2 * s->pad, xp, dxj);
          } else {
            col2im_add(s, cols + (size_t)j * p, (size_t)gp, dxj);
          }
        }
      }
    }
  }
  /* Partials added in thread order, each output element on one thread. */
  size_t nw = dw ? (size_t)s->oc * k : 0, nb = dbias ? (size_t)s->oc : 0;
#pragma omp parallel for schedule(static) num_threads(ctx->threads) if (nw > 4096)
  for (size_t j = 0; j < nw + nb; j++) {
    size_t off = dw_off + (j < nw ? j : (size_t)s->oc * k + (j - nw));
    float acc = 0.0f;
    for (int t = 0; t < team; t++)
      acc += ctx->scratch[(size_t)t * r.total + off];
    if (j < nw)
      dw[j] += acc;
    else
      dbias[j - nw] += acc;
  }
}
