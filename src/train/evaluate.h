/* evaluate.h — `ctrain eval`: a checkpoint on a split of a dataset file. */
#ifndef CTRAIN_EVALUATE_H
#define CTRAIN_EVALUATE_H

#include "comm/comm.h"
#include "core/error.h"
#include "kernels/ops.h"

/* Prints loss, accuracy, per-class accuracy and the confusion matrix, and
 * the same as one JSON object to json_path (stdout when NULL). Runs on the
 * backend `device` chooses (cpu, cuda or auto: comm/device.h). */
int eval_checkpoint(const char *ckpt, const char *data, const char *split, const char *json_path,
                    const char *device, const struct comm *c, struct ct_err *e);
/* The same on a given backend. */
int eval_checkpoint_with(const char *ckpt, const char *data, const char *split,
                         const char *json_path, const struct ops_backend *ops, const struct comm *c,
                         struct ct_err *e);

#endif
