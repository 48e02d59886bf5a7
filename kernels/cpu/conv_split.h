/* conv_split.h — what the CPU conv2d's two paths (im2col in conv2d.c,
 * Winograd in winograd.c) share: the split of images over threads and the
 * zero-padded copy of an image. */
#ifndef CTRAIN_CPU_CONV_SPLIT_H
#define CTRAIN_CPU_CONV_SPLIT_H

#include <stddef.h>
#include <string.h>

static inline int conv_imin(int a, int b) { return a < b ? a : b; }
static inline int conv_imax(int a, int b) { return a > b ? a : b; }

/* Thread t's images [i0, i1): whole groups of `group` images counted from
 * image 0, so each image lands in the same group, and its output in the
 * same bits, whatever the thread count. */
static inline void conv_thread_images(int n, int group, int t, int team, int *i0, int *i1) {
  long groups = (n + group - 1) / group;
  *i0 = conv_imin(n, (int)(groups * t / team) * group);
  *i1 = conv_imin(n, (int)(groups * (t + 1) / team) * group);
}

/* xp (c, hp, wp) = the image x (c, h, w) at row and column `pad`, zero
 * elsewhere (hp >= h + 2 pad, wp >= w + 2 pad), so whole rows are copied
 * without bounds tests. */
static inline void conv_pad_image(int c, int h, int w, int pad, int hp, int wp, const float *x,
                                  float *xp) {
  memset(xp, 0, (size_t)c * hp * wp * sizeof *xp);
  for (int ci = 0; ci < c; ci++)
    for (int iy = 0; iy < h; iy++)
      memcpy(xp + ((size_t)ci * hp + iy + pad) * wp + pad, x + ((size_t)ci * h + iy) * w,
             (size_t)w * sizeof *xp);
}

/* dx (c, h, w) += the image's place in dxp (c, hp, wp), as conv_pad_image
 * put it there. */
static inline void conv_unpad_add(int c, int h, int w, int pad, int hp, int wp, const float *dxp,
                                  float *dx) {
  for (int ci = 0; ci < c; ci++)
    for (int iy = 0; iy < h; iy++) {
      const float *src = dxp + ((size_t)ci * hp + iy + pad) * wp + pad;
      float *dst = dx + ((size_t)ci * h + iy) * w;
      for (int ix = 0; ix < w; ix++)
        dst[ix] += src[ix];
    }
}

#endif
