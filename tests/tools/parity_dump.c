/* parity_dump — runs a model on one fixed batch and writes what PyTorch must
 * reproduce (tests/reference/parity.py reads it):
 *   /init/<name>   parameters and buffers at initialisation
 *   /batch/x, /batch/y   the normalised batch (first rows of the train split);
 *                  for caption_transformer (data.path a `ctrain prepare coco`
 *                  file) /batch/features, /batch/captions_in, /batch/captions_out
 *                  as coco_batch fills them from the first train captions
 *   /losses (S)    training-mode loss before each of S optimizer steps
 *   /grad/<name>   gradients at the initial parameters
 *   /final/<name>  parameters and buffers after S steps at constant lr
 *   attributes     model, steps, the optimizer and its hyper-parameters, and
 *                  `spec`, the model_spec's architecture keys as JSON
 * The model is built from the config exactly as `ctrain train` builds it
 * (model_spec_from_config), so its key checks apply. Dropout stays as the
 * config says: parity needs --set model.dropout=0.
 * usage: parity_dump CONFIG.ini OUT.h5 [--steps S] [--set section.key=value ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "data/coco.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "h5/h5io.h"
#include "optim/optim.h"
#include "train/session.h"
#include "train/spec.h"

static int write_state(hid_t f, const char *group, const struct graph *g, int grads,
                       struct ct_err *e) {
  for (int i = 0; i < g->ntensors; i++) {
    const struct tensor *t = &g->tensors[i];
    if (!t->name[0] || (grads && t->kind != TK_PARAM)) continue;
    if (t->kind != TK_PARAM && t->kind != TK_BUFFER) continue;
    char name[256];
    hsize_t dims[GRAPH_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++)
      dims[d] = (hsize_t)t->shape[d];
    snprintf(name, sizeof name, "%s/%s", group, t->name);
    hid_t type = t->dtype == DT_I64 ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    if (h5io_write(f, name, type, t->ndim, dims, grads ? (void *)t->grad : t->data, "dump", e))
      return e->code;
  }
  return CT_OK;
}

enum { MAX_STEPS = 10 };

/* The first b train captions into the graph's inputs and /batch. */
static int caption_batch(const struct config *cfg, const struct session *s, hid_t f,
                         struct ct_err *e) {
  const struct graph *g = &s->g;
  const int b = s->spec.batch, t = s->spec.max_length - 1, d = s->spec.feature_dim;
  struct coco_shard shard;
  if (coco_read_shard(cfg->data.path, "train", 0, 1, &shard, e)) return e->code;
  float *x = tensor_f32(g, s->io.input);
  int32_t *cin = (int32_t *)g->tensors[s->io.tokens].data;
  int32_t *cout = (int32_t *)g->tensors[s->io.labels].data;
  int rows = coco_batch(&shard, NULL, 0, b, cin, cout, x);
  coco_shard_free(&shard);
  if (rows != b) return err_set(e, CT_ERR_RUNTIME, "short batch: %d of %d captions", rows, b);
  if (h5io_write(f, "/batch/features", H5T_NATIVE_FLOAT, 2, (hsize_t[]){b, d}, x, "dump", e) ||
      h5io_write(f, "/batch/captions_in", H5T_NATIVE_INT32, 2, (hsize_t[]){b, t}, cin, "dump", e) ||
      h5io_write(f, "/batch/captions_out", H5T_NATIVE_INT32, 2, (hsize_t[]){b, t}, cout, "dump", e))
    return e->code;
  return CT_OK;
}

/* The first b train images, normalised as the loader does, into the graph's
 * inputs and /batch. */
static int image_batch(const struct config *cfg, const struct dataset_info *info,
                       const struct session *s, hid_t f, struct ct_err *e) {
  const struct graph *g = &s->g;
  const int b = s->spec.batch;
  struct image_split rows;
  if (dataset_read_split(cfg->data.path, "train", 0, 1, b, &rows, e)) return e->code;
  struct loader_cfg lc = {.batch = b, .normalize = cfg->data.normalize};
  memcpy(lc.mean, info->mean, sizeof lc.mean);
  memcpy(lc.std, info->std, sizeof lc.std);
  struct loader *l;
  if (loader_create(&l, &rows, &lc, e)) {
    image_split_free(&rows);
    return e->code;
  }
  if (loader_begin_epoch(l, 0, 0, e)) {
    loader_free(l);
    image_split_free(&rows);
    return e->code;
  }
  float *x = tensor_f32(g, s->io.input);
  int32_t *y = (int32_t *)g->tensors[s->io.labels].data;
  int got = loader_next(l, x, y);
  loader_free(l);
  image_split_free(&rows);
  if (got != b) return err_set(e, CT_ERR_RUNTIME, "short batch");
  if (h5io_write(f, "/batch/x", H5T_NATIVE_FLOAT, 4, (hsize_t[]){b, 3, 32, 32}, x, "dump", e) ||
      h5io_write(f, "/batch/y", H5T_NATIVE_INT32, 1, (hsize_t[]){b}, y, "dump", e))
    return e->code;
  return CT_OK;
}

static int run(int argc, char **argv, struct ct_err *e) {
  if (argc < 3)
    return err_set(e, CT_ERR_USAGE,
                   "usage: parity_dump CONFIG.ini OUT.h5 [--steps S] [--set k=v ...]");
  static struct config cfg;
  config_defaults(&cfg);
  if (config_load_file(&cfg, argv[1], e)) return e->code;
  int steps = 5;
  for (int i = 3; i < argc; i += 2) {
    if (i + 1 >= argc) return err_set(e, CT_ERR_USAGE, "%s needs a value", argv[i]);
    if (strcmp(argv[i], "--steps") == 0) {
      steps = atoi(argv[i + 1]);
      if (steps < 1 || steps > MAX_STEPS)
        return err_set(e, CT_ERR_USAGE, "--steps %s: need 1..%d", argv[i + 1], MAX_STEPS);
    } else if (strcmp(argv[i], "--set") == 0) {
      if (config_set(&cfg, argv[i + 1], e)) return e->code;
    } else {
      return err_set(e, CT_ERR_USAGE, "unknown option %s", argv[i]);
    }
  }
  /* The captioning model reads a COCO file, every other model an image
   * dataset; model_build rejects a model given the other kind of data. */
  const int captions = strcmp(cfg.model.name, "caption_transformer") == 0;
  struct dataset_info info;
  struct coco_info cinfo;
  int b = cfg.train.batch_size;
  struct model_spec spec;
  if (captions ? coco_read_info(cfg.data.path, &cinfo, e) ||
                     model_spec_caption(&cfg, &cinfo, b, &spec, e)
               : dataset_read_info(cfg.data.path, &info, e) ||
                     model_spec_from_config(&cfg, &info, b, &spec, e))
    return e->code;
  struct session s;
  if (session_build(&s, ops_cpu(), &spec, 2, cfg.train.seed, e)) return e->code;
  struct graph *g = &s.g;

  h5io_quiet();
  hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return err_set(e, CT_ERR_RUNTIME, "%s: cannot create", argv[2]);
  struct optimizer o;
  if (write_state(f, "/init", g, 0, e) ||
      (captions ? caption_batch(&cfg, &s, f, e) : image_batch(&cfg, &info, &s, f, e)) ||
      optim_init(&o, g->ops, cfg.train.optimizer, g->params_len, cfg.train.beta2, cfg.train.eps,
                 cfg.train.weight_decay, cfg.train.momentum, e))
    return e->code;
  float losses[MAX_STEPS];
  g->training = 1;
  for (int step = 0; step < steps; step++) {
    g->step_counter = (uint64_t)step;
    graph_forward(g);
    losses[step] = tensor_f32(g, s.io.loss)[0];
    graph_backward(g);
    if (step == 0 && write_state(f, "/grad", g, 1, e)) return e->code;
    optim_step(&o, &g->ctx, g->params, g->grads, cfg.train.lr, cfg.train.beta1);
  }
  if (h5io_write(f, "/losses", H5T_NATIVE_FLOAT, 1, (hsize_t[]){steps}, losses, "dump", e) ||
      write_state(f, "/final", g, 0, e) ||
      h5io_attr_write_str(f, "model", cfg.model.name, "dump", e) ||
      h5io_attr_write_long(f, "steps", steps, "dump", e) ||
      h5io_attr_write_str(f, "optimizer", cfg.train.optimizer, "dump", e))
    return e->code;
  const char *names[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
  double vals[] = {cfg.train.lr, cfg.train.beta1, cfg.train.beta2, cfg.train.eps,
                   cfg.train.weight_decay};
  for (int i = 0; i < 5; i++)
    if (h5io_attr_write_double(f, names[i], vals[i], "dump", e)) return e->code;
  char json[512];
  snprintf(json, sizeof json,
           "{\"num_classes\": %d, \"batchnorm\": %d, \"patch\": %d, \"dim\": %d, "
           "\"depth\": %d, \"heads\": %d, \"ffn_dim\": %d, \"dropout\": %.9g, "
           "\"vocab_size\": %d, \"feature_dim\": %d, \"max_length\": %d, "
           "\"label_smoothing\": %.9g}",
           spec.num_classes, spec.batchnorm, spec.patch, spec.dim, spec.depth, spec.heads,
           spec.ffn_dim, spec.dropout, spec.vocab_size, spec.feature_dim, spec.max_length,
           spec.label_smoothing);
  if (h5io_attr_write_str(f, "spec", json, "dump", e)) return e->code;
  if (H5Fclose(f) < 0) return err_set(e, CT_ERR_RUNTIME, "%s: H5Fclose failed", argv[2]);
  optim_free(&o);
  session_free(&s);
  return CT_OK;
}

int main(int argc, char **argv) {
  struct ct_err e = {0};
  int rc = run(argc, argv, &e);
  if (rc) fprintf(stderr, "parity_dump: %s\n", e.msg);
  return rc;
}
