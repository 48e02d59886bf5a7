/* spec.c — the [model] section and the data's shape, as a model_spec. Shape
 * rules that involve the data are checked here, so a bad key is a usage error
 * naming it rather than a builder's assertion. */
#include "train/spec.h"

#include <stdio.h>
#include <string.h>

/* the config parser checks each transformer key alone; whether the patch tiles
 * the image depends on the data, so it is checked here. */
static int check_patch(const struct model_spec *spec, struct ct_err *e) {
  if (spec->image_h % spec->patch != 0 || spec->image_w % spec->patch != 0)
    return err_set(e, CT_ERR_USAGE, "model.patch = %d must divide the image side (%dx%d)",
                   spec->patch, spec->image_h, spec->image_w);
  return CT_OK;
}

int spec_rank_batch(const struct config *cfg, int ranks, int exact, int *batch, struct ct_err *e) {
  const int global = cfg->train.batch_size;
  if (exact && global % ranks != 0)
    return err_set(e, CT_ERR_USAGE,
                   "train.batch_size = %d does not divide over %d ranks (make it a multiple of %d)",
                   global, ranks, ranks);
  *batch = (global + ranks - 1) / ranks;
  return CT_OK;
}

int model_spec_from_config(const struct config *cfg, const struct dataset_info *info, int batch,
                           struct model_spec *spec, struct ct_err *e) {
  memset(spec, 0, sizeof *spec);
  snprintf(spec->name, sizeof spec->name, "%s", cfg->model.name);
  spec->num_classes = info->num_classes;
  spec->batch = batch;
  spec->image_c = 3;
  spec->image_h = DATASET_SIDE;
  spec->image_w = DATASET_SIDE;
  spec->label_smoothing = (float)cfg->train.label_smoothing;
  spec->batchnorm = cfg->model.batchnorm;
  spec->patch = cfg->model.patch;
  spec->dim = cfg->model.dim;
  spec->depth = cfg->model.depth;
  spec->heads = cfg->model.heads;
  spec->ffn_dim = cfg->model.ffn_dim;
  spec->dropout = (float)cfg->model.dropout;
  if (cfg->model.num_classes != info->num_classes)
    return err_set(e, CT_ERR_USAGE, "model.num_classes = %d but %s has %d classes",
                   cfg->model.num_classes, cfg->data.path, info->num_classes);
  if (strcmp(spec->name, "vit") == 0) return check_patch(spec, e);
  return CT_OK;
}

int model_spec_caption(const struct config *cfg, const struct coco_info *info, int batch,
                       struct model_spec *spec, struct ct_err *e) {
  memset(spec, 0, sizeof *spec);
  if (cfg->model.max_length != info->max_length)
    return err_set(e, CT_ERR_USAGE, "model.max_length = %d but %s has captions of %d tokens",
                   cfg->model.max_length, cfg->data.path, info->max_length);
  snprintf(spec->name, sizeof spec->name, "%s", cfg->model.name);
  spec->task = TASK_CAPTIONS;
  spec->batch = batch;
  spec->label_smoothing = (float)cfg->train.label_smoothing;
  spec->dim = cfg->model.dim;
  spec->depth = cfg->model.depth;
  spec->heads = cfg->model.heads;
  spec->ffn_dim = cfg->model.ffn_dim;
  spec->dropout = (float)cfg->model.dropout;
  spec->vocab_size = info->vocab_size;
  spec->feature_dim = info->feature_dim;
  spec->max_length = info->max_length;
  return CT_OK;
}
