/* models.h — the model zoo: each model is a function that builds its graph
 * once, reading like the PyTorch module it mirrors (MODELS.md). */
#ifndef CTRAIN_MODELS_H
#define CTRAIN_MODELS_H

#include "core/error.h"
#include "graph/graph.h"

/* What the data is: a model trains on one kind and refuses the other. */
enum model_task {
  TASK_IMAGES = 0, /* image classification (a zeroed spec is one) */
  TASK_CAPTIONS    /* captioning on COCO features (data/coco.h) */
};

/* What a model needs to know, filled from [model] by the trainer. */
struct model_spec {
  char name[32];
  enum model_task task;
  int num_classes;
  int batch; /* per-rank batch the graph is built for */
  int image_c, image_h, image_w;
  float label_smoothing;
  int batchnorm; /* resnet10*: BatchNorm after each conv (the seed's switch, off) */
  /* vit: patch side, width D, blocks, heads (dividing D), FFN width, dropout */
  int patch, dim, depth, heads, ffn_dim;
  float dropout;
  /* caption_transformer (TASK_CAPTIONS): from the data file's root
   * attributes (coco_info); dim, depth, heads, ffn_dim, dropout as above */
  int vocab_size;  /* V */
  int feature_dim; /* D_feat */
  int max_length;  /* caption row width; the model sees max_length - 1 positions */
};

/* The tensors the trainer feeds and reads. Images: input (B,C,H,W) float,
 * labels (B) int32, logits (B,K). Captions (coco_batch fills them): input
 * the features (B,D_feat) float, tokens captions_in (B,T) int32, labels
 * captions_out (B*T) int32 with <NULL> (0) not counted, logits (B*T,V);
 * T = max_length - 1. */
struct model_io {
  int input;  /* float */
  int tokens; /* captioning only, else -1 */
  int labels; /* int32; an image label -1 marks a padded row that does not count */
  int logits; /* (rows, K) */
  int loss;   /* scalar */
};

int model_build(struct graph *g, const struct model_spec *spec, struct model_io *io,
                struct ct_err *e);
/* The kind of data model `name` trains on; TASK_IMAGES for an unknown name
 * (model_build reports it). */
enum model_task model_task_of(const char *name);
/* Comma-separated list of known model names, for error messages. */
const char *model_names(void);

/* One builder per model (src/models/<name>.c), MODELS.md's section in brackets. */
int model_attn_cnn(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e); /* §1 */
int model_ultimus(struct graph *g, const struct model_spec *spec, struct model_io *io,
                  struct ct_err *e); /* §2 */
int model_cnn_vanilla(struct graph *g, const struct model_spec *spec, struct model_io *io,
                      struct ct_err *e); /* §3 */
int model_cnn_early(struct graph *g, const struct model_spec *spec, struct model_io *io,
                    struct ct_err *e);
int model_cnn_late(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e);
int model_cnn_double(struct graph *g, const struct model_spec *spec, struct model_io *io,
                     struct ct_err *e);
int model_resnet10(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e);
int model_resnet10_attn(struct graph *g, const struct model_spec *spec, struct model_io *io,
                        struct ct_err *e);
int model_vit(struct graph *g, const struct model_spec *spec, struct model_io *io,
              struct ct_err *e); /* §4 */
int model_conv_vit(struct graph *g, const struct model_spec *spec, struct model_io *io,
                   struct ct_err *e); /* ours: conv tokenizer + transformer */
int model_caption_transformer(struct graph *g, const struct model_spec *spec, struct model_io *io,
                              struct ct_err *e); /* §5 */

/* Shared blocks. */
/* Seed 003's self-attention over channels, x (N,C,H,W) -> x + attention,
 * 1x1-conv `name.conv_{query,key,value}` with bias. */
int model_channel_attention(struct graph *g, const char *name, int x);
/* Multi-head attention of x (B,Tq,D) over mem (B,Tk,D) -> (B,Tq,D):
 * Linear `name.{query,key,value,proj}` (N(0, 0.02), bias 0), heads split D
 * contiguously, scores / sqrt(D/H), the spec's dropout on the weights. */
int model_attention(struct graph *g, const char *name, int x, int mem, enum mask_kind mask,
                    const struct model_spec *s);
/* fc2(dropout(GELU(fc1(x)))), x (B,T,D) -> (B,T,D), Linear `name.fc{1,2}`
 * of the spec's FFN width. */
int model_feed_forward(struct graph *g, const char *name, int x, const struct model_spec *s);
/* Post-norm transformer encoder layer, x (B,T,D) -> (B,T,D):
 * x = norm_self(x + dropout(self_attn(x))), x = norm_ffn(x + dropout(ffn(x)));
 * multi-head attention `name.self_attn.{query,key,value,proj}` with dropout
 * on the weights, GELU feed-forward `name.ffn.fc{1,2}`; D, heads, FFN width
 * and dropout from the spec; Linear init N(0, 0.02), bias 0. */
int model_encoder_layer(struct graph *g, const char *name, int x, const struct model_spec *s);
/* The ViTs' top, tokens x (B,T,D) -> io's logits (B,K) and loss: `depth`
 * encoder layers `transformer.layers.{i}`, mean over tokens, Linear `head`
 * (N(0, 0.02)), cross-entropy with the spec's label smoothing. */
int model_encoder_head(struct graph *g, const struct model_spec *spec, struct model_io *io, int x);
/* Input and label tensors for 3x32x32 images; an error names the data's shape
 * when it differs. */
int model_image_input(struct graph *g, const struct model_spec *spec, struct model_io *io,
                      const char *model, struct ct_err *e);

#endif
