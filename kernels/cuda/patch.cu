/* patch.cu — ViT patch extraction and zero padding: pure data movement.
 * Every output element is one thread's gather, forward and backward (the
 * backward gathers from dy for each dx element), so there are no atomics
 * and consecutive threads touch consecutive addresses on at least one side. */
#include "kernels/cuda/common.cuh"

/* y (n, gh*gw, c*p*p) from x (n, c, h, w); gh = h/p, gw = w/p */
__global__ void patch_fwd_kernel(int n, int c, int h, int w, int p, const float *__restrict__ x,
                                 float *__restrict__ y) {
  const int gh = h / p, gw = w / p;
  const size_t tok = (size_t)c * p * p;
  GRID_STRIDE(e, (size_t)n * gh * gw * tok) {
    size_t t = e / tok;
    int r = (int)(e % tok), ch = r / (p * p), row = r / p % p, col = r % p;
    size_t b = t / ((size_t)gh * gw);
    int gy = (int)(t / gw % gh), gx = (int)(t % gw);
    y[e] = x[((b * c + ch) * h + (size_t)gy * p + row) * w + (size_t)gx * p + col];
  }
}

/* dx (n, c, h, w) += dy (n, gh*gw, c*p*p) gathered back */
__global__ void patch_bwd_kernel(int n, int c, int h, int w, int p, const float *__restrict__ dy,
                                 float *__restrict__ dx) {
  const int gh = h / p, gw = w / p;
  GRID_STRIDE(e, (size_t)n * c * h * w) {
    int ix = (int)(e % w), iy = (int)(e / w % h), ch = (int)(e / ((size_t)w * h) % c);
    size_t b = e / ((size_t)c * h * w);
    int gy = iy / p, gx = ix / p;
    if (gy >= gh || gx >= gw) continue; /* outside the patch grid */
    size_t t = (b * gh + gy) * gw + gx;
    dx[e] += dy[t * c * p * p + ((size_t)ch * p + iy % p) * p + ix % p];
  }
}

__global__ void pad2d_fwd_kernel(int n, int c, int h, int w, int pad, const float *__restrict__ x,
                                 float *__restrict__ y) {
  const int ph = h + 2 * pad, pw = w + 2 * pad;
  GRID_STRIDE(e, (size_t)n * c * ph * pw) {
    int j = (int)(e % pw) - pad, i = (int)(e / pw % ph) - pad;
    size_t plane = e / ((size_t)ph * pw);
    y[e] = i >= 0 && i < h && j >= 0 && j < w ? x[(plane * h + i) * w + j] : 0.0f;
  }
}

__global__ void pad2d_bwd_kernel(int n, int c, int h, int w, int pad, const float *__restrict__ dy,
                                 float *__restrict__ dx) {
  const int ph = h + 2 * pad, pw = w + 2 * pad;
  GRID_STRIDE(e, (size_t)n * c * h * w) {
    int j = (int)(e % w), i = (int)(e / w % h);
    size_t plane = e / ((size_t)h * w);
    dx[e] += dy[(plane * ph + i + pad) * pw + j + pad];
  }
}

extern "C" void cuda_patch_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int p,
                               const float *x, float *y) {
  size_t total = (size_t)n * (h / p) * (w / p) * c * p * p;
  if (!total) return;
  LAUNCH(patch_fwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))(n, c, h, w, p, x, y);
  LAUNCH_CHECK("patch_fwd_kernel");
}

extern "C" void cuda_patch_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int p,
                               const float *dy, float *dx) {
  size_t total = (size_t)n * c * h * w;
  if (!total) return;
  LAUNCH(patch_bwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (n, c, h, w, p, dy, dx);
  LAUNCH_CHECK("patch_bwd_kernel");
}

extern "C" void cuda_pad2d_fwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad,
                               const float *x, float *y) {
  size_t total = (size_t)n * c * (h + 2 * pad) * (w + 2 * pad);
  if (!total) return;
  LAUNCH(pad2d_fwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (n, c, h, w, pad, x, y);
  LAUNCH_CHECK("pad2d_fwd_kernel");
}

extern "C" void cuda_pad2d_bwd(const struct ops_ctx *ctx, int n, int c, int h, int w, int pad,
                               const float *dy, float *dx) {
  size_t total = (size_t)n * c * h * w;
  if (!total) return;
  LAUNCH(pad2d_bwd_kernel, ew_blocks(total), EW_THREADS, 0, cuda_stream(ctx))
  (n, c, h, w, pad, dy, dx);
  LAUNCH_CHECK("pad2d_bwd_kernel");
}
