/* attn_cnn.c — the seed-000 CNN-stem attention classifier (MODELS.md §1):
 * CNN stem to 64 tokens of width 64, two causal single-head attention blocks
 * x = SiLU(LayerNorm(x + attn(x))), mean over tokens, linear head. */
#include <math.h>
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init conv_init = {INIT_KAIMING_NORMAL, 0, 0};
static const struct nn_init linear_init = {INIT_XAVIER_NORMAL, 0, 0};

/* x (B,T,D) -> (B,T,D): single-head causal attention, W_{q,k,v} without bias. */
static int attention(struct graph *g, const char *name, int x, int d) {
  char wq[64], wk[64], wv[64];
  snprintf(wq, sizeof wq, "%s.W_q", name);
  snprintf(wk, sizeof wk, "%s.W_k", name);
  snprintf(wv, sizeof wv, "%s.W_v", name);
  int q = nn_linear(g, wq, x, d, 0, linear_init);
  int k = nn_linear(g, wk, x, d, 0, linear_init);
  int v = nn_linear(g, wv, x, d, 0, linear_init);
  return nn_sdpa(g, q, k, v, 1, MASK_CAUSAL, -1, 1.0f / sqrtf((float)d), 0.0f);
}

int model_attn_cnn(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e) {
  const int b = spec->batch, d = 64;
  if (model_image_input(g, spec, io, "attn_cnn", e)) return e->code;

  int x = nn_conv2d(g, "cnn.0", io->input, 3, 5, 1, 2, 1, conv_init); /* (B,3,32,32) */
  x = nn_batchnorm2d(g, "cnn.1", x);
  x = nn_conv2d(g, "cnn.2", x, 32, 3, 1, 1, 1, conv_init); /* (B,32,32,32) */
  x = nn_act(g, x, ACT_RELU);
  x = nn_maxpool2d(g, x, 2, 2);                           /* (B,32,16,16) */
  x = nn_conv2d(g, "cnn.5", x, d, 3, 1, 1, 1, conv_init); /* (B,64,16,16) */
  x = nn_batchnorm2d(g, "cnn.6", x);
  x = nn_act(g, x, ACT_RELU);
  x = nn_maxpool2d(g, x, 2, 2); /* (B,64,8,8) */

  x = nn_view(g, x, 3, (int[]){b, d, 64}); /* (B,64 channels,64 positions) */
  x = nn_transpose(g, x);                  /* (B,64 tokens,64 dims) */
  x = nn_act(g, nn_layernorm(g, "norm1", nn_add(g, x, attention(g, "attn1", x, d))), ACT_SILU);
  x = nn_act(g, nn_layernorm(g, "norm2", nn_add(g, x, attention(g, "attn2", x, d))), ACT_SILU);

  x = nn_mean_tokens(g, x);                                                      /* (B,64) */
  io->logits = nn_linear(g, "classifier", x, spec->num_classes, 1, linear_init); /* (B,K) */
  io->loss = nn_cross_entropy(g, io->logits, io->labels, -1, spec->label_smoothing, 0.0f);
  return CT_OK;
}
