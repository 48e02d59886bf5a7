/* graph.c — building, planning and running the static graph. */
#include "graph/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_shared.h"

#define ARENA_ALIGN 64

size_t dtype_size(enum dtype dt) {
  switch (dt) {
  case DT_F32:
  case DT_I32:
    return 4;
  case DT_I64:
    return 8;
  case DT_U8:
    return 1;
  }
  return 0;
}

/* The tables grow while layer calls, which return tensor ids and not
 * errors, build a model; they are kilobytes (graph_plan reports the
 * planned memory, which can be large, as an error). */
static void *grow(void *p, size_t bytes, const char *what) {
  void *q = realloc(p, bytes);
  if (!q) ct_out_of_memory(what, bytes);
  return q;
}

int backend_host_memory(const struct ops_backend *o) { return strcmp(o->name, "cpu") == 0; }

int host_view_init(struct host_view *v, const struct ops_backend *ops, void *dev, size_t bytes,
                   struct ct_err *e) {
  *v = (struct host_view){ops, dev, dev, bytes};
  if (backend_host_memory(ops)) return CT_OK;
  v->host = malloc(bytes ? bytes : 1);
  if (!v->host)
    return err_set(e, CT_ERR_RUNTIME, "out of memory for a %zu-byte host copy of %s memory", bytes,
                   ops->name);
  return CT_OK;
}

void host_view_pull(const struct host_view *v, size_t off, size_t bytes) {
  CT_CHECK(off + bytes <= v->bytes);
  if (v->host != v->dev && bytes)
    v->ops->download(v->ops, (char *)v->host + off, (const char *)v->dev + off, bytes);
}

void host_view_push(const struct host_view *v, size_t off, size_t bytes) {
  CT_CHECK(off + bytes <= v->bytes);
  if (v->host != v->dev && bytes)
    v->ops->upload(v->ops, (char *)v->dev + off, (const char *)v->host + off, bytes);
}

void host_view_free(struct host_view *v) {
  if (v->host != v->dev) free(v->host);
  memset(v, 0, sizeof *v);
}

void graph_init(struct graph *g, const struct ops_backend *ops, int threads, uint64_t seed) {
  memset(g, 0, sizeof *g);
  g->ops = ops;
  g->ctx.state = ops->state;
  g->ctx.threads = threads > 0 ? threads : 1;
  g->loss = -1;
  g->logits = -1;
  g->seed = seed;
}

void graph_free(struct graph *g) {
  free(g->tensors);
  free(g->nodes);
  if (g->ops) { /* planned memory is the backend's */
    g->ops->release(g->ops, g->params);
    g->ops->release(g->ops, g->grads);
    g->ops->release(g->ops, g->buffers);
    g->ops->release(g->ops, g->arena);
  }
  host_view_free(&g->buffers_view);
  free(g->ready_prefix);
  memset(g, 0, sizeof *g);
}

int graph_tensor(struct graph *g, const char *name, enum dtype dt, enum tensor_kind kind, int ndim,
                 const int *shape) {
  CT_CHECK(ndim >= 0 && ndim <= GRAPH_MAX_DIMS);
  if (g->ntensors == g->tensors_cap) {
    g->tensors_cap = g->tensors_cap ? 2 * g->tensors_cap : 64;
    g->tensors = grow(g->tensors, g->tensors_cap * sizeof *g->tensors, "the graph's tensor table");
  }
  struct tensor *t = &g->tensors[g->ntensors];
  memset(t, 0, sizeof *t);
  if (name) {
    /* state_dict names: a second layer under a taken name would overwrite
     * the first one's dataset in every checkpoint */
    CT_CHECK(strlen(name) < GRAPH_NAME_LEN && graph_find(g, name) < 0);
    strcpy(t->name, name);
  }
  t->dtype = dt;
  t->kind = kind;
  t->ndim = ndim;
  t->numel = 1;
  for (int i = 0; i < ndim; i++) {
    CT_CHECK(shape[i] > 0);
    t->shape[i] = shape[i];
    t->numel *= (size_t)shape[i];
  }
  t->needs_grad = kind == TK_PARAM;
  t->view_of = -1;
  return g->ntensors++;
}

int graph_view(struct graph *g, int of, int ndim, const int *shape) {
  int id = graph_tensor(g, NULL, g->tensors[of].dtype, g->tensors[of].kind, ndim, shape);
  CT_CHECK(g->tensors[id].numel == g->tensors[of].numel);
  while (g->tensors[of].view_of >= 0)
    of = g->tensors[of].view_of;
  g->tensors[id].view_of = of;
  g->tensors[id].needs_grad = g->tensors[of].needs_grad;
  return id;
}

int graph_node(struct graph *g, const struct node *n) {
  if (g->nnodes == g->nodes_cap) {
    g->nodes_cap = g->nodes_cap ? 2 * g->nodes_cap : 64;
    g->nodes = grow(g->nodes, g->nodes_cap * sizeof *g->nodes, "the graph's node table");
  }
  int needs = 0;
  for (int i = 0; i < n->nin; i++)
    if (n->in[i] >= 0) needs |= g->tensors[n->in[i]].needs_grad;
  g->tensors[n->out].needs_grad = needs;
  g->nodes[g->nnodes] = *n;
  return g->nnodes++;
}

int graph_find(const struct graph *g, const char *name) {
  for (int i = 0; i < g->ntensors; i++)
    if (g->tensors[i].name[0] && strcmp(g->tensors[i].name, name) == 0) return i;
  return -1;
}

/* A normal draw from the counter stream (Box-Muller on two uniforms). */
static float init_normal(uint64_t key, uint64_t i) {
  double u1 = (ops_rng_bits(key, 1, 2 * i) >> 11) * (1.0 / 9007199254740992.0);
  double u2 = (ops_rng_bits(key, 1, 2 * i + 1) >> 11) * (1.0 / 9007199254740992.0);
  return (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2));
}

/* Fills t's initial values in the host buffer d (numel floats) and uploads
 * them to the backend's memory. */
static void init_tensor(const struct ops_backend *o, const struct tensor *t, uint64_t key,
                        float *d) {
  double std = 0, bound = 0;
  size_t bytes = t->numel * sizeof(float); /* every fill but zeros is float */
  switch (t->init) {
  case INIT_NONE:
    return;
  case INIT_ZEROS:
    o->memset0(o, t->data, t->numel * dtype_size(t->dtype));
    return;
  case INIT_ONES:
    for (size_t i = 0; i < t->numel; i++)
      d[i] = 1.0f;
    o->upload(o, t->data, d, bytes);
    return;
  case INIT_KAIMING_NORMAL:
    std = sqrt(2.0) / sqrt((double)t->fan_in);
    break;
  case INIT_XAVIER_NORMAL:
    std = sqrt(2.0 / (double)(t->fan_in + t->fan_out));
    break;
  case INIT_NORMAL:
    std = t->init_std;
    break;
  case INIT_KAIMING_UNIFORM:
    bound = 1.0 / sqrt((double)t->fan_in);
    for (size_t i = 0; i < t->numel; i++)
      d[i] = (float)((2.0 * ops_rng_uniform(key, 2, i) - 1.0) * bound);
    o->upload(o, t->data, d, bytes);
    return;
  }
  for (size_t i = 0; i < t->numel; i++)
    d[i] = (float)(std * init_normal(key, i));
  o->upload(o, t->data, d, bytes);
}

#define T(id) (g->tensors[(id)])
#define F(id) ((float *)g->tensors[(id)].data)
#define I32(id) ((int32_t *)g->tensors[(id)].data)
/* gradient of input slot i, or NULL when that input needs none */
#define DIN(n, i) ((n)->in[(i)] >= 0 && T((n)->in[(i)]).needs_grad ? T((n)->in[(i)]).grad : NULL)
#define OPT(n, i) ((n)->nin > (i) && (n)->in[(i)] >= 0 ? F((n)->in[(i)]) : NULL)

static size_t align_up(size_t x) { return (x + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

/* Each parameter (and its gradient) starts on a 256-byte boundary of the
 * flat buffers, as cuBLAS's fastest kernels want their operands; the
 * floats between stay 0 (zero gradients leave them 0 under every
 * optimizer, and add nothing to a norm or an all-reduce). */
#define PARAM_ALIGN_FLOATS 64
static size_t param_align(size_t off) {
  return (off + PARAM_ALIGN_FLOATS - 1) / PARAM_ALIGN_FLOATS * PARAM_ALIGN_FLOATS;
}

static size_t node_scratch(const struct graph *g, const struct node *n) {
  if (n->op == OP_CONV2D) return g->ops->conv2d_scratch(&n->p.conv, g->ctx.threads);
  if (n->op == OP_ATTENTION) return g->ops->attention_scratch(&n->p.attn, g->ctx.threads);
  /* sync BatchNorm: 4c + 1 doubles of per-channel sums (kernels/cpu/batchnorm.c) */
  if (n->op == OP_BATCHNORM2D) return 2 * (4 * (size_t)n->p.bn.c + 1);
  return 0;
}

int graph_plan(struct graph *g, struct ct_err *e) {
  /* Parameters: reverse creation order, so the gradients of the last layers
   * (ready first in backward) sit at the front of the flat buffer. */
  size_t plen = 0, count = 0, bbytes = 0, abytes = 0, gbytes = 0, scratch = 0;
  for (int i = g->ntensors - 1; i >= 0; i--)
    if (g->tensors[i].kind == TK_PARAM) {
      plen = param_align(plen) + g->tensors[i].numel;
      count += g->tensors[i].numel;
    }
  for (int i = 0; i < g->ntensors; i++) {
    const struct tensor *t = &g->tensors[i];
    if (t->view_of >= 0) continue;
    size_t bytes = align_up(t->numel * dtype_size(t->dtype));
    if (t->kind == TK_BUFFER) bbytes += bytes;
    if (t->kind == TK_ACT || t->kind == TK_INPUT || t->kind == TK_SAVED || t->kind == TK_CONST)
      abytes += bytes;
    if (t->needs_grad && t->kind != TK_PARAM) gbytes += align_up(t->numel * sizeof(float));
  }
  for (int i = 0; i < g->nnodes; i++) {
    size_t s = node_scratch(g, &g->nodes[i]);
    if (s > scratch) scratch = s;
  }
  g->params_len = plen;
  g->params_count = count;
  const struct ops_backend *o = g->ops; /* host or device memory, 64-byte aligned or more */
  g->params = o->alloc(o, (plen ? plen : 1) * sizeof(float));
  g->grads = o->alloc(o, (plen ? plen : 1) * sizeof(float));
  g->buffers_bytes = bbytes;
  g->buffers = o->alloc(o, bbytes ? bbytes : 1);
  g->act_grad_offset = abytes;
  g->act_grad_bytes = gbytes;
  g->arena_bytes = abytes + gbytes + align_up(scratch * sizeof(float));
  g->arena = o->alloc(o, g->arena_bytes ? g->arena_bytes : ARENA_ALIGN);
  if (!g->params || !g->grads || !g->buffers || !g->arena)
    return err_set(e, CT_ERR_RUNTIME,
                   "out of %s memory planning the graph (%zu MiB of activations)", o->name,
                   g->arena_bytes >> 20);
  if (host_view_init(&g->buffers_view, o, g->buffers, bbytes, e)) return e->code;
  o->memset0(o, g->params, (plen ? plen : 1) * sizeof(float));
  o->memset0(o, g->grads, (plen ? plen : 1) * sizeof(float));
  o->memset0(o, g->buffers, bbytes ? bbytes : 1);
  o->memset0(o, g->arena, g->arena_bytes);

  size_t poff = 0, boff = 0, aoff = 0, goff = abytes;
  char *arena = g->arena, *buffers = g->buffers;
  for (int i = g->ntensors - 1; i >= 0; i--) {
    struct tensor *t = &g->tensors[i];
    if (t->kind != TK_PARAM) continue;
    poff = param_align(poff);
    t->data = g->params + poff;
    t->grad = g->grads + poff;
    poff += t->numel;
  }
  for (int i = 0; i < g->ntensors; i++) {
    struct tensor *t = &g->tensors[i];
    if (t->view_of >= 0 || t->kind == TK_PARAM) continue;
    size_t bytes = align_up(t->numel * dtype_size(t->dtype));
    if (t->kind == TK_BUFFER) {
      t->data = buffers + boff;
      boff += bytes;
    } else {
      t->data = arena + aoff;
      aoff += bytes;
    }
    if (t->needs_grad) {
      t->grad = (float *)(arena + goff);
      goff += align_up(t->numel * sizeof(float));
    }
  }
  for (int i = 0; i < g->ntensors; i++) {
    struct tensor *t = &g->tensors[i];
    if (t->view_of < 0) continue;
    t->data = g->tensors[t->view_of].data;
    t->grad = g->tensors[t->view_of].grad;
  }
  g->scratch = (float *)(arena + abytes + gbytes);
  g->ctx.scratch = g->scratch;
  g->ctx.scratch_len = scratch;

  for (int i = 0; i < g->nnodes; i++) {
    struct node *n = &g->nodes[i];
    if (n->op == OP_ATTENTION && n->nin > 3) n->p.attn.given_mask = F(n->in[3]);
  }
  /* Initial values are drawn on the host, one tensor at a time, and uploaded. */
  size_t stage = 1;
  for (int i = 0; i < g->ntensors; i++)
    if (g->tensors[i].init != INIT_NONE && g->tensors[i].numel > stage) stage = g->tensors[i].numel;
  float *host = malloc(stage * sizeof *host);
  if (!host) return err_set(e, CT_ERR_RUNTIME, "out of memory initialising parameters");
  for (int i = 0; i < g->ntensors; i++)
    init_tensor(o, &g->tensors[i], ops_mix64(g->seed * 0x2545f4914f6cdd1dULL + (uint64_t)i), host);
  free(host);
  return CT_OK;
}

static struct rng_stream node_rng(const struct graph *g, int node_index) {
  struct rng_stream r = {ops_mix64(g->seed ^ (0x51ed2701ULL * (uint64_t)(node_index + 1))),
                         g->step_counter};
  return r;
}

void graph_node_forward(struct graph *g, int idx) {
  struct node *n = &g->nodes[idx];
  const struct ops_backend *o = g->ops;
  const struct ops_ctx *c = &g->ctx;
  float *y = F(n->out);
  switch (n->op) {
  case OP_CONV2D:
    o->conv2d_fwd(c, &n->p.conv, F(n->in[0]), F(n->in[1]), OPT(n, 2), y);
    break;
  case OP_BATCHNORM2D: {
    /* in: x, gamma, beta, running_mean, running_var, num_batches_tracked */
    o->batchnorm2d_fwd(c, n->p.bn.n, n->p.bn.c, n->p.bn.hw, F(n->in[0]), F(n->in[1]), F(n->in[2]),
                       F(n->in[3]), F(n->in[4]), (int64_t *)T(n->in[5]).data, n->p.bn.momentum,
                       n->p.bn.eps, g->training, y, F(n->saved[0]), F(n->saved[1]));
    break;
  }
  case OP_MAXPOOL2D:
    o->maxpool2d_fwd(c, n->p.pool.n, n->p.pool.c, n->p.pool.h, n->p.pool.w, n->p.pool.k,
                     n->p.pool.s, F(n->in[0]), y, g->training ? I32(n->saved[0]) : NULL);
    break;
  case OP_MEAN_LAST:
    o->mean_last_fwd(c, n->p.red.rows, n->p.red.cols, F(n->in[0]), y);
    break;
  case OP_MEAN_MID:
    o->mean_mid_fwd(c, n->p.red.rows, n->p.red.cols, n->p.red.d, F(n->in[0]), y);
    break;
  case OP_LINEAR:
    o->linear_fwd(c, n->p.lin.m, n->p.lin.k, n->p.lin.n, F(n->in[0]), F(n->in[1]), OPT(n, 2), y);
    break;
  case OP_LINEAR_ACT:
    o->linear_act_fwd(c, n->p.lin.act, n->p.lin.m, n->p.lin.k, n->p.lin.n, F(n->in[0]), F(n->in[1]),
                      OPT(n, 2), F(n->saved[0]), y);
    break;
  case OP_LAYERNORM:
    o->layernorm_fwd(c, n->p.ln.rows, n->p.ln.d, F(n->in[0]), F(n->in[1]), F(n->in[2]), n->p.ln.eps,
                     y, F(n->saved[0]), F(n->saved[1]));
    break;
  case OP_ACT:
    o->act_fwd(c, n->p.act.kind, T(n->out).numel, F(n->in[0]), y);
    break;
  case OP_ATTENTION: {
    float p = g->training ? n->dropout : 0.0f;
    o->attention_fwd(c, &n->p.attn, F(n->in[0]), F(n->in[1]), F(n->in[2]), p, node_rng(g, idx),
                     F(n->saved[0]), p > 0 ? F(n->saved[1]) : NULL, y);
    break;
  }
  case OP_EMBEDDING:
    o->embedding_fwd(c, (int)T(n->in[0]).numel, T(n->in[1]).shape[1], I32(n->in[0]), F(n->in[1]),
                     y);
    break;
  case OP_POSENC:
    o->posenc_fwd(c, n->p.red.rows, n->p.red.cols, n->p.red.d, F(n->in[0]), y);
    break;
  case OP_DROPOUT:
    o->dropout_fwd(c, T(n->out).numel, g->training ? n->p.drop.p : 0.0f, node_rng(g, idx),
                   F(n->in[0]), y, (uint8_t *)T(n->saved[0]).data);
    break;
  case OP_ADD:
    o->add_fwd(c, T(n->out).numel, F(n->in[0]), F(n->in[1]), y);
    break;
  case OP_TRANSPOSE:
    o->transpose_fwd(c, n->p.tr.b, n->p.tr.r, n->p.tr.c, F(n->in[0]), y);
    break;
  case OP_PATCH:
    o->patch_fwd(c, n->p.img.n, n->p.img.c, n->p.img.h, n->p.img.w, n->p.img.size, F(n->in[0]), y);
    break;
  case OP_PAD2D:
    o->pad2d_fwd(c, n->p.img.n, n->p.img.c, n->p.img.h, n->p.img.w, n->p.img.size, F(n->in[0]), y);
    break;
  case OP_CROSS_ENTROPY:
    o->cross_entropy_fwd(c, n->p.ce.n, n->p.ce.classes, F(n->in[0]), I32(n->in[1]),
                         n->p.ce.ignore_index, n->p.ce.smoothing, n->p.ce.divisor, F(n->saved[0]),
                         y, I32(n->saved[1]));
    break;
  }
}

/* d loss / d (n's scalar output) in backend memory; NULL (1) for the loss
 * itself, so backward needs no seed written from the host. */
static const float *scalar_grad(const struct graph *g, const struct node *n) {
  return n->out == g->loss ? NULL : T(n->out).grad;
}

void graph_node_backward(struct graph *g, int idx) {
  struct node *n = &g->nodes[idx];
  const struct ops_backend *o = g->ops;
  const struct ops_ctx *c = &g->ctx;
  const float *dy = T(n->out).grad;
  switch (n->op) {
  case OP_CONV2D:
    o->conv2d_bwd(c, &n->p.conv, dy, F(n->in[0]), F(n->in[1]), DIN(n, 0), DIN(n, 1),
                  n->nin > 2 ? DIN(n, 2) : NULL);
    break;
  case OP_BATCHNORM2D:
    o->batchnorm2d_bwd(c, n->p.bn.n, n->p.bn.c, n->p.bn.hw, dy, F(n->in[0]), F(n->in[1]),
                       F(n->saved[0]), F(n->saved[1]), DIN(n, 0), DIN(n, 1), DIN(n, 2));
    break;
  case OP_MAXPOOL2D:
    if (DIN(n, 0))
      o->maxpool2d_bwd(c, n->p.pool.n, n->p.pool.c, n->p.pool.h, n->p.pool.w, n->p.pool.k,
                       n->p.pool.s, dy, I32(n->saved[0]), DIN(n, 0));
    break;
  case OP_MEAN_LAST:
    if (DIN(n, 0)) o->mean_last_bwd(c, n->p.red.rows, n->p.red.cols, dy, DIN(n, 0));
    break;
  case OP_MEAN_MID:
    if (DIN(n, 0)) o->mean_mid_bwd(c, n->p.red.rows, n->p.red.cols, n->p.red.d, dy, DIN(n, 0));
    break;
  case OP_LINEAR:
    o->linear_bwd(c, n->p.lin.m, n->p.lin.k, n->p.lin.n, dy, F(n->in[0]), F(n->in[1]), DIN(n, 0),
                  DIN(n, 1), n->nin > 2 ? DIN(n, 2) : NULL);
    break;
  case OP_LINEAR_ACT:
    o->linear_act_bwd(c, n->p.lin.act, n->p.lin.m, n->p.lin.k, n->p.lin.n, dy, F(n->in[0]),
                      F(n->in[1]), F(n->saved[0]), F(n->saved[1]), DIN(n, 0), DIN(n, 1),
                      n->nin > 2 ? DIN(n, 2) : NULL);
    break;
  case OP_LAYERNORM:
    o->layernorm_bwd(c, n->p.ln.rows, n->p.ln.d, dy, F(n->in[0]), F(n->in[1]), F(n->saved[0]),
                     F(n->saved[1]), DIN(n, 0), DIN(n, 1), DIN(n, 2));
    break;
  case OP_ACT:
    if (DIN(n, 0)) o->act_bwd(c, n->p.act.kind, T(n->out).numel, F(n->in[0]), dy, DIN(n, 0));
    break;
  case OP_ATTENTION:
    o->attention_bwd(c, &n->p.attn, dy, F(n->in[0]), F(n->in[1]), F(n->in[2]), F(n->saved[0]),
                     n->dropout > 0 ? F(n->saved[1]) : NULL, DIN(n, 0), DIN(n, 1), DIN(n, 2));
    break;
  case OP_EMBEDDING:
    if (DIN(n, 1))
      o->embedding_bwd(c, (int)T(n->in[0]).numel, T(n->in[1]).shape[1], I32(n->in[0]), dy,
                       DIN(n, 1));
    break;
  case OP_POSENC:
    if (DIN(n, 0)) o->axpy(c, T(n->out).numel, 1.0f, dy, DIN(n, 0));
    break;
  case OP_DROPOUT:
    if (DIN(n, 0))
      o->dropout_bwd(c, T(n->out).numel, n->p.drop.p, dy, (const uint8_t *)T(n->saved[0]).data,
                     DIN(n, 0));
    break;
  case OP_ADD:
    for (int i = 0; i < 2; i++)
      if (DIN(n, i)) o->axpy(c, T(n->out).numel, 1.0f, dy, DIN(n, i));
    break;
  case OP_TRANSPOSE:
    if (DIN(n, 0)) o->transpose_bwd(c, n->p.tr.b, n->p.tr.r, n->p.tr.c, dy, DIN(n, 0));
    break;
  case OP_PATCH:
    if (DIN(n, 0))
      o->patch_bwd(c, n->p.img.n, n->p.img.c, n->p.img.h, n->p.img.w, n->p.img.size, dy, DIN(n, 0));
    break;
  case OP_PAD2D:
    if (DIN(n, 0))
      o->pad2d_bwd(c, n->p.img.n, n->p.img.c, n->p.img.h, n->p.img.w, n->p.img.size, dy, DIN(n, 0));
    break;
  case OP_CROSS_ENTROPY:
    if (DIN(n, 0))
      o->cross_entropy_bwd(c, n->p.ce.n, n->p.ce.classes, F(n->saved[0]), I32(n->in[1]),
                           n->p.ce.ignore_index, n->p.ce.smoothing, n->p.ce.divisor,
                           I32(n->saved[1]), scalar_grad(g, n), DIN(n, 0));
    break;
  }
}

void graph_forward(struct graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    graph_node_forward(g, i);
}

int graph_set_grads_hook(struct graph *g, void (*fn)(void *user, size_t prefix), void *user,
                         struct ct_err *e) {
  int *first_use = malloc((size_t)(g->ntensors ? g->ntensors : 1) * sizeof *first_use);
  size_t *ready = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *ready);
  if (!first_use || !ready) {
    free(first_use);
    free(ready);
    return err_set(e, CT_ERR_RUNTIME, "out of memory for the gradient hook");
  }
  /* A parameter's gradient is final once the lowest-numbered node using it
   * (directly or through a view) has run backward. */
  for (int t = 0; t < g->ntensors; t++)
    first_use[t] = g->nnodes;
  for (int i = g->nnodes - 1; i >= 0; i--)
    for (int k = 0; k < g->nodes[i].nin; k++) {
      int t = g->nodes[i].in[k];
      if (t < 0) continue;
      if (g->tensors[t].view_of >= 0) t = g->tensors[t].view_of;
      first_use[t] = i;
    }
  /* Parameters sit in the flat buffer in reverse creation order (graph_plan). */
  for (int i = 0; i < g->nnodes; i++) {
    size_t prefix = 0;
    for (int t = g->ntensors - 1; t >= 0; t--) {
      const struct tensor *p = &g->tensors[t];
      if (p->kind != TK_PARAM || p->view_of >= 0) continue;
      if (first_use[t] < i) break;
      prefix = (size_t)((const float *)p->data - g->params) + p->numel;
    }
    ready[i] = prefix;
  }
  free(first_use);
  free(g->ready_prefix);
  g->ready_prefix = ready;
  g->grads_ready = fn;
  g->grads_user = user;
  return CT_OK;
}

int graph_draws(const struct graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const struct node *n = &g->nodes[i];
    if ((n->op == OP_DROPOUT && n->p.drop.p > 0.0f) || (n->op == OP_ATTENTION && n->dropout > 0.0f))
      return 1;
  }
  return 0;
}

void graph_zero_grads(struct graph *g) {
  g->ops->memset0(g->ops, g->grads, g->params_len * sizeof(float));
  g->ops->memset0(g->ops, (char *)g->arena + g->act_grad_offset, g->act_grad_bytes);
}

void graph_backward(struct graph *g) {
  CT_CHECK(g->loss >= 0 && g->training);
  graph_zero_grads(g);
  size_t reported = 0;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    if (g->tensors[g->nodes[i].out].needs_grad) graph_node_backward(g, i);
    if (g->grads_ready && g->ready_prefix[i] > reported)
      g->grads_ready(g->grads_user, reported = g->ready_prefix[i]);
  }
  if (g->grads_ready && reported < g->params_len) g->grads_ready(g->grads_user, g->params_len);
}

const char *graph_op_name(enum node_op op) {
  switch (op) {
  case OP_CONV2D:
    return "conv2d";
  case OP_BATCHNORM2D:
    return "batchnorm2d";
  case OP_MAXPOOL2D:
    return "maxpool2d";
  case OP_MEAN_LAST:
    return "mean_last";
  case OP_MEAN_MID:
    return "mean_mid";
  case OP_LINEAR:
    return "linear";
  case OP_LINEAR_ACT:
    return "linear_act";
  case OP_LAYERNORM:
    return "layernorm";
  case OP_ACT:
    return "act";
  case OP_ATTENTION:
    return "attention";
  case OP_EMBEDDING:
    return "embedding";
  case OP_POSENC:
    return "posenc";
  case OP_DROPOUT:
    return "dropout";
  case OP_ADD:
    return "add";
  case OP_TRANSPOSE:
    return "transpose";
  case OP_PATCH:
    return "patch";
  case OP_PAD2D:
    return "pad2d";
  case OP_CROSS_ENTROPY:
    return "cross_entropy";
  }
  return "?";
}
