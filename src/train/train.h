/* train.h — `ctrain train`: one run from a resolved configuration. */
#ifndef CTRAIN_TRAIN_H
#define CTRAIN_TRAIN_H

#include "comm/comm.h"
#include "config/config.h"
#include "core/error.h"
#include "kernels/ops.h"

/* Trains on the backend run.device chooses (comm/device.h); on
 * SIGTERM/SIGUSR1 checkpoints and returns CT_OK early. */
int train_run(const struct config *cfg, const struct comm *comm, struct ct_err *e);
/* The same on a given backend (the tests run the emulated CUDA backend). */
int train_run_with(const struct config *cfg, const struct comm *comm, const struct ops_backend *ops,
                   struct ct_err *e);

#endif
