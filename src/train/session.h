/* session.h — a model graph ready to run: built from the model name and the
 * data's shape, planned on a backend, with host views (graph.h) of its input
 * and output tensors: the loader writes the batch into x and y, the metrics
 * read logits and loss. On the cpu backend the views are the tensors
 * themselves and nothing is copied. */
#ifndef CTRAIN_SESSION_H
#define CTRAIN_SESSION_H

#include "ckpt/ckpt.h"
#include "comm/comm.h"
#include "config/config.h"
#include "data/loader.h"
#include "graph/graph.h"
#include "models/models.h"

struct session {
  struct graph g;
  struct model_io io;
  struct model_spec spec;
  struct host_view x, y, logits, loss;
  struct host_view tokens; /* captioning: the caption tokens (io.tokens); else empty */
  int loss_node;           /* the cross-entropy node that makes the loss */
};

/* What the verbs that start from a checkpoint (eval, sample, attention)
 * read first: its metadata and the configuration it was trained with
 * (defaults, then the saved config). Free with free(). */
struct session_ckpt {
  struct ckpt_meta meta;
  struct config cfg;
};
int session_ckpt_read(const char *path, struct session_ckpt **out, struct ct_err *e);

int session_build(struct session *s, const struct ops_backend *ops, const struct model_spec *spec,
                  int threads, uint64_t seed, struct ct_err *e);
void session_free(struct session *s);
/* session_build, then the parameters and buffers of checkpoint `path`; on
 * failure s holds nothing. */
int session_load(struct session *s, const struct ops_backend *ops, const struct model_spec *spec,
                 int threads, uint64_t seed, const char *path, struct ct_err *e);

/* The batch in the host views x, y (and tokens), to the graph's input tensors. */
void session_upload_batch(const struct session *s);
/* After a training forward: adds weight * loss, the correct and the counted
 * predictions to acc (3 doubles of backend memory), with no host
 * synchronisation (ops->score). */
void session_score(const struct session *s, float weight, double *acc);
/* The last forward's loss and logits (batch, classes), read back to the host. */
float session_loss(const struct session *s);
const float *session_logits(const struct session *s);

/* Threads for this rank: `requested`, or the node's cores shared among the
 * ranks on the node. */
int session_threads(int requested, const struct comm *c);

enum { EVAL_MAX_CLASSES = 16 };

struct eval_result {
  double loss;                                         /* mean over images */
  double acc;                                          /* fraction correct */
  long total;                                          /* images */
  long confusion[EVAL_MAX_CLASSES * EVAL_MAX_CLASSES]; /* [true * K + predicted] */
};

/* One pass over the loader's epoch in eval mode; sums are reduced across
 * ranks, so every rank gets the global result. */
int session_evaluate(struct session *s, struct loader *l, const struct comm *c,
                     struct eval_result *r, struct ct_err *e);

#endif
