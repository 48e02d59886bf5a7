/* blocks.c — pieces more than one model file uses. */
#include <math.h>
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

int model_image_input(struct graph *g, const struct model_spec *spec, struct model_io *io,
                      const char *model, struct ct_err *e) {
  if (spec->image_c != 3 || spec->image_h != 32 || spec->image_w != 32)
    return err_set(e, CT_ERR_USAGE, "%s needs 3x32x32 images, the data has %dx%dx%d", model,
                   spec->image_c, spec->image_h, spec->image_w);
  io->input = graph_tensor(g, NULL, DT_F32, TK_INPUT, 4, (int[]){spec->batch, 3, 32, 32});
  io->labels = graph_tensor(g, NULL, DT_I32, TK_INPUT, 1, (int[]){spec->batch});
  return CT_OK;
}

/* The seed's Attention module: q, k, v are (N, C, HW), so the C channels are
 * the tokens and each token is a whole HW plane; A = softmax(q k^T / sqrt(C))
 * is (N, C, C). That is single-head attention with tokens = C and head width
 * HW, scaled by 1/sqrt(C) (not the usual 1/sqrt(width)). */
int model_channel_attention(struct graph *g, const char *name, int x) {
  static const struct nn_init torch_default = {INIT_KAIMING_UNIFORM, 0, 1};
  const struct tensor *t = &g->tensors[x];
  const int n = t->shape[0], c = t->shape[1], h = t->shape[2], w = t->shape[3];
  char nq[64], nk[64], nv[64];
  snprintf(nq, sizeof nq, "%s.conv_query", name);
  snprintf(nk, sizeof nk, "%s.conv_key", name);
  snprintf(nv, sizeof nv, "%s.conv_value", name);
  int q = nn_view(g, nn_conv2d(g, nq, x, c, 1, 1, 0, 1, torch_default), 3, (int[]){n, c, h * w});
  int k = nn_view(g, nn_conv2d(g, nk, x, c, 1, 1, 0, 1, torch_default), 3, (int[]){n, c, h * w});
  int v = nn_view(g, nn_conv2d(g, nv, x, c, 1, 1, 0, 1, torch_default), 3, (int[]){n, c, h * w});
  int a = nn_sdpa(g, q, k, v, 1, MASK_NONE, -1, 1.0f / sqrtf((float)c), 0.0f); /* (N,C,HW) */
  return nn_add(g, x, nn_view(g, a, 4, (int[]){n, c, h, w}));                  /* (N,C,H,W) */
}

static const struct nn_init normal_002 = {INIT_NORMAL, 0.02f, 0};

static int linear(struct graph *g, const char *prefix, const char *what, int x, int out) {
  char name[GRAPH_NAME_LEN];
  snprintf(name, sizeof name, "%s.%s", prefix, what);
  return nn_linear(g, name, x, out, 1, normal_002);
}

int model_attention(struct graph *g, const char *name, int x, int mem, enum mask_kind mask,
                    const struct model_spec *s) {
  const int d = s->dim;
  int q = linear(g, name, "query", x, d);
  int k = linear(g, name, "key", mem, d);
  int v = linear(g, name, "value", mem, d);
  int y = nn_sdpa(g, q, k, v, s->heads, mask, -1, 1.0f / sqrtf((float)(d / s->heads)), s->dropout);
  return linear(g, name, "proj", y, d);
}

int model_feed_forward(struct graph *g, const char *name, int x, const struct model_spec *s) {
  char fc1[GRAPH_NAME_LEN];
  snprintf(fc1, sizeof fc1, "%s.fc1", name);
  int h = nn_linear_act(g, fc1, x, s->ffn_dim, ACT_GELU, normal_002); /* (B,T,F) */
  return linear(g, name, "fc2", nn_dropout(g, h, s->dropout), s->dim);
}

int model_encoder_layer(struct graph *g, const char *name, int x, const struct model_spec *s) {
  char sub[48], norm[48];
  snprintf(sub, sizeof sub, "%s.self_attn", name);
  snprintf(norm, sizeof norm, "%s.norm_self", name);
  int a = nn_dropout(g, model_attention(g, sub, x, x, MASK_NONE, s), s->dropout);
  x = nn_layernorm(g, norm, nn_add(g, x, a));
  snprintf(sub, sizeof sub, "%s.ffn", name);
  snprintf(norm, sizeof norm, "%s.norm_ffn", name);
  int f = nn_dropout(g, model_feed_forward(g, sub, x, s), s->dropout);
  return nn_layernorm(g, norm, nn_add(g, x, f));
}

int model_encoder_head(struct graph *g, const struct model_spec *spec, struct model_io *io, int x) {
  for (int i = 0; i < spec->depth; i++) {
    char name[32];
    snprintf(name, sizeof name, "transformer.layers.%d", i);
    x = model_encoder_layer(g, name, x, spec);
  }
  x = nn_mean_tokens(g, x);                                               /* (B,D) */
  io->logits = nn_linear(g, "head", x, spec->num_classes, 1, normal_002); /* (B,K) */
  io->loss = nn_cross_entropy(g, io->logits, io->labels, -1, spec->label_smoothing, 0.0f);
  return CT_OK;
}
