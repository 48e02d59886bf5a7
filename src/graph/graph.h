/* graph.h — tensors, a static graph built once, reverse-mode autograd.
 *
 * A model function adds tensors and nodes (through src/nn); graph_plan then
 * lays out all memory once: one flat buffer for parameters and one for their
 * gradients (both in reverse creation order, so the last layer's gradients
 * come first and all-reduce buckets are contiguous), one for buffers
 * (BatchNorm statistics), and one arena for activations, saved state and
 * activation gradients. forward and backward run the node list and allocate
 * nothing. The graph calls kernels only through the backend table. */
#ifndef CTRAIN_GRAPH_H
#define CTRAIN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "kernels/ops.h"

#define GRAPH_MAX_DIMS 4
#define GRAPH_NAME_LEN 96

enum dtype { DT_F32, DT_I32, DT_I64, DT_U8 };

enum tensor_kind {
  TK_ACT,    /* activation, in the arena */
  TK_INPUT,  /* fed by the caller each step (images, labels, tokens) */
  TK_PARAM,  /* trainable, in the flat parameter buffer */
  TK_BUFFER, /* state_dict buffer (running stats), not trainable */
  TK_SAVED,  /* op state kept from forward for backward */
  TK_CONST   /* filled once at plan time (masks) */
};

enum init_kind {
  INIT_NONE,
  INIT_ZEROS,
  INIT_ONES,
  INIT_KAIMING_NORMAL, /* std = gain / sqrt(fan_in), gain sqrt(2) (ReLU) */
  INIT_XAVIER_NORMAL,  /* std = sqrt(2 / (fan_in + fan_out)) */
  INIT_NORMAL,         /* std = init_std */
  INIT_KAIMING_UNIFORM /* torch's default for Linear/Conv weights: U(+-1/sqrt(fan_in)) */
};

struct tensor {
  char name[GRAPH_NAME_LEN]; /* state_dict name for params and buffers */
  enum dtype dtype;
  enum tensor_kind kind;
  int ndim;
  int shape[GRAPH_MAX_DIMS];
  size_t numel;
  int needs_grad;
  int view_of; /* >= 0: shares storage with that tensor (reshape) */
  enum init_kind init;
  float init_std;
  int fan_in, fan_out;
  void *data;  /* set by graph_plan */
  float *grad; /* set by graph_plan when needs_grad */
};

enum node_op {
  OP_CONV2D,
  OP_BATCHNORM2D,
  OP_MAXPOOL2D,
  OP_MEAN_LAST,
  OP_MEAN_MID,
  OP_LINEAR,
  OP_LINEAR_ACT,
  OP_LAYERNORM,
  OP_ACT,
  OP_ATTENTION,
  OP_EMBEDDING,
  OP_POSENC,
  OP_DROPOUT,
  OP_ADD,
  OP_TRANSPOSE,
  OP_PATCH,
  OP_PAD2D,
  OP_CROSS_ENTROPY /* keep last: OP_KINDS counts the kinds */
};
#define OP_KINDS (OP_CROSS_ENTROPY + 1)

#define NODE_MAX_IN 6
#define NODE_MAX_SAVED 3

struct node {
  enum node_op op;
  int nin;
  int in[NODE_MAX_IN];       /* tensor ids */
  int out;                   /* tensor id */
  int saved[NODE_MAX_SAVED]; /* tensor ids of state kept for backward, -1 unused */
  union {
    struct conv2d_shape conv;
    struct attn_shape attn;
    struct {
      int n, c, hw;
      float momentum, eps;
    } bn;
    struct {
      int n, c, h, w, k, s;
    } pool;
    struct {
      int rows, cols; /* also (b, t, d) as rows=b, cols=t with d below */
      int d;
    } red;
    struct {
      int m, k, n;
      enum act_kind act; /* OP_LINEAR_ACT */
    } lin;
    struct {
      int rows, d;
      float eps;
    } ln;
    struct {
      enum act_kind kind;
    } act;
    struct {
      float p;
    } drop;
    struct {
      int b, r, c;
    } tr;
    struct {
      int n, c, h, w, size; /* patch side (OP_PATCH) or padding (OP_PAD2D) */
    } img;
    struct {
      int n, classes, ignore_index;
      float smoothing, divisor;
    } ce;
  } p;
  float dropout; /* attention-weight dropout probability (OP_ATTENTION) */
};

/* Backend memory as the host sees it. The cpu backend's memory is host
 * memory, so a view of it is that memory and pull/push copy nothing; for any
 * other backend the view owns a host copy, allocated once, and pull
 * (download) and push (upload) move byte ranges between the two. */
struct host_view {
  const struct ops_backend *ops;
  void *dev, *host;
  size_t bytes;
};

/* 1 when the backend's memory is host memory (the cpu backend). */
int backend_host_memory(const struct ops_backend *o);
int host_view_init(struct host_view *v, const struct ops_backend *ops, void *dev, size_t bytes,
                   struct ct_err *e);
void host_view_pull(const struct host_view *v, size_t off, size_t bytes);
void host_view_push(const struct host_view *v, size_t off, size_t bytes);
void host_view_free(struct host_view *v);

struct graph {
  const struct ops_backend *ops;
  struct ops_ctx ctx;

  struct tensor *tensors;
  int ntensors, tensors_cap;
  struct node *nodes;
  int nnodes, nodes_cap;

  int loss;   /* scalar loss tensor, -1 until set */
  int logits; /* the model's output, -1 until set */

  /* planned memory */
  float *params, *grads; /* flat, reverse creation order, same offsets */
  size_t params_len;     /* floats in each, 256-byte gaps (zeros) included */
  size_t params_count;   /* the model's parameters */
  void *buffers;
  size_t buffers_bytes;
  struct host_view buffers_view; /* for checkpoints and broadcasts */
  void *arena;
  size_t arena_bytes;
  size_t act_grad_offset, act_grad_bytes; /* the part of the arena zeroed per step */
  float *scratch;

  /* backward hook (graph_set_grads_hook): after node i's backward the
   * prefix [0, ready_prefix[i]) of grads is final and grads_ready is told */
  void (*grads_ready)(void *user, size_t prefix);
  void *grads_user;
  size_t *ready_prefix;

  /* runtime */
  int training;
  uint64_t seed;         /* dropout streams are keyed by seed and node index */
  uint64_t step_counter; /* set by the trainer before each forward */
};

void graph_init(struct graph *g, const struct ops_backend *ops, int threads, uint64_t seed);
void graph_free(struct graph *g);

/* Adds a tensor; returns its id. Shapes are checked by the caller (nn). */
int graph_tensor(struct graph *g, const char *name, enum dtype dt, enum tensor_kind kind, int ndim,
                 const int *shape);
/* A reshaped view of tensor `of` (same numel). */
int graph_view(struct graph *g, int of, int ndim, const int *shape);
/* Adds a node; its output's needs_grad follows its inputs. Returns node id. */
int graph_node(struct graph *g, const struct node *n);

/* Lays out memory and initialises parameters from g->seed. */
int graph_plan(struct graph *g, struct ct_err *e);

/* Whether a training forward draws random numbers (dropout), whose
 * stream follows g->step_counter from step to step. */
int graph_draws(const struct graph *g);

/* Runs every node in order (in training, each BatchNorm node also counts
 * num_batches_tracked up on the device). */
void graph_forward(struct graph *g);
/* Zeroes all gradients, seeds d(loss) = 1, runs nodes in reverse. */
void graph_backward(struct graph *g);
/* The zeroing graph_backward starts with, for callers that run the nodes
 * themselves (the profiler). */
void graph_zero_grads(struct graph *g);

/* After graph_plan: graph_backward calls fn(user, k) whenever the prefix
 * [0, k) of the flat gradient buffer has become final (every node using
 * those parameters has run), k growing, last with k = params_len. The last
 * layers come first in the buffer, so their gradients can be all-reduced
 * while backward goes on through the earlier layers. */
int graph_set_grads_hook(struct graph *g, void (*fn)(void *user, size_t prefix), void *user,
                         struct ct_err *e);

/* One node, for profiling (graph_forward/backward run them all in order). */
void graph_node_forward(struct graph *g, int idx);
void graph_node_backward(struct graph *g, int idx);
/* "conv2d", "linear_act", ...: the op's name in profiles. */
const char *graph_op_name(enum node_op op);

/* The id of the tensor called `name` (its state_dict name), or -1. */
int graph_find(const struct graph *g, const char *name);
static inline float *tensor_f32(const struct graph *g, int id) {
  return (float *)g->tensors[id].data;
}
size_t dtype_size(enum dtype dt);

#endif
