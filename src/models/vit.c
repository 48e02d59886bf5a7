/* vit.c — seed 004's Vision Transformer (MODELS.md §4): P x P patches,
 * `patch_embed.proj`, sinusoidal positional encoding and dropout, `depth`
 * post-norm encoder layers (multi-head self-attention with dropout on the
 * weights, GELU feed-forward), mean over tokens, `head`. Init: N(0, 0.02) for
 * every Linear weight, biases 0, LayerNorm 1/0. */
#include <math.h>
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init normal_002 = {INIT_NORMAL, 0.02f, 0};

static int linear(struct graph *g, const char *prefix, const char *what, int x, int out) {
  char name[64];
  snprintf(name, sizeof name, "%s.%s", prefix, what);
  return nn_linear(g, name, x, out, 1, normal_002);
}

/* x (B,T,D) -> (B,T,D): heads split D contiguously, scores / sqrt(D/H). */
static int self_attention(struct graph *g, const char *name, int x, const struct model_spec *s) {
  const int d = s->dim;
  int q = linear(g, name, "query", x, d);
  int k = linear(g, name, "key", x, d);
  int v = linear(g, name, "value", x, d);
  int y =
      nn_sdpa(g, q, k, v, s->heads, MASK_NONE, -1, 1.0f / sqrtf((float)(d / s->heads)), s->dropout);
  return linear(g, name, "proj", y, d);
}

/* x (B,T,D) -> (B,T,D): fc2(dropout(GELU(fc1(x)))) */
static int feed_forward(struct graph *g, const char *name, int x, const struct model_spec *s) {
  int h = nn_act(g, linear(g, name, "fc1", x, s->ffn_dim), ACT_GELU); /* (B,T,F) */
  return linear(g, name, "fc2", nn_dropout(g, h, s->dropout), s->dim);
}

/* Post-norm: x = norm(x + dropout(sublayer(x))), for attention then FFN. */
static int encoder_layer(struct graph *g, const char *name, int x, const struct model_spec *s) {
  char sub[48], norm[48];
  snprintf(sub, sizeof sub, "%s.self_attn", name);
  snprintf(norm, sizeof norm, "%s.norm_self", name);
  int a = nn_dropout(g, self_attention(g, sub, x, s), s->dropout);
  x = nn_layernorm(g, norm, nn_add(g, x, a));
  snprintf(sub, sizeof sub, "%s.ffn", name);
  snprintf(norm, sizeof norm, "%s.norm_ffn", name);
  int f = nn_dropout(g, feed_forward(g, sub, x, s), s->dropout);
  return nn_layernorm(g, norm, nn_add(g, x, f));
}

int model_vit(struct graph *g, const struct model_spec *spec, struct model_io *io,
              struct ct_err *e) {
  if (model_image_input(g, spec, io, "vit", e)) return e->code;
  int x = nn_patches(g, io->input, spec->patch);                     /* (B,T,3*P*P) */
  x = nn_linear(g, "patch_embed.proj", x, spec->dim, 1, normal_002); /* (B,T,D) */
  x = nn_dropout(g, nn_posenc(g, x), spec->dropout);
  for (int i = 0; i < spec->depth; i++) {
    char name[32];
    snprintf(name, sizeof name, "transformer.layers.%d", i);
    x = encoder_layer(g, name, x, spec);
  }
  x = nn_mean_tokens(g, x);                                               /* (B,D) */
  io->logits = nn_linear(g, "head", x, spec->num_classes, 1, normal_002); /* (B,K) */
  io->loss = nn_cross_entropy(g, io->logits, io->labels, -1, spec->label_smoothing, 0.0f);
  return CT_OK;
}
