/* conv_vit.c — ctrain's own CIFAR-10 recipe model (not a seed): a ViT whose
 * tokenizer is a small ResNet-9-style convolution stack instead of linear
 * patches. Patches of 8x8 pixels give the seed's ViT 16 tokens that each see
 * one patch; here each of the 16 tokens comes out of three conv stages and
 * already sees most of the image, which is what lets a transformer this
 * small train well in a CPU-hour. With D = model.dim:
 *
 *   prep    conv 3x3 3 -> D/8, BN, ReLU                       (B,D/8,32,32)
 *   layer1  conv D/8 -> D/4, BN, ReLU, maxpool 2, + res x2     (B,D/4,16,16)
 *   layer2  conv D/4 -> D/2, BN, ReLU, maxpool 2               (B,D/2,8,8)
 *   layer3  conv D/2 -> D,   BN, ReLU, maxpool 2, + res x2     (B,D,4,4)
 *   tokens  (B,16,D), sinusoidal positions, dropout, `depth` post-norm
 *           encoder layers (model_encoder_layer), mean over tokens, `head`.
 *
 * "res x2" is x + relu(bn(conv(relu(bn(conv(x)))))), as ResNet-9's residual
 * blocks. Convolutions have no bias (BatchNorm follows). Init: torch's
 * defaults for convolutions and BatchNorm, N(0, 0.02) for every Linear. The
 * PyTorch twin is tests/reference/models.py ConvViT. */
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init torch_default = {INIT_KAIMING_UNIFORM, 0, 1};

/* `name.conv` 3x3 (no bias), `name.bn`, ReLU: x (B,cin,H,W) -> (B,cout,H,W) */
static int conv_bn(struct graph *g, const char *name, int x, int cout) {
  char conv[80], bn[80]; /* name is at most 63 characters (stage) */
  snprintf(conv, sizeof conv, "%s.conv", name);
  snprintf(bn, sizeof bn, "%s.bn", name);
  x = nn_conv2d(g, conv, x, cout, 3, 1, 1, 0, torch_default);
  return nn_act(g, nn_batchnorm2d(g, bn, x), ACT_RELU);
}

/* x (B,cin,H,W) -> (B,cout,H/2,W/2), with the residual pair when `res`. */
static int stage(struct graph *g, const char *name, int x, int cout, int res) {
  char sub[64];
  snprintf(sub, sizeof sub, "%s.conv", name);
  x = nn_maxpool2d(g, conv_bn(g, sub, x, cout), 2, 2);
  if (!res) return x;
  snprintf(sub, sizeof sub, "%s.res.0", name);
  int r = conv_bn(g, sub, x, cout);
  snprintf(sub, sizeof sub, "%s.res.1", name);
  return nn_add(g, x, conv_bn(g, sub, r, cout));
}

int model_conv_vit(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e) {
  const int d = spec->dim, b = spec->batch;
  if (d < 8 || d % 8 != 0)
    return err_set(e, CT_ERR_USAGE, "conv_vit: model.dim = %d must be a positive multiple of 8", d);
  if (model_image_input(g, spec, io, "conv_vit", e)) return e->code;
  int x = conv_bn(g, "prep", io->input, d / 8); /* (B,D/8,32,32) */
  x = stage(g, "layer1", x, d / 4, 1);          /* (B,D/4,16,16) */
  x = stage(g, "layer2", x, d / 2, 0);          /* (B,D/2,8,8) */
  x = stage(g, "layer3", x, d, 1);              /* (B,D,4,4) */
  x = nn_view(g, x, 3, (int[]){b, d, 16});      /* (B,D channels,16 positions) */
  x = nn_transpose(g, x);                       /* (B,16 tokens,D) */
  x = nn_dropout(g, nn_posenc(g, x), spec->dropout);
  return model_encoder_head(g, spec, io, x);
}
