/* cnn_attn.c — seed 003's small CNNs (MODELS.md §3): Conv(3,64)-ReLU-
 * Conv(64,32)-ReLU-Flatten-Linear(32*32*32,K), with the channel
 * self-attention block (blocks.c) plus a ReLU after the first ReLU (early),
 * the second (late) or both (double). Parameter names are the indices of the
 * seed's top-level nn.Sequential, so they shift with the inserted blocks.
 * Init: torch's defaults, as the seed. */
#include <stdio.h>

#include "models/models.h"
#include "nn/nn.h"

static const struct nn_init torch_default = {INIT_KAIMING_UNIFORM, 0, 1};

/* The nn.Sequential being built: `next` is the index of the next module. */
struct seq {
  struct graph *g;
  int next;
};

static const char *seq_name(struct seq *s, char *buf, size_t len) {
  snprintf(buf, len, "%d", s->next++);
  return buf;
}

static int conv3x3(struct seq *s, int x, int oc) {
  char name[16];
  return nn_conv2d(s->g, seq_name(s, name, sizeof name), x, oc, 3, 1, 1, 1, torch_default);
}

static int relu(struct seq *s, int x) {
  s->next++;
  return nn_act(s->g, x, ACT_RELU);
}

static int attention(struct seq *s, int x) {
  char name[16];
  return model_channel_attention(s->g, seq_name(s, name, sizeof name), x);
}

static int cnn(struct graph *g, const struct model_spec *spec, struct model_io *io, int early,
               int late, const char *model, struct ct_err *e) {
  const int b = spec->batch;
  if (model_image_input(g, spec, io, model, e)) return e->code;
  struct seq s = {g, 0};
  int x = relu(&s, conv3x3(&s, io->input, 64)); /* (B,64,32,32) */
  if (early) x = relu(&s, attention(&s, x));
  x = relu(&s, conv3x3(&s, x, 32)); /* (B,32,32,32) */
  if (late) x = relu(&s, attention(&s, x));
  s.next++;                                       /* Flatten */
  x = nn_view(g, x, 2, (int[]){b, 32 * 32 * 32}); /* (B,32768) */
  char name[16];
  io->logits = nn_linear(g, seq_name(&s, name, sizeof name), x, spec->num_classes, 1,
                         torch_default); /* (B,K) */
  io->loss = nn_cross_entropy(g, io->logits, io->labels, -1, spec->label_smoothing, 0.0f);
  return CT_OK;
}

int model_cnn_vanilla(struct graph *g, const struct model_spec *spec, struct model_io *io,
                      struct ct_err *e) {
  return cnn(g, spec, io, 0, 0, "cnn_vanilla", e);
}

int model_cnn_early(struct graph *g, const struct model_spec *spec, struct model_io *io,
                    struct ct_err *e) {
  return cnn(g, spec, io, 1, 0, "cnn_early", e);
}

int model_cnn_late(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e) {
  return cnn(g, spec, io, 0, 1, "cnn_late", e);
}

int model_cnn_double(struct graph *g, const struct model_spec *spec, struct model_io *io,
                     struct ct_err *e) {
  return cnn(g, spec, io, 1, 1, "cnn_double", e);
}
