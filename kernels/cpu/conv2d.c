/* conv2d.c — Conv2d (PyTorch semantics: cross-correlation, zero padding,
 * equal stride and padding in both dimensions) as im2col + one sgemm per
 * image.
 *
 * Images are split into contiguous static blocks, one per OpenMP thread; each
 * thread owns a region of ctx->scratch:
 *   cols (K, P)        K = c*kh*kw, P = oh*ow; absent for 1x1/stride 1/pad 0,
 *                      where the input image already is the column matrix
 *   dw partial (oc, K) and dbias partial (oc), used by backward only
 * The weight gradient is a reduction over images, so each thread sums its
 * images into its own partial and the partials are added to dw in thread
 * order: results are deterministic for a given thread count. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

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

/* A 1x1 kernel at stride 1 without padding reads the image as it lies:
 * x_img (c, h*w) is exactly the column matrix. */
static int is_pointwise(const struct conv2d_shape *s) {
  return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

/* One thread's scratch, in floats. */
struct conv_region {
  size_t cols; /* im2col matrix (K, P) */
  size_t pad;  /* padded image (c, h + 2 pad, w + 2 pad) */
  size_t dw;   /* dw partial (oc, K) followed by the dbias partial (oc) */
  size_t total;
};

static struct conv_region conv_region(const struct conv2d_shape *s) {
  struct conv_region r = {0};
  size_t k = (size_t)s->c * s->kh * s->kw;
  if (!is_pointwise(s)) r.cols = k * s->oh * s->ow;
  if (s->pad > 0) r.pad = (size_t)s->c * (s->h + 2 * s->pad) * (s->w + 2 * s->pad);
  r.dw = (size_t)s->oc * k + (size_t)s->oc;
  r.total = r.cols + r.pad + r.dw;
  return r;
}

/* Threads actually used: no more than there are images. */
static int conv_threads(const struct ops_ctx *ctx, const struct conv2d_shape *s) {
  return imax(1, imin(ctx->threads, s->n));
}

size_t cpu_conv2d_scratch(const struct conv2d_shape *s, int threads) {
  return (size_t)imax(1, imin(threads, s->n)) * conv_region(s).total;
}

/* The image with its zero border materialised, xp (c, h + 2 pad, w + 2 pad),
 * so im2col and col2im copy whole rows without bounds tests. */
static void pad_image(const struct conv2d_shape *s, const float *x_img, float *xp) {
  int h = s->h, w = s->w, pad = s->pad, wp = w + 2 * pad, hp = h + 2 * pad;
  memset(xp, 0, (size_t)s->c * hp * wp * sizeof *xp);
  for (int ci = 0; ci < s->c; ci++)
    for (int iy = 0; iy < h; iy++)
      memcpy(xp + ((size_t)ci * hp + iy + pad) * wp + pad, x_img + ((size_t)ci * h + iy) * w,
             (size_t)w * sizeof *xp);
}

/* cols (c*kh*kw, oh*ow) from one padded image xp (c, hp, wp). The row copies
 * are short (ow floats): plain loops, which the compiler vectorises inline,
 * beat a memcpy call per row. */
static void im2col(const struct conv2d_shape *s, const float *xp, float *cols) {
  int wp = s->w + 2 * s->pad, hp = s->h + 2 * s->pad, oh = s->oh, ow = s->ow, st = s->stride;
  float *dst = cols;
  for (int ci = 0; ci < s->c; ci++)
    for (int ki = 0; ki < s->kh; ki++)
      for (int kj = 0; kj < s->kw; kj++)
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

/* dxp (c, hp, wp) += the columns cols (c*kh*kw, oh*ow) scattered back to the
 * padded pixels they were read from. */
static void col2im_add(const struct conv2d_shape *s, const float *cols, float *dxp) {
  int wp = s->w + 2 * s->pad, hp = s->h + 2 * s->pad, oh = s->oh, ow = s->ow, st = s->stride;
  const float *src = cols;
  for (int ci = 0; ci < s->c; ci++)
    for (int ki = 0; ki < s->kh; ki++)
      for (int kj = 0; kj < s->kw; kj++)
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

/* dx_img (c, h, w) += the interior of dxp (c, hp, wp). */
static void unpad_add(const struct conv2d_shape *s, const float *dxp, float *dx_img) {
  int h = s->h, w = s->w, pad = s->pad, wp = w + 2 * pad, hp = h + 2 * pad;
  for (int ci = 0; ci < s->c; ci++)
    for (int iy = 0; iy < h; iy++) {
      const float *src = dxp + ((size_t)ci * hp + iy + pad) * wp + pad;
      float *dst = dx_img + ((size_t)ci * h + iy) * w;
      for (int ix = 0; ix < w; ix++)
        dst[ix] += src[ix];
    }
}

void cpu_conv2d_fwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *x,
                    const float *w, const float *bias, float *y) {
  int nt = conv_threads(ctx, s);
  int k = s->c * s->kh * s->kw, p = s->oh * s->ow;
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * p;
  struct conv_region r = conv_region(s);
#pragma omp parallel num_threads(nt)
  {
    /* Split by the team actually granted, which may be smaller than asked. */
    int t = omp_get_thread_num(), team = omp_get_num_threads();
    float *cols = ctx->scratch + (size_t)t * r.total, *xp = cols + r.cols;
    int i0 = (int)((long)s->n * t / team), i1 = (int)((long)s->n * (t + 1) / team);
    for (int i = i0; i < i1; i++) {
      const float *x_img = x + i * in_len;
      float *y_img = y + i * out_len; /* (oc, P) */
      const float *src = x_img;
      if (r.cols) {
        if (r.pad) pad_image(s, x_img, xp);
        im2col(s, r.pad ? xp : x_img, cols);
        src = cols;
      }
      /* y_img (oc, P) = W (oc, K) . cols (K, P) */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, p, k, 1.0f, w, k, src, p, 0.0f,
                  y_img, p);
      if (bias)
        for (int o = 0; o < s->oc; o++) {
          float *row = y_img + (size_t)o * p;
          for (int j = 0; j < p; j++)
            row[j] += bias[o];
        }
    }
  }
}

void cpu_conv2d_bwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                    const float *x, const float *w, float *dx, float *dw, float *dbias) {
  int nt = conv_threads(ctx, s);
  int k = s->c * s->kh * s->kw, p = s->oh * s->ow;
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * p;
  struct conv_region r = conv_region(s);
  size_t dw_off = r.cols + r.pad;
  int team = nt; /* threads granted, which may be fewer than asked */
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
    float *cols = ctx->scratch + (size_t)t * r.total, *xp = cols + r.cols;
    float *pdw = cols + dw_off;           /* (oc, K) */
    float *pdb = pdw + (size_t)s->oc * k; /* (oc) */
    if (dw) memset(pdw, 0, (size_t)s->oc * k * sizeof *pdw);
    if (dbias) memset(pdb, 0, (size_t)s->oc * sizeof *pdb);
    int i0 = (int)((long)s->n * t / team), i1 = (int)((long)s->n * (t + 1) / team);
    for (int i = i0; i < i1; i++) {
      const float *x_img = x + i * in_len;
      const float *dy_img = dy + i * out_len; /* (oc, P) */
      if (dw) {
        const float *src = x_img;
        if (r.cols) {
          if (r.pad) pad_image(s, x_img, xp);
          im2col(s, r.pad ? xp : x_img, cols);
          src = cols;
        }
        /* pdw (oc, K) += dy_img (oc, P) . cols (K, P)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, k, p, 1.0f, dy_img, p, src, p,
                    1.0f, pdw, k);
      }
      if (dbias)
        for (int o = 0; o < s->oc; o++)
          pdb[o] += (float)row_sum(dy_img + (size_t)o * p, p);
      if (dx) {
        float *dx_img = dx + i * in_len; /* (c, h, w) */
        if (!r.cols) {
          /* dx_img (c, P) += W (oc, c)^T . dy_img (oc, P) */
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, s->oc, 1.0f, w, k, dy_img, p,
                      1.0f, dx_img, p);
          continue;
        }
        /* cols (K, P) = W (oc, K)^T . dy_img (oc, P), then scattered back.
         * cols was consumed by the dw GEMM above, so it is free again. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, s->oc, 1.0f, w, k, dy_img, p,
                    0.0f, cols, p);
        if (r.pad) {
          memset(xp, 0, r.pad * sizeof *xp);
          col2im_add(s, cols, xp);
          unpad_add(s, xp, dx_img);
        } else {
          col2im_add(s, cols, dx_img);
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
