/* optim.h — Adam, AdamW and SGD as one fused update over the flat
 * parameter buffer (torch.optim semantics). */
#ifndef CTRAIN_OPTIM_H
#define CTRAIN_OPTIM_H

#include <stddef.h>

#include "core/error.h"
#include "kernels/ops.h"

enum optim_kind { OPTIM_ADAM, OPTIM_ADAMW, OPTIM_SGD };

struct optimizer {
  enum optim_kind kind;
  const struct ops_backend *ops; /* m and v are in its memory */
  size_t n;
  float *m, *v; /* Adam moments, or m = SGD momentum buffer; flat like params */
  float *hyper; /* the step's scalars (ops.h's adam_step), in its memory */
  long step;    /* optimizer steps taken */
  double beta2, eps, weight_decay, momentum;
};

/* kind: "adam", "adamw" or "sgd"; the state is zeroed memory of `ops`. */
int optim_init(struct optimizer *o, const struct ops_backend *ops, const char *kind, size_t n,
               double beta2, double eps, double weight_decay, double momentum, struct ct_err *e);
/* A step is two halves: optim_prepare counts it and uploads its scalars
 * (outside a CUDA Graph), optim_apply issues the update (which a graph may
 * capture and replay). optim_step is both. */
void optim_prepare(struct optimizer *o, double lr, double beta1);
void optim_apply(const struct optimizer *o, const struct ops_ctx *ctx, float *params,
                 const float *grads);
void optim_step(struct optimizer *o, const struct ops_ctx *ctx, float *params, const float *grads,
                double lr, double beta1);
void optim_free(struct optimizer *o);

#endif
