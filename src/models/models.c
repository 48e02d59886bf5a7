/* models.c — the registry: model name -> builder and the kind of data it
 * trains on. */
#include "models/models.h"

#include <string.h>

struct model_entry {
  const char *name;
  enum model_task task;
  int (*build)(struct graph *, const struct model_spec *, struct model_io *, struct ct_err *);
};

static const struct model_entry model_table[] = {
    {"attn_cnn", TASK_IMAGES, model_attn_cnn},
    {"ultimus", TASK_IMAGES, model_ultimus},
    {"cnn_vanilla", TASK_IMAGES, model_cnn_vanilla},
    {"cnn_early", TASK_IMAGES, model_cnn_early},
    {"cnn_late", TASK_IMAGES, model_cnn_late},
    {"cnn_double", TASK_IMAGES, model_cnn_double},
    {"resnet10", TASK_IMAGES, model_resnet10},
    {"resnet10_attn", TASK_IMAGES, model_resnet10_attn},
    {"vit", TASK_IMAGES, model_vit},
    {"conv_vit", TASK_IMAGES, model_conv_vit},
    {"caption_transformer", TASK_CAPTIONS, model_caption_transformer},
};

const char *model_names(void) {
  return "attn_cnn, ultimus, cnn_vanilla, cnn_early, cnn_late, cnn_double, resnet10, "
         "resnet10_attn, vit, conv_vit, caption_transformer";
}

enum model_task model_task_of(const char *name) {
  for (size_t i = 0; i < sizeof model_table / sizeof model_table[0]; i++)
    if (strcmp(name, model_table[i].name) == 0) return model_table[i].task;
  return TASK_IMAGES;
}

int model_build(struct graph *g, const struct model_spec *spec, struct model_io *io,
                struct ct_err *e) {
  for (size_t i = 0; i < sizeof model_table / sizeof model_table[0]; i++) {
    const struct model_entry *m = &model_table[i];
    if (strcmp(spec->name, m->name) != 0) continue;
    if (spec->task != m->task)
      return err_set(e, CT_ERR_USAGE,
                     m->task == TASK_CAPTIONS
                         ? "model %s trains on captioning data (a `ctrain prepare coco` file), "
                           "not on an image dataset"
                         : "model %s classifies images; the data is a captioning set (use "
                           "caption_transformer)",
                     m->name);
    io->tokens = -1;
    int rc = m->build(g, spec, io, e);
    if (rc) return rc;
    g->loss = io->loss;
    g->logits = io->logits;
    return CT_OK;
  }
  return err_set(e, CT_ERR_USAGE, "unknown model.name '%s' (known: %s)", spec->name, model_names());
}
