/* vit.c — seed 004's Vision Transformer (MODELS.md §4): P x P patches,
 * `patch_embed.proj`, sinusoidal positional encoding and dropout, `depth`
 * post-norm encoder layers (model_encoder_layer), mean over tokens, `head`. Init: N(0, 0.02) for
 * every Linear weight, biases 0, LayerNorm 1/0. */
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init normal_002 = {INIT_NORMAL, 0.02f, 0};

int model_vit(struct graph *g, const struct model_spec *spec, struct model_io *io,
              struct ct_err *e) {
  if (model_image_input(g, spec, io, "vit", e)) return e->code;
  int x = nn_patches(g, io->input, spec->patch);                     /* (B,T,3*P*P) */
  x = nn_linear(g, "patch_embed.proj", x, spec->dim, 1, normal_002); /* (B,T,D) */
  x = nn_dropout(g, nn_posenc(g, x), spec->dropout);
  return model_encoder_head(g, spec, io, x);
}
