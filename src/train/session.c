/* session.c — building a model graph and evaluating it. */
#include "train/session.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int view(struct session *s, struct host_view *v, int id, struct ct_err *e) {
  const struct tensor *t = &s->g.tensors[id];
  return host_view_init(v, s->g.ops, t->data, t->numel * dtype_size(t->dtype), e);
}

int session_build(struct session *s, const struct ops_backend *ops, const struct model_spec *spec,
                  int threads, uint64_t seed, struct ct_err *e) {
  memset(s, 0, sizeof *s);
  s->spec = *spec;
  graph_init(&s->g, ops, threads, seed);
  if (model_build(&s->g, spec, &s->io, e) || graph_plan(&s->g, e) ||
      view(s, &s->x, s->io.input, e) || view(s, &s->y, s->io.labels, e) ||
      view(s, &s->logits, s->io.logits, e) || view(s, &s->loss, s->io.loss, e) ||
      (s->io.tokens >= 0 && view(s, &s->tokens, s->io.tokens, e))) {
    session_free(s);
    return e->code;
  }
  s->loss_node = -1;
  for (int i = 0; i < s->g.nnodes; i++)
    if (s->g.nodes[i].out == s->g.loss) s->loss_node = i;
  /* Every model ends in a cross-entropy (models.h). */
  CT_CHECK(s->loss_node >= 0 && s->g.nodes[s->loss_node].op == OP_CROSS_ENTROPY);
  return CT_OK;
}

void session_score(const struct session *s, float weight, double *acc) {
  const struct graph *g = &s->g;
  const struct node *ce = &g->nodes[s->loss_node];
  g->ops->score(&g->ctx, ce->p.ce.n, ce->p.ce.classes, (const float *)g->tensors[ce->in[0]].data,
                (const int32_t *)g->tensors[ce->in[1]].data, ce->p.ce.ignore_index,
                (const float *)g->tensors[g->loss].data, weight, acc);
}

int session_ckpt_read(const char *path, struct session_ckpt **out, struct ct_err *e) {
  struct session_ckpt *k = calloc(1, sizeof *k);
  *out = NULL;
  if (!k) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  config_defaults(&k->cfg);
  if (ckpt_read_meta(path, &k->meta, e) || config_load_string(&k->cfg, k->meta.config, path, e)) {
    free(k);
    return e->code;
  }
  *out = k;
  return CT_OK;
}

int session_load(struct session *s, const struct ops_backend *ops, const struct model_spec *spec,
                 int threads, uint64_t seed, const char *path, struct ct_err *e) {
  if (session_build(s, ops, spec, threads, seed, e)) return e->code;
  if (ckpt_load(path, &s->g, NULL, e)) {
    session_free(s);
    memset(s, 0, sizeof *s);
    return e->code;
  }
  return CT_OK;
}

void session_free(struct session *s) {
  host_view_free(&s->x);
  host_view_free(&s->y);
  host_view_free(&s->logits);
  host_view_free(&s->loss);
  host_view_free(&s->tokens);
  graph_free(&s->g);
}

void session_upload_batch(const struct session *s) {
  host_view_push(&s->x, 0, s->x.bytes);
  host_view_push(&s->y, 0, s->y.bytes);
  if (s->tokens.bytes) host_view_push(&s->tokens, 0, s->tokens.bytes);
}

float session_loss(const struct session *s) {
  host_view_pull(&s->loss, 0, sizeof(float));
  return *(const float *)s->loss.host;
}

const float *session_logits(const struct session *s) {
  host_view_pull(&s->logits, 0, s->logits.bytes);
  return s->logits.host;
}

int session_threads(int requested, const struct comm *c) {
  if (requested > 0) return requested;
  int t = omp_get_num_procs() / (c->local_size > 0 ? c->local_size : 1);
  return t > 0 ? t : 1;
}

int session_evaluate(struct session *s, struct loader *l, const struct comm *c,
                     struct eval_result *r, struct ct_err *e) {
  struct graph *g = &s->g;
  const int k = s->spec.num_classes, b = s->spec.batch;
  float *x = s->x.host;
  int32_t *y = s->y.host;
  /* sums[0] loss * rows, sums[1] correct, sums[2] rows, then the confusion matrix */
  double sums[3 + EVAL_MAX_CLASSES * EVAL_MAX_CLASSES];
  memset(sums, 0, sizeof sums);
  memset(r, 0, sizeof *r);
  g->training = 0;
  if (loader_begin_epoch(l, 0, 0, e)) return e->code;
  int rows;
  while ((rows = loader_next(l, x, y)) > 0) {
    session_upload_batch(s);
    graph_forward(g);
    const float *logits = session_logits(s);
    double counted = 0; /* rows with a label: the loss is their mean */
    for (int i = 0; i < b && i < rows; i++) {
      if (y[i] < 0) continue;
      const float *row = logits + (size_t)i * k;
      int best = 0;
      for (int j = 1; j < k; j++)
        if (row[j] > row[best]) best = j;
      sums[1] += best == y[i];
      sums[3 + y[i] * k + best] += 1;
      counted += 1;
    }
    sums[0] += (double)session_loss(s) * counted;
    sums[2] += counted;
  }
  if (comm_allreduce_sum_f64(c, sums, 3 + k * k, e)) return e->code;
  r->total = (long)sums[2];
  r->loss = r->total ? sums[0] / sums[2] : 0.0;
  r->acc = r->total ? sums[1] / sums[2] : 0.0;
  for (int i = 0; i < k * k; i++)
    r->confusion[i] = (long)sums[3 + i];
  return CT_OK;
}
