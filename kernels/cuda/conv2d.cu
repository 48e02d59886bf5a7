/* conv2d.cu — Conv2d (cross-correlation, zero padding, equal stride and
 * padding in both dimensions) as im2col + cuBLAS GEMM, a chunk of images at
 * a time.
 *
 * Scratch holds the column matrices of `chunk` images, cols (chunk, K, P)
 * with K = c*kh*kw and P = oh*ow; a 1x1 kernel at stride 1 without padding
 * reads the image as it lies and needs none. Forward: y_i (oc, P) =
 * W (oc, K) cols_i, one strided-batched GEMM per chunk (W's stride 0).
 * Backward: each image's weight gradient G_i (oc, K) = dy_i cols_i^T as one
 * strided-batched GEMM into scratch, then dw += G_0 + G_1 + ... added in
 * image order by one kernel: a reduction over images in a fixed order, as
 * when each image's GEMM accumulated into dw (one GEMM per image), in two
 * launches instead of one per image; not one GEMM over (images x pixels),
 * which sums in another order and moved training off the CPU's path.
 * cols_i = W^T dy_i as one batched GEMM, then col2im gathers: each thread
 * owns one input pixel and adds the columns that read it, so no atomics.
 * dbias: one block per output channel. */
#include "kernels/cuda/common.cuh"

/* Column matrices of at most this many floats per chunk (64 MiB). */
#define CONV_CHUNK_FLOATS ((size_t)1 << 24)

static int is_pointwise(const struct conv2d_shape *s) {
  return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

static int conv_chunk(const struct conv2d_shape *s) {
  size_t per = (size_t)s->c * s->kh * s->kw * s->oh * s->ow;
  size_t chunk = per ? CONV_CHUNK_FLOATS / per : 1;
  if (chunk < 1) chunk = 1;
  return chunk < (size_t)s->n ? (int)chunk : s->n;
}

/* Images whose weight gradients G_i (oc, K) one batched GEMM writes: at most
 * a chunk, and CONV_CHUNK_FLOATS of them. */
static int dw_chunk(const struct conv2d_shape *s) {
  size_t per = (size_t)s->oc * s->c * s->kh * s->kw;
  size_t m = per ? CONV_CHUNK_FLOATS / per : 1;
  if (m < 1) m = 1;
  int chunk = conv_chunk(s);
  return m < (size_t)chunk ? (int)m : chunk;
}

/* Scratch: the columns of a chunk (none for a pointwise kernel), then the
 * weight gradients of a dw_chunk. */
static size_t cols_len(const struct conv2d_shape *s) {
  if (is_pointwise(s)) return 0;
  return (size_t)conv_chunk(s) * s->c * s->kh * s->kw * s->oh * s->ow;
}

extern "C" size_t cuda_conv2d_scratch(const struct conv2d_shape *s, int threads) {
  (void)threads;
  return cols_len(s) + (size_t)dw_chunk(s) * s->oc * s->c * s->kh * s->kw;
}

struct conv_geom {
  int c, h, w, kh, kw, stride, pad, oh, ow;
};

static struct conv_geom geom(const struct conv2d_shape *s) {
  struct conv_geom g = {s->c, s->h, s->w, s->kh, s->kw, s->stride, s->pad, s->oh, s->ow};
  return g;
}

/* cols (imgs, K, P) from x (imgs, c, h, w), zeros where the window hangs
 * over the border. */
__global__ void im2col_kernel(int imgs, struct conv_geom g, const float *__restrict__ x,
                              float *__restrict__ cols) {
  size_t p_len = (size_t)g.oh * g.ow, k_len = (size_t)g.c * g.kh * g.kw;
  GRID_STRIDE(e, imgs * k_len * p_len) {
    size_t img = e / (k_len * p_len), r = e % (k_len * p_len);
    int kk = (int)(r / p_len), p = (int)(r % p_len);
    int ci = kk / (g.kh * g.kw), ki = kk / g.kw % g.kh, kj = kk % g.kw;
    int iy = p / g.ow * g.stride - g.pad + ki, ix = p % g.ow * g.stride - g.pad + kj;
    float v = 0.0f;
    if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = x[((img * g.c + ci) * g.h + iy) * g.w + ix];
    cols[e] = v;
  }
}

/* dx (imgs, c, h, w) += the columns cols (imgs, K, P) gathered back to the
 * pixels they were read from. */
__global__ void col2im_kernel(int imgs, struct conv_geom g, const float *__restrict__ cols,
                              float *__restrict__ dx) {
  size_t p_len = (size_t)g.oh * g.ow, k_len = (size_t)g.c * g.kh * g.kw;
  GRID_STRIDE(e, (size_t)imgs * g.c * g.h * g.w) {
    int ix = (int)(e % g.w), iy = (int)(e / g.w % g.h), ci = (int)(e / ((size_t)g.w * g.h) % g.c);
    size_t img = e / ((size_t)g.c * g.h * g.w);
    const float *ci_cols = cols + img * k_len * p_len + (size_t)ci * g.kh * g.kw * p_len;
    float acc = 0.0f;
    for (int ki = 0; ki < g.kh; ki++) {
      int ty = iy + g.pad - ki; /* = oy * stride */
      if (ty < 0 || ty % g.stride) continue;
      int oy = ty / g.stride;
      if (oy >= g.oh) continue;
      for (int kj = 0; kj < g.kw; kj++) {
        int tx = ix + g.pad - kj;
        if (tx < 0 || tx % g.stride) continue;
        int ox = tx / g.stride;
        if (ox >= g.ow) continue;
        acc += ci_cols[(size_t)(ki * g.kw + kj) * p_len + oy * g.ow + ox];
      }
    }
    dx[e] += acc;
  }
}

/* dw (len) += g_0 + g_1 + ... + g_{imgs-1}, each g_i (len), in that order */
__global__ void conv_dw_sum_kernel(int imgs, size_t len, const float *__restrict__ g,
                                   float *__restrict__ dw) {
  GRID_STRIDE(e, len) {
    float acc = dw[e];
    for (int i = 0; i < imgs; i++)
      acc += g[(size_t)i * len + e];
    dw[e] = acc;
  }
}

/* y (n, oc, P) += bias per channel */
__global__ void conv_bias_kernel(size_t total, int oc, int p, const float *__restrict__ bias,
                                 float *__restrict__ y) {
  GRID_STRIDE(e, total) { y[e] += bias[e / p % oc]; }
}

/* dbias[o] += sum over images and positions of dy (n, oc, P) */
#define DB_THREADS 256
__global__ void conv_dbias_kernel(int n, int oc, int p, const float *__restrict__ dy,
                                  float *__restrict__ dbias) {
  __shared__ float sh[33];
  int o = blockIdx.x;
  float acc = 0.0f;
  for (size_t e = threadIdx.x; e < (size_t)n * p; e += blockDim.x)
    acc += dy[(e / p * oc + o) * (size_t)p + e % p];
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) dbias[o] += acc;
}

static void im2col(const struct ops_ctx *ctx, const struct conv2d_shape *s, int imgs,
                   const float *x, float *cols) {
  size_t total = (size_t)imgs * s->c * s->kh * s->kw * s->oh * s->ow;
  LAUNCH(im2col_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))(imgs, geom(s), x, cols);
  LAUNCH_CHECK("im2col_kernel");
}

extern "C" void cuda_conv2d_fwd(const struct ops_ctx *ctx, const struct conv2d_shape *s,
                                const float *x, const float *w, const float *bias, float *y) {
  int k = s->c * s->kh * s->kw, p = s->oh * s->ow, chunk = conv_chunk(s);
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * p;
  int pw = is_pointwise(s);
  for (int i0 = 0; i0 < s->n; i0 += chunk) {
    int imgs = s->n - i0 < chunk ? s->n - i0 : chunk;
    const float *src = x + i0 * in_len;
    if (!pw) {
      im2col(ctx, s, imgs, src, ctx->scratch);
      src = ctx->scratch;
    }
    /* y_i (oc, P) = W (oc, K) . cols_i (K, P) */
    cuda_matmul_batched(ctx, 0, 0, s->oc, p, k, 1.0f, w, k, 0, src, p, (long)k * p, 0.0f,
                        y + i0 * out_len, p, (long)out_len, imgs);
  }
  if (bias) {
    size_t total = (size_t)s->n * out_len;
    LAUNCH(conv_bias_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
    (total, s->oc, p, bias, y);
    LAUNCH_CHECK("conv_bias_kernel");
  }
}

extern "C" void cuda_conv2d_bwd(const struct ops_ctx *ctx, const struct conv2d_shape *s,
                                const float *dy, const float *x, const float *w, float *dx,
                                float *dw, float *dbias) {
  int k = s->c * s->kh * s->kw, p = s->oh * s->ow, chunk = conv_chunk(s);
  size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * p;
  int pw = is_pointwise(s);
  if (dbias) {
    LAUNCH(conv_dbias_kernel, s->oc, DB_THREADS, 0, cuda_stream(ctx))(s->n, s->oc, p, dy, dbias);
    LAUNCH_CHECK("conv_dbias_kernel");
  }
  for (int i0 = 0; i0 < s->n; i0 += chunk) {
    int imgs = s->n - i0 < chunk ? s->n - i0 : chunk;
    const float *dyc = dy + i0 * out_len;
    if (dw) {
      const float *src = x + i0 * in_len;
      if (!pw) {
        im2col(ctx, s, imgs, src, ctx->scratch);
        src = ctx->scratch;
      }
      /* G_i (oc, K) = dy_i (oc, P) . cols_i (K, P)^T; dw += G_i in image order */
      float *g = ctx->scratch + cols_len(s);
      size_t len = (size_t)s->oc * k;
      for (int j0 = 0, m = dw_chunk(s); j0 < imgs; j0 += m) {
        int js = imgs - j0 < m ? imgs - j0 : m;
        cuda_matmul_batched(ctx, 0, 1, s->oc, k, p, 1.0f, dyc + j0 * out_len, p, (long)out_len,
                            src + (size_t)j0 * k * p, p, (long)k * p, 0.0f, g, k, (long)len, js);
        LAUNCH(conv_dw_sum_kernel, ew_blocks(len), EW_THREADS, 0, cuda_stream(ctx))
        (js, len, g, dw);
        LAUNCH_CHECK("conv_dw_sum_kernel");
      }
    }
    if (!dx) continue;
    if (pw) {
      /* dx_i (c, P) += W (oc, c)^T . dy_i (oc, P) */
      cuda_matmul_batched(ctx, 1, 0, k, p, s->oc, 1.0f, w, k, 0, dyc, p, (long)out_len, 1.0f,
                          dx + i0 * in_len, p, (long)in_len, imgs);
      continue;
    }
    /* cols_i (K, P) = W (oc, K)^T . dy_i (oc, P), then gathered into dx */
    cuda_matmul_batched(ctx, 1, 0, k, p, s->oc, 1.0f, w, k, 0, dyc, p, (long)out_len, 0.0f,
                        ctx->scratch, p, (long)k * p, imgs);
    size_t total = (size_t)imgs * in_len;
    LAUNCH(col2im_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
    (imgs, geom(s), ctx->scratch, dx + i0 * in_len);
    LAUNCH_CHECK("col2im_kernel");
  }
}
