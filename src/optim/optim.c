/* optim.c — the optimizer state and its one-kernel step. */
#include "optim/optim.h"

#include <string.h>

int optim_init(struct optimizer *o, const struct ops_backend *ops, const char *kind, size_t n,
               double beta2, double eps, double weight_decay, double momentum, struct ct_err *e) {
  memset(o, 0, sizeof *o);
  if (strcmp(kind, "adam") == 0)
    o->kind = OPTIM_ADAM;
  else if (strcmp(kind, "adamw") == 0)
    o->kind = OPTIM_ADAMW;
  else if (strcmp(kind, "sgd") == 0)
    o->kind = OPTIM_SGD;
  else
    return err_set(e, CT_ERR_USAGE, "unknown train.optimizer '%s' (adam, adamw, sgd)", kind);
  o->n = n;
  o->beta2 = beta2;
  o->eps = eps;
  o->weight_decay = weight_decay;
  o->momentum = momentum;
  o->ops = ops;
  size_t bytes = (n ? n : 1) * sizeof(float);
  o->m = ops->alloc(ops, bytes);
  o->v = ops->alloc(ops, bytes);
  if (!o->m || !o->v)
    return err_set(e, CT_ERR_RUNTIME, "out of %s memory for the optimizer state (%zu MiB)",
                   ops->name, 2 * bytes >> 20);
  ops->memset0(ops, o->m, bytes);
  ops->memset0(ops, o->v, bytes);
  return CT_OK;
}

void optim_step(struct optimizer *o, const struct ops_backend *ops, const struct ops_ctx *ctx,
                float *params, const float *grads, double lr, double beta1) {
  o->step++;
  if (o->kind == OPTIM_SGD)
    ops->sgd_step(ctx, o->n, params, grads, o->m, (float)lr, (float)o->momentum,
                  (float)o->weight_decay, o->step);
  else
    ops->adam_step(ctx, o->n, params, grads, o->m, o->v, (float)lr, (float)beta1, (float)o->beta2,
                   (float)o->eps, (float)o->weight_decay, o->kind == OPTIM_ADAMW, o->step);
}

void optim_free(struct optimizer *o) {
  if (o->ops && o->m) o->ops->release(o->ops, o->m);
  if (o->ops && o->v) o->ops->release(o->ops, o->v);
  o->m = o->v = NULL;
}
