/* caption.c — seed 004's captioning Transformer (MODELS.md §5): the image's
 * features become ONE memory token (`visual_projection`), the caption tokens
 * are embedded (`embedding`) with the sinusoidal encoding and dropout, then
 * `depth` post-norm decoder layers (causal self-attention, cross-attention
 * to the memory token, GELU feed-forward) and `output` give scores over the
 * vocabulary at every position. Loss as the seed's solver: token
 * cross-entropy, targets <NULL> not counted, divided by B*T (all positions).
 * Init: N(0, 0.02) for Linear and Embedding weights, biases 0, LayerNorm 1/0. */
#include <stdio.h>

#include "models/models.h"
#include "models/tokens.h"
#include "nn/nn.h"

static const struct nn_init normal_002 = {INIT_NORMAL, 0.02f, 0};

/* x = norm_<what>(x + dropout(sub)), the post-norm residual step. */
static int residual(struct graph *g, const char *layer, const char *what, int x, int sub,
                    const struct model_spec *s) {
  char norm[64];
  snprintf(norm, sizeof norm, "%s.norm_%s", layer, what);
  return nn_layernorm(g, norm, nn_add(g, x, nn_dropout(g, sub, s->dropout)));
}

/* x (B,T,W), mem (B,1,W) -> (B,T,W) */
static int decoder_layer(struct graph *g, const char *name, int x, int mem,
                         const struct model_spec *s) {
  char sub[64];
  snprintf(sub, sizeof sub, "%s.self_attn", name);
  x = residual(g, name, "self", x, model_attention(g, sub, x, x, MASK_CAUSAL, s), s);
  /* One memory token: every query's attention weight on it is 1, so the
   * cross-attention's query and key receive no gradient; they are kept
   * because the seed's module (and its state_dict) has them. */
  snprintf(sub, sizeof sub, "%s.cross_attn", name);
  x = residual(g, name, "cross", x, model_attention(g, sub, x, mem, MASK_NONE, s), s);
  snprintf(sub, sizeof sub, "%s.ffn", name);
  return residual(g, name, "ffn", x, model_feed_forward(g, sub, x, s), s);
}

static int check_spec(const struct model_spec *s, struct ct_err *e) {
  if (s->vocab_size < COCO_SPECIALS || s->feature_dim < 1 || s->max_length < 2)
    return err_set(e, CT_ERR_USAGE,
                   "caption_transformer needs vocab_size >= %d, feature_dim >= 1 and "
                   "max_length >= 2 (got %d, %d, %d)",
                   COCO_SPECIALS, s->vocab_size, s->feature_dim, s->max_length);
  if (s->batch < 1 || s->dim < 1 || s->depth < 1 || s->heads < 1 || s->dim % s->heads != 0 ||
      s->ffn_dim < 1)
    return err_set(e, CT_ERR_USAGE,
                   "caption_transformer: batch %d, dim %d, depth %d, heads %d, ffn_dim %d: all "
                   "must be >= 1 and heads must divide dim",
                   s->batch, s->dim, s->depth, s->heads, s->ffn_dim);
  return CT_OK;
}

int model_caption_transformer(struct graph *g, const struct model_spec *spec, struct model_io *io,
                              struct ct_err *e) {
  if (check_spec(spec, e)) return e->code;
  const int b = spec->batch, t = spec->max_length - 1, w = spec->dim, v = spec->vocab_size;
  io->input = graph_tensor(g, NULL, DT_F32, TK_INPUT, 2, (int[]){b, spec->feature_dim});
  io->tokens = graph_tensor(g, NULL, DT_I32, TK_INPUT, 2, (int[]){b, t});
  io->labels = graph_tensor(g, NULL, DT_I32, TK_INPUT, 1, (int[]){b * t});

  int mem = nn_linear(g, "visual_projection", io->input, w, 1, normal_002); /* (B,W) */
  mem = nn_view(g, mem, 3, (int[]){b, 1, w});                               /* (B,1,W) */
  int x = nn_embedding(g, "embedding", io->tokens, v, w, normal_002);       /* (B,T,W) */
  x = nn_dropout(g, nn_posenc(g, x), spec->dropout);
  for (int i = 0; i < spec->depth; i++) {
    char name[32];
    snprintf(name, sizeof name, "transformer.layers.%d", i);
    x = decoder_layer(g, name, x, mem, spec);
  }
  x = nn_linear(g, "output", x, v, 1, normal_002);  /* (B,T,V) */
  io->logits = nn_view(g, x, 2, (int[]){b * t, v}); /* (B*T,V) */
  io->loss =
      nn_cross_entropy(g, io->logits, io->labels, COCO_NULL, spec->label_smoothing, (float)(b * t));
  return CT_OK;
}
