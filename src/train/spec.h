/* spec.h — what a model needs from the configuration and the data. */
#ifndef CTRAIN_SPEC_H
#define CTRAIN_SPEC_H

#include "config/config.h"
#include "data/coco.h"
#include "data/dataset.h"
#include "models/models.h"

/* train.batch_size is the global batch, as DDP's: the rows of one rank's
 * graph. Training (exact) needs it to divide over the ranks, so every rank
 * steps on the same number of rows; evaluation takes each rank's share
 * rounded up, since its last batch is partial anyway. */
int spec_rank_batch(const struct config *cfg, int ranks, int exact, int *batch, struct ct_err *e);

/* Fills spec for a graph of `batch` rows per rank; errors name the key. */
int model_spec_from_config(const struct config *cfg, const struct dataset_info *info, int batch,
                           struct model_spec *spec, struct ct_err *e);

/* The same for a captioning model (TASK_CAPTIONS): the architecture keys from
 * [model], the vocabulary, feature width and caption width from the data
 * file's coco_info; model.max_length must equal the file's. */
int model_spec_caption(const struct config *cfg, const struct coco_info *info, int batch,
                       struct model_spec *spec, struct ct_err *e);

#endif
