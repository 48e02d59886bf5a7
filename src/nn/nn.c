/* nn.c — layers as graph builders. */
#include "nn/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct tensor *shape_of(const struct graph *g, int id) { return &g->tensors[id]; }

static int nn_param(struct graph *g, const char *layer, const char *what, int ndim,
                    const int *shape, enum init_kind init, float std, int fan_in, int fan_out) {
  char name[GRAPH_NAME_LEN];
  CT_CHECK(snprintf(name, sizeof name, "%s.%s", layer, what) < (int)sizeof name);
  int id = graph_tensor(g, name, DT_F32, TK_PARAM, ndim, shape);
  struct tensor *t = &g->tensors[id];
  t->init = init;
  t->init_std = std;
  t->fan_in = fan_in;
  t->fan_out = fan_out;
  return id;
}

/* `layer.bias` (n): zeros, or torch's default U(+-1/sqrt(fan_in)), which is
 * INIT_KAIMING_UNIFORM's bound with the weight's fan_in. */
static int nn_bias(struct graph *g, const char *layer, int n, struct nn_init init, int fan_in) {
  enum init_kind kind = init.bias_uniform ? INIT_KAIMING_UNIFORM : INIT_ZEROS;
  return nn_param(g, layer, "bias", 1, &n, kind, 0, fan_in, 0);
}

static int nn_buffer(struct graph *g, const char *layer, const char *what, enum dtype dt, int ndim,
                     const int *shape, enum init_kind init) {
  char name[GRAPH_NAME_LEN];
  CT_CHECK(snprintf(name, sizeof name, "%s.%s", layer, what) < (int)sizeof name);
  int id = graph_tensor(g, name, dt, TK_BUFFER, ndim, shape);
  g->tensors[id].init = init;
  return id;
}

static int act_like(struct graph *g, int x) {
  const struct tensor *t = shape_of(g, x);
  int shape[GRAPH_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  return graph_tensor(g, NULL, DT_F32, TK_ACT, t->ndim, shape);
}

static int saved(struct graph *g, enum dtype dt, int ndim, const int *shape) {
  return graph_tensor(g, NULL, dt, TK_SAVED, ndim, shape);
}

static struct node node_new(enum node_op op, int out) {
  struct node n;
  memset(&n, 0, sizeof n);
  n.op = op;
  n.out = out;
  for (int i = 0; i < NODE_MAX_SAVED; i++)
    n.saved[i] = -1;
  return n;
}

int nn_conv2d(struct graph *g, const char *name, int x, int oc, int k, int stride, int pad,
              int bias, struct nn_init init) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 4);
  struct conv2d_shape s = {.n = t->shape[0],
                           .c = t->shape[1],
                           .h = t->shape[2],
                           .w = t->shape[3],
                           .oc = oc,
                           .kh = k,
                           .kw = k,
                           .stride = stride,
                           .pad = pad};
  s.oh = (s.h + 2 * pad - k) / stride + 1;
  s.ow = (s.w + 2 * pad - k) / stride + 1;
  CT_CHECK(s.oh > 0 && s.ow > 0);
  int fan_in = s.c * k * k;
  int w = nn_param(g, name, "weight", 4, (int[]){oc, s.c, k, k}, init.kind, init.std, fan_in,
                   oc * k * k);
  int b = bias ? nn_bias(g, name, oc, init, fan_in) : -1;
  int y = graph_tensor(g, NULL, DT_F32, TK_ACT, 4, (int[]){s.n, oc, s.oh, s.ow});
  struct node n = node_new(OP_CONV2D, y);
  n.nin = bias ? 3 : 2;
  n.in[0] = x;
  n.in[1] = w;
  n.in[2] = b;
  n.p.conv = s;
  graph_node(g, &n);
  return y;
}

int nn_batchnorm2d(struct graph *g, const char *name, int x) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 4);
  int c = t->shape[1];
  struct node n = node_new(OP_BATCHNORM2D, -1);
  n.nin = 6;
  n.in[0] = x;
  n.in[1] = nn_param(g, name, "weight", 1, &c, INIT_ONES, 0, 0, 0);
  n.in[2] = nn_param(g, name, "bias", 1, &c, INIT_ZEROS, 0, 0, 0);
  n.in[3] = nn_buffer(g, name, "running_mean", DT_F32, 1, &c, INIT_ZEROS);
  n.in[4] = nn_buffer(g, name, "running_var", DT_F32, 1, &c, INIT_ONES);
  n.in[5] = nn_buffer(g, name, "num_batches_tracked", DT_I64, 0, NULL, INIT_ZEROS);
  n.saved[0] = saved(g, DT_F32, 1, &c);
  n.saved[1] = saved(g, DT_F32, 1, &c);
  n.out = act_like(g, x);
  t = shape_of(g, x);
  n.p.bn.n = t->shape[0];
  n.p.bn.c = c;
  n.p.bn.hw = t->shape[2] * t->shape[3];
  n.p.bn.momentum = 0.1f;
  n.p.bn.eps = 1e-5f;
  graph_node(g, &n);
  return n.out;
}

int nn_maxpool2d(struct graph *g, int x, int k, int s) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 4);
  int shape[4] = {t->shape[0], t->shape[1], (t->shape[2] - k) / s + 1, (t->shape[3] - k) / s + 1};
  CT_CHECK(shape[2] > 0 && shape[3] > 0);
  struct node n = node_new(OP_MAXPOOL2D, graph_tensor(g, NULL, DT_F32, TK_ACT, 4, shape));
  t = shape_of(g, x);
  n.nin = 1;
  n.in[0] = x;
  n.saved[0] = saved(g, DT_I32, 4, shape);
  n.p.pool.n = t->shape[0];
  n.p.pool.c = t->shape[1];
  n.p.pool.h = t->shape[2];
  n.p.pool.w = t->shape[3];
  n.p.pool.k = k;
  n.p.pool.s = s;
  graph_node(g, &n);
  return n.out;
}

int nn_global_avgpool(struct graph *g, int x) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 4);
  int shape[2] = {t->shape[0], t->shape[1]};
  struct node n = node_new(OP_MEAN_LAST, graph_tensor(g, NULL, DT_F32, TK_ACT, 2, shape));
  t = shape_of(g, x);
  n.nin = 1;
  n.in[0] = x;
  n.p.red.rows = t->shape[0] * t->shape[1];
  n.p.red.cols = t->shape[2] * t->shape[3];
  graph_node(g, &n);
  return n.out;
}

int nn_zero_pad2d(struct graph *g, int x, int pad) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 4 && pad >= 0);
  int batch = t->shape[0], c = t->shape[1], h = t->shape[2], w = t->shape[3];
  struct node n = node_new(OP_PAD2D, graph_tensor(g, NULL, DT_F32, TK_ACT, 4,
                                                  (int[]){batch, c, h + 2 * pad, w + 2 * pad}));
  n.nin = 1;
  n.in[0] = x;
  n.p.img.n = batch;
  n.p.img.c = c;
  n.p.img.h = h;
  n.p.img.w = w;
  n.p.img.size = pad;
  graph_node(g, &n);
  return n.out;
}

int nn_patches(struct graph *g, int x, int p) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 4 && p > 0 && t->shape[2] % p == 0 && t->shape[3] % p == 0);
  int batch = t->shape[0], c = t->shape[1], h = t->shape[2], w = t->shape[3];
  struct node n = node_new(OP_PATCH, graph_tensor(g, NULL, DT_F32, TK_ACT, 3,
                                                  (int[]){batch, (h / p) * (w / p), c * p * p}));
  n.nin = 1;
  n.in[0] = x;
  n.p.img.n = batch;
  n.p.img.c = c;
  n.p.img.h = h;
  n.p.img.w = w;
  n.p.img.size = p;
  graph_node(g, &n);
  return n.out;
}

static int linear_node(struct graph *g, enum node_op op, const char *name, int x, int out, int bias,
                       enum act_kind act, struct nn_init init) {
  const struct tensor *t = shape_of(g, x);
  int in = t->shape[t->ndim - 1];
  int shape[GRAPH_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[t->ndim - 1] = out;
  int ndim = t->ndim, rows = (int)(t->numel / (size_t)in);
  int w = nn_param(g, name, "weight", 2, (int[]){out, in}, init.kind, init.std, in, out);
  int b = bias ? nn_bias(g, name, out, init, in) : -1;
  struct node n = node_new(op, graph_tensor(g, NULL, DT_F32, TK_ACT, ndim, shape));
  n.nin = bias ? 3 : 2;
  n.in[0] = x;
  n.in[1] = w;
  n.in[2] = b;
  n.p.lin.m = rows;
  n.p.lin.k = in;
  n.p.lin.n = out;
  n.p.lin.act = act;
  if (op == OP_LINEAR_ACT) {
    n.saved[0] = saved(g, DT_F32, ndim, shape); /* h, before the activation */
    n.saved[1] = saved(g, DT_F32, ndim, shape); /* dh */
  }
  graph_node(g, &n);
  return n.out;
}

int nn_linear(struct graph *g, const char *name, int x, int out, int bias, struct nn_init init) {
  return linear_node(g, OP_LINEAR, name, x, out, bias, ACT_RELU, init);
}

int nn_linear_act(struct graph *g, const char *name, int x, int out, enum act_kind act,
                  struct nn_init init) {
  return linear_node(g, OP_LINEAR_ACT, name, x, out, 1, act, init);
}

int nn_layernorm(struct graph *g, const char *name, int x) {
  const struct tensor *t = shape_of(g, x);
  int d = t->shape[t->ndim - 1], rows = (int)(t->numel / (size_t)d);
  struct node n = node_new(OP_LAYERNORM, -1);
  n.nin = 3;
  n.in[0] = x;
  n.in[1] = nn_param(g, name, "weight", 1, &d, INIT_ONES, 0, 0, 0);
  n.in[2] = nn_param(g, name, "bias", 1, &d, INIT_ZEROS, 0, 0, 0);
  n.saved[0] = saved(g, DT_F32, 1, &rows);
  n.saved[1] = saved(g, DT_F32, 1, &rows);
  n.out = act_like(g, x);
  n.p.ln.rows = rows;
  n.p.ln.d = d;
  n.p.ln.eps = 1e-5f;
  graph_node(g, &n);
  return n.out;
}

int nn_act(struct graph *g, int x, enum act_kind kind) {
  struct node n = node_new(OP_ACT, act_like(g, x));
  n.nin = 1;
  n.in[0] = x;
  n.p.act.kind = kind;
  graph_node(g, &n);
  return n.out;
}

int nn_sdpa(struct graph *g, int q, int k, int v, int heads, enum mask_kind mask, int mask_tensor,
            float scale, float dropout) {
  const struct tensor *tq = shape_of(g, q), *tk = shape_of(g, k), *tv = shape_of(g, v);
  CT_CHECK(tq->ndim == 3 && tk->ndim == 3 && tv->ndim == 3);
  int b = tq->shape[0], lq = tq->shape[1], lk = tk->shape[1], d = tq->shape[2];
  CT_CHECK(tk->shape[0] == b && tv->shape[0] == b && tv->shape[1] == lk);
  CT_CHECK(tk->shape[2] == d && tv->shape[2] == d && d % heads == 0);
  CT_CHECK((mask == MASK_GIVEN) == (mask_tensor >= 0));
  struct node n = node_new(OP_ATTENTION, act_like(g, q));
  n.nin = mask_tensor >= 0 ? 4 : 3;
  n.in[0] = q;
  n.in[1] = k;
  n.in[2] = v;
  n.in[3] = mask_tensor;
  int pshape[4] = {b, heads, lq, lk};
  n.saved[0] = saved(g, DT_F32, 4, pshape);
  if (dropout > 0) n.saved[1] = saved(g, DT_F32, 4, pshape);
  n.dropout = dropout;
  n.p.attn = (struct attn_shape){.b = b,
                                 .h = heads,
                                 .tq = lq,
                                 .tk = lk,
                                 .dh = d / heads,
                                 .ldq = d,
                                 .ldk = d,
                                 .ldv = d,
                                 .ldo = d,
                                 .scale = scale,
                                 .mask = mask,
                                 .given_mask = NULL};
  graph_node(g, &n);
  return n.out;
}

int nn_add(struct graph *g, int a, int b) {
  CT_CHECK(shape_of(g, a)->numel == shape_of(g, b)->numel);
  struct node n = node_new(OP_ADD, act_like(g, a));
  n.nin = 2;
  n.in[0] = a;
  n.in[1] = b;
  graph_node(g, &n);
  return n.out;
}

int nn_transpose(struct graph *g, int x) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 3);
  int b = t->shape[0], r = t->shape[1], c = t->shape[2];
  struct node n =
      node_new(OP_TRANSPOSE, graph_tensor(g, NULL, DT_F32, TK_ACT, 3, (int[]){b, c, r}));
  n.nin = 1;
  n.in[0] = x;
  n.p.tr.b = b;
  n.p.tr.r = r;
  n.p.tr.c = c;
  graph_node(g, &n);
  return n.out;
}

int nn_view(struct graph *g, int x, int ndim, const int *shape) {
  return graph_view(g, x, ndim, shape);
}

int nn_mean_tokens(struct graph *g, int x) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 3);
  int b = t->shape[0], tt = t->shape[1], d = t->shape[2];
  struct node n = node_new(OP_MEAN_MID, graph_tensor(g, NULL, DT_F32, TK_ACT, 2, (int[]){b, d}));
  n.nin = 1;
  n.in[0] = x;
  n.p.red.rows = b;
  n.p.red.cols = tt;
  n.p.red.d = d;
  graph_node(g, &n);
  return n.out;
}

int nn_dropout(struct graph *g, int x, float p) {
  if (p == 0.0f) return x;
  const struct tensor *t = shape_of(g, x);
  int ndim = t->ndim, shape[GRAPH_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  struct node n = node_new(OP_DROPOUT, act_like(g, x));
  n.nin = 1;
  n.in[0] = x;
  n.saved[0] = saved(g, DT_U8, ndim, shape);
  n.p.drop.p = p;
  graph_node(g, &n);
  return n.out;
}

int nn_embedding(struct graph *g, const char *name, int idx, int vocab, int d,
                 struct nn_init init) {
  const struct tensor *t = shape_of(g, idx);
  CT_CHECK(t->dtype == DT_I32 && t->ndim == 2);
  int b = t->shape[0], tt = t->shape[1];
  int w = nn_param(g, name, "weight", 2, (int[]){vocab, d}, init.kind, init.std, d, vocab);
  struct node n =
      node_new(OP_EMBEDDING, graph_tensor(g, NULL, DT_F32, TK_ACT, 3, (int[]){b, tt, d}));
  n.nin = 2;
  n.in[0] = idx;
  n.in[1] = w;
  graph_node(g, &n);
  return n.out;
}

int nn_posenc(struct graph *g, int x) {
  const struct tensor *t = shape_of(g, x);
  CT_CHECK(t->ndim == 3);
  struct node n = node_new(OP_POSENC, act_like(g, x));
  t = shape_of(g, x);
  n.nin = 1;
  n.in[0] = x;
  n.p.red.rows = t->shape[0];
  n.p.red.cols = t->shape[1];
  n.p.red.d = t->shape[2];
  graph_node(g, &n);
  return n.out;
}

int nn_cross_entropy(struct graph *g, int logits, int labels, int ignore_index, float smoothing,
                     float divisor) {
  const struct tensor *t = shape_of(g, logits), *l = shape_of(g, labels);
  CT_CHECK(t->ndim == 2 && l->dtype == DT_I32 && l->numel == (size_t)t->shape[0]);
  int nrows = t->shape[0], classes = t->shape[1];
  struct node n = node_new(OP_CROSS_ENTROPY, graph_tensor(g, NULL, DT_F32, TK_ACT, 1, (int[]){1}));
  n.nin = 2;
  n.in[0] = logits;
  n.in[1] = labels;
  n.saved[0] = saved(g, DT_F32, 2, (int[]){nrows, classes});
  n.saved[1] = saved(g, DT_I32, 1, (int[]){1}); /* rows counted */
  n.p.ce.n = nrows;
  n.p.ce.classes = classes;
  n.p.ce.ignore_index = ignore_index;
  n.p.ce.smoothing = smoothing;
  n.p.ce.divisor = divisor;
  graph_node(g, &n);
  return n.out;
}
