/* winograd.h — 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3), the CPU
 * conv2d's fast path (kernels/cpu/conv2d.c chooses it; same semantics). */
#ifndef CTRAIN_CPU_WINOGRAD_H
#define CTRAIN_CPU_WINOGRAD_H

#include "kernels/ops.h"

/* Whether s takes the Winograd path: 3x3, stride 1, and channels enough on
 * both sides for its 16 GEMMs of K = c (or oc) to be worth their transforms. */
int winograd_fits(const struct conv2d_shape *s);
size_t winograd_scratch(const struct conv2d_shape *s, int threads);
/* y = conv(x, w): y written; bias added when not NULL. */
void winograd_fwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *x,
                  const float *w, const float *bias, float *y);
/* dx += dL/dx and dw += dL/dw, each skipped when NULL (the bias gradient is
 * conv2d.c's). */
void winograd_bwd(const struct ops_ctx *ctx, const struct conv2d_shape *s, const float *dy,
                  const float *x, const float *w, float *dx, float *dw);

#endif
