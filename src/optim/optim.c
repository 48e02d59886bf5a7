/* optim.c — the optimizer state and its one-kernel step. */
#include "optim/optim.h"

#include <string.h>

#include "kernels/ops_shared.h"

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
  o->hyper = ops->alloc(ops, OPS_HYPER_LEN * sizeof(float));
  if (!o->m || !o->v || !o->hyper)
    return err_set(e, CT_ERR_RUNTIME, "out of %s memory for the optimizer state (%zu MiB)",
                   ops->name, 2 * bytes >> 20);
  ops->memset0(ops, o->m, bytes);
  ops->memset0(ops, o->v, bytes);
  return CT_OK;
}

void optim_prepare(struct optimizer *o, double lr, double beta1) {
  float h[OPS_HYPER_LEN];
  o->step++;
  if (o->kind == OPTIM_SGD)
    ops_sgd_hyper((float)lr, o->step, h);
  else
    ops_adam_hyper((float)lr, (float)beta1, (float)o->beta2, o->step, h);
  o->ops->upload_async(o->ops, o->hyper, h, sizeof h);
}

void optim_apply(const struct optimizer *o, const struct ops_ctx *ctx, float *params,
                 const float *grads) {
  const struct ops_backend *ops = o->ops;
  if (o->kind == OPTIM_SGD)
    ops->sgd_step(ctx, o->n, params, grads, o->m, o->hyper, (float)o->momentum,
                  (float)o->weight_decay);
  else
    ops->adam_step(ctx, o->n, params, grads, o->m, o->v, o->hyper, (float)o->beta2, (float)o->eps,
                   (float)o->weight_decay, o->kind == OPTIM_ADAMW);
}

void optim_step(struct optimizer *o, const struct ops_ctx *ctx, float *params, const float *grads,
                double lr, double beta1) {
  optim_prepare(o, lr, beta1);
  optim_apply(o, ctx, params, grads);
}

void optim_free(struct optimizer *o) {
  if (o->ops && o->m) o->ops->release(o->ops, o->m);
  if (o->ops && o->v) o->ops->release(o->ops, o->v);
  if (o->ops && o->hyper) o->ops->release(o->ops, o->hyper);
  o->m = o->v = o->hyper = NULL;
}
