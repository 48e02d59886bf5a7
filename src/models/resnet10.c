/* resnet10.c — seed 003's ResNet10 (MODELS.md §3), layers [1,1,1,1] of the
 * seed's block, 64/128/256/512 channels, with (resnet10_attn) or without the
 * channel self-attention block after layer2. As in the seed: each block's
 * conv1 is 3x3 with padding 2 (it grows the map by 2) and its conv2 3x3
 * without padding carries the stride; the downsampler (1x1 conv + BatchNorm)
 * is always normalised, the other BatchNorms only with model.batchnorm
 * (off by default, and then absent from the state_dict). Init: torch's
 * defaults, as the seed. */
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init torch_default = {INIT_KAIMING_UNIFORM, 0, 1};

static int conv(struct graph *g, const char *prefix, const char *what, int x, int oc, int k,
                int stride, int pad) {
  char name[64];
  snprintf(name, sizeof name, "%s.%s", prefix, what);
  return nn_conv2d(g, name, x, oc, k, stride, pad, 1, torch_default);
}

static int batchnorm(struct graph *g, const char *prefix, const char *what, int x) {
  char name[64];
  snprintf(name, sizeof name, "%s.%s", prefix, what);
  return nn_batchnorm2d(g, name, x);
}

/* The seed's `block`, x (N,cin,H,W) -> (N,cout,H',W'), H' = (H-1)/stride+1. */
static int block(struct graph *g, const char *name, int x, int cout, int stride, int bn) {
  const int cin = g->tensors[x].shape[1];
  int y = conv(g, name, "conv1", x, cout, 3, 1, 2); /* (N,cout,H+2,W+2) */
  if (bn) y = batchnorm(g, name, "bn1", y);
  y = nn_act(g, y, ACT_RELU);
  y = conv(g, name, "conv2", y, cout, 3, stride, 0); /* (N,cout,H',W') */
  if (bn) y = batchnorm(g, name, "bn2", y);
  y = nn_act(g, y, ACT_RELU);
  int residual = x;
  if (stride != 1 || cin != cout) {
    residual = conv(g, name, "downsampler.0", x, cout, 1, stride, 0); /* (N,cout,H',W') */
    residual = batchnorm(g, name, "downsampler.1", residual);
  }
  return nn_act(g, nn_add(g, residual, y), ACT_RELU);
}

static int resnet10(struct graph *g, const struct model_spec *spec, struct model_io *io,
                    int attention, const char *model, struct ct_err *e) {
  const int bn = spec->batchnorm;
  if (model_image_input(g, spec, io, model, e)) return e->code;
  int x = nn_conv2d(g, "conv1", io->input, 64, 7, 2, 3, 1, torch_default); /* (B,64,16,16) */
  if (bn) x = nn_batchnorm2d(g, "bn1", x);
  x = nn_act(g, x, ACT_RELU);
  /* MaxPool2d(3, stride 2, padding 1) pads with -inf. Its input is a ReLU's
   * output, >= 0, so zero padding selects the same maxima, and where a window
   * holds only zeros the gradient is 0 either way (ReLU's derivative at 0). */
  x = nn_maxpool2d(g, nn_zero_pad2d(g, x, 1), 3, 2); /* (B,64,8,8) */
  x = block(g, "layer1.0", x, 64, 1, bn);            /* (B,64,8,8) */
  x = block(g, "layer2.0", x, 128, 1, bn);           /* (B,128,8,8) */
  if (attention) x = model_channel_attention(g, "attention", x);
  x = block(g, "layer3.0", x, 256, 1, bn);                                 /* (B,256,8,8) */
  x = block(g, "layer4.0", x, 512, 2, bn);                                 /* (B,512,4,4) */
  x = nn_global_avgpool(g, x);                                             /* (B,512) */
  io->logits = nn_linear(g, "fc", x, spec->num_classes, 1, torch_default); /* (B,K) */
  io->loss = nn_cross_entropy(g, io->logits, io->labels, -1, spec->label_smoothing, 0.0f);
  return CT_OK;
}

int model_resnet10(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e) {
  return resnet10(g, spec, io, 0, "resnet10", e);
}

int model_resnet10_attn(struct graph *g, const struct model_spec *spec, struct model_io *io,
                        struct ct_err *e) {
  return resnet10(g, spec, io, 1, "resnet10_attn", e);
}
