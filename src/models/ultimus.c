/* ultimus.c — seed 001 (MODELS.md §2): three bias-free 3x3 convs without
 * activations, global average pool to X (B,48), four Ultimus attention
 * blocks each fed X plus the previous block's output, bias-free linear head.
 * Init: torch's defaults (Kaiming-uniform, bound 1/sqrt(fan_in)), as the seed. */
#include <math.h>
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init torch_default = {INIT_KAIMING_UNIFORM, 0, 1};

/* x (B,48) -> (B,48). With q, k, v (B,1,8): AM = softmax over dim 1 (the q
 * index i) of the outer product q^T k / sqrt(8), and Z_j = sum_i v_i AM[i,j]
 * = sum_i softmax_i(k_j q_i / sqrt(8)) v_i. That is attention whose 8 queries
 * are the k_j, whose 8 keys are the q_i and values the v_i, all of width 1. */
static int ultimus(struct graph *g, const char *name, int x, int b) {
  char nk[32], nq[32], nv[32], no[32];
  snprintf(nk, sizeof nk, "%s.K", name);
  snprintf(nq, sizeof nq, "%s.Q", name);
  snprintf(nv, sizeof nv, "%s.V", name);
  snprintf(no, sizeof no, "%s.out", name);
  const int shape[3] = {b, 8, 1};
  int k = nn_view(g, nn_linear(g, nk, x, 8, 0, torch_default), 3, shape); /* (B,8,1) */
  int q = nn_view(g, nn_linear(g, nq, x, 8, 0, torch_default), 3, shape);
  int v = nn_view(g, nn_linear(g, nv, x, 8, 0, torch_default), 3, shape);
  int z = nn_sdpa(g, k, q, v, 1, MASK_NONE, -1, 1.0f / sqrtf(8.0f), 0.0f); /* (B,8,1) */
  return nn_linear(g, no, nn_view(g, z, 2, (int[]){b, 8}), 48, 0, torch_default);
}

int model_ultimus(struct graph *g, const struct model_spec *spec, struct model_io *io,
                  struct ct_err *e) {
  const int b = spec->batch;
  if (model_image_input(g, spec, io, "ultimus", e)) return e->code;
  int x = nn_conv2d(g, "conv1", io->input, 16, 3, 1, 0, 0, torch_default); /* (B,16,30,30) */
  x = nn_conv2d(g, "conv2", x, 32, 3, 1, 0, 0, torch_default);             /* (B,32,28,28) */
  x = nn_conv2d(g, "conv3", x, 48, 3, 1, 0, 0, torch_default);             /* (B,48,26,26) */
  x = nn_global_avgpool(g, x);                                             /* X (B,48) */

  /* Every block sees X plus the previous block's output, not a running sum. */
  int o = ultimus(g, "u1", x, b);
  o = ultimus(g, "u2", nn_add(g, x, o), b);
  o = ultimus(g, "u3", nn_add(g, x, o), b);
  o = ultimus(g, "u4", nn_add(g, x, o), b);

  io->logits = nn_linear(g, "fc", o, spec->num_classes, 0, torch_default); /* (B,K) */
  io->loss = nn_cross_entropy(g, io->logits, io->labels, -1, spec->label_smoothing, 0.0f);
  return CT_OK;
}
