/* nn.h — layers: each call adds a layer's parameters (with their PyTorch
 * state_dict names) and nodes to a graph, checks shapes, and returns the
 * output tensor id. Shapes in comments: B batch, T tokens, D width. */
#ifndef CTRAIN_NN_H
#define CTRAIN_NN_H

#include "graph/graph.h"

/* How a layer's weight is initialised (norms start at 1/0). */
struct nn_init {
  enum init_kind kind;
  float std;        /* INIT_NORMAL only */
  int bias_uniform; /* bias U(+-1/sqrt(fan_in)), torch's default for Linear/Conv; else 0 */
};

/* x (N,C,H,W) -> (N,oc,OH,OW); weight `name.weight` (oc,C,k,k), `name.bias`. */
int nn_conv2d(struct graph *g, const char *name, int x, int oc, int k, int stride, int pad,
              int bias, struct nn_init init);
/* x (N,C,H,W); `name.{weight,bias,running_mean,running_var,num_batches_tracked}`. */
int nn_batchnorm2d(struct graph *g, const char *name, int x);
/* x (N,C,H,W) -> (N,C,H/s,W/s) (floor) */
int nn_maxpool2d(struct graph *g, int x, int k, int s);
/* x (N,C,H,W) -> (N,C) */
int nn_global_avgpool(struct graph *g, int x);
/* x (N,C,H,W) -> (N,C,H+2pad,W+2pad), zero borders */
int nn_zero_pad2d(struct graph *g, int x, int pad);
/* x (N,C,H,W) -> (N, (H/P)(W/P) tokens, C*P*P): P x P patches in row-major
 * grid order, each flattened channel-major, then row, then column. */
int nn_patches(struct graph *g, int x, int p);
/* x (..., in) -> (..., out); `name.weight` (out,in), `name.bias` (out). */
int nn_linear(struct graph *g, const char *name, int x, int out, int bias, struct nn_init init);
/* act(nn_linear(..., bias = 1, ...)) as one node: the backend fuses the bias
 * and the activation into one pass each way. */
int nn_linear_act(struct graph *g, const char *name, int x, int out, enum act_kind act,
                  struct nn_init init);
/* LayerNorm over the last axis; `name.weight`, `name.bias`. */
int nn_layernorm(struct graph *g, const char *name, int x);
int nn_act(struct graph *g, int x, enum act_kind kind);
/* q (B,Tq,D), k and v (B,Tk,D) -> (B,Tq,D); heads split D contiguously.
 * mask_tensor is a (Tq,Tk) TK_CONST tensor for MASK_GIVEN, else -1. */
int nn_sdpa(struct graph *g, int q, int k, int v, int heads, enum mask_kind mask, int mask_tensor,
            float scale, float dropout);
int nn_add(struct graph *g, int a, int b);
/* x (B,R,C) -> (B,C,R) */
int nn_transpose(struct graph *g, int x);
int nn_view(struct graph *g, int x, int ndim, const int *shape);
/* x (B,T,D) -> (B,D), the mean over tokens */
int nn_mean_tokens(struct graph *g, int x);
/* p == 0 is the identity and adds no node. */
int nn_dropout(struct graph *g, int x, float p);
/* idx (B,T) int32 -> (B,T,D); `name.weight` (vocab,D). */
int nn_embedding(struct graph *g, const char *name, int idx, int vocab, int d, struct nn_init init);
/* x (B,T,D) + the sinusoidal encoding */
int nn_posenc(struct graph *g, int x);
/* logits (N,K), labels (N) int32 -> scalar; rows labelled ignore_index do
 * not count; divisor > 0 replaces the count as the denominator. */
int nn_cross_entropy(struct graph *g, int logits, int labels, int ignore_index, float smoothing,
                     float divisor);

#endif
