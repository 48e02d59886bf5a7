/* test_grad_patch.c — the two data-movement ops: ViT patch extraction
 * against torch's reshape/permute written out as index arithmetic, and zero
 * padding; forward against float64 references, backward against central
 * differences of L = sum w_i y_i; thread counts 1 and 2. */
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

struct img_case {
  int n, c, h, w, size; /* size: patch side, or padding */
};

/* y (n, gh*gw, c*p*p)[b, gy*gw + gx, (ch*p + r)*p + col] = x[b, ch, gy*p + r, gx*p + col]:
 * x.reshape(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5) in torch. */
static void patch_ref(const double *x, double *y, void *ud) {
  const struct img_case *t = ud;
  const int p = t->size, gh = t->h / p, gw = t->w / p;
  size_t i = 0;
  for (int b = 0; b < t->n; b++)
    for (int gy = 0; gy < gh; gy++)
      for (int gx = 0; gx < gw; gx++)
        for (int ch = 0; ch < t->c; ch++)
          for (int r = 0; r < p; r++)
            for (int col = 0; col < p; col++)
              y[i++] = x[(((size_t)b * t->c + ch) * t->h + gy * p + r) * t->w + gx * p + col];
}

/* y (n, c, h + 2 pad, w + 2 pad), zero outside the copied interior. */
static void pad_ref(const double *x, double *y, void *ud) {
  const struct img_case *t = ud;
  const int pad = t->size, ph = t->h + 2 * pad, pw = t->w + 2 * pad;
  for (long pl = 0; pl < (long)t->n * t->c; pl++)
    for (int i = 0; i < ph; i++)
      for (int j = 0; j < pw; j++) {
        int si = i - pad, sj = j - pad;
        y[((size_t)pl * ph + i) * pw + j] = si >= 0 && si < t->h && sj >= 0 && sj < t->w
                                                ? x[((size_t)pl * t->h + si) * t->w + sj]
                                                : 0.0;
      }
}

static void run(struct img_case t, int patch, int threads, uint64_t seed) {
  const size_t nx = (size_t)t.n * t.c * t.h * t.w;
  const size_t ny = patch ? nx : (size_t)t.n * t.c * (t.h + 2 * t.size) * (t.w + 2 * t.size);
  const char *what = patch ? "patch" : "pad2d";
  gc_ref_fn ref = patch ? patch_ref : pad_ref;
  float *x = malloc(nx * 4), *y = malloc(ny * 4), *dy = malloc(ny * 4), *dx = malloc(nx * 4);
  double *xd = malloc(nx * 8), *yd = malloc(ny * 8), *dyd = malloc(ny * 8), *num = malloc(nx * 8);
  gc_fill(x, nx, seed, 1.0f);
  gc_fill(dy, ny, seed + 1, 1.0f);
  /* Poison the output: forward must write every element, borders included. */
  for (size_t i = 0; i < ny; i++)
    y[i] = 1e30f;
  for (size_t i = 0; i < nx; i++)
    xd[i] = x[i], dx[i] = GRAD_INIT;
  for (size_t i = 0; i < ny; i++)
    dyd[i] = dy[i];

  struct ops_ctx ctx = {.threads = threads};
  const struct ops_backend *ops = ops_cpu();
  if (patch) {
    ops->patch_fwd(&ctx, t.n, t.c, t.h, t.w, t.size, x, y);
    ops->patch_bwd(&ctx, t.n, t.c, t.h, t.w, t.size, dy, dx);
  } else {
    ops->pad2d_fwd(&ctx, t.n, t.c, t.h, t.w, t.size, x, y);
    ops->pad2d_bwd(&ctx, t.n, t.c, t.h, t.w, t.size, dy, dx);
  }
  ref(xd, yd, &t);
  /* Pure copies: exact. */
  TU_CHECK(gc_compare(what, y, yd, ny, 0, 0) == 0);
  /* The ops are linear, so central differences are exact up to rounding of
   * the +-h steps (~1e-11 at h = 1e-5); each dx element is GRAD_INIT plus
   * exactly one dy element in float32 (the map is injective), one rounding:
   * 1e-6 relative covers it. */
  gc_numeric_grad(ref, xd, nx, ny, dyd, &t, 1e-5, num);
  for (size_t i = 0; i < nx; i++)
    num[i] += GRAD_INIT;
  TU_CHECK(gc_compare(patch ? "patch dx" : "pad2d dx", dx, num, nx, 1e-6, 1e-7) == 0);
  free(x), free(y), free(dy), free(dx), free(xd), free(yd), free(dyd), free(num);
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    uint64_t s = 10 * threads;
    run((struct img_case){2, 3, 32, 32, 8}, 1, threads, s + 1); /* the ViT's 4x4 grid of 8x8 */
    run((struct img_case){2, 3, 16, 16, 8}, 1, threads, s + 2); /* the seed's PatchEmbedding test */
    run((struct img_case){1, 2, 12, 8, 4}, 1, threads, s + 3);  /* a 3x2 grid: rows != columns */
    run((struct img_case){3, 2, 6, 6, 1}, 1, threads, s + 4);   /* p = 1: tokens are pixels */
    run((struct img_case){2, 3, 16, 16, 1}, 0, threads, s + 5); /* the ResNet stem's padding */
    run((struct img_case){1, 2, 5, 7, 2}, 0, threads, s + 6);   /* h != w, pad 2 */
    run((struct img_case){2, 1, 3, 4, 0}, 0, threads, s + 7);   /* pad 0 copies */
  }
  TU_DONE();
}
