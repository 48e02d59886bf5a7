/* images.h — the image classification task (task.h) for every model but
 * the caption one: sharded loaders over this rank's rows, augmentation on
 * the host or, where the backend's memory is not the host's, on the device
 * from a resident copy of the rows. */
#ifndef CTRAIN_IMAGES_H
#define CTRAIN_IMAGES_H

#include "comm/comm.h"
#include "config/config.h"
#include "train/session.h"
#include "train/spec.h"
#include "train/task.h"

/* Fills *task (freed by task->free) and the graph's spec for a per-rank
 * batch; the task fills s's input tensors once s is built. */
int image_task_open(struct train_task *task, const struct config *cfg, const struct comm *c,
                    const struct ops_backend *ops, int batch, struct session *s,
                    struct model_spec *spec, struct ct_err *e);

#endif
