/* images.c — the image classification task (task.h): this rank's rows of
 * an image dataset, epoch by epoch through a sharded loader, with the
 * validation split carved out of /train when data.val_size asks. */
#include "train/images.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "data/augment.h"
#include "data/coco.h"
#include "data/dataset.h"
#include "train/spec.h"

/* Where a loader's global rows live: a split of the file, and for a
 * validation split carved out of /train, the file row of every global row. */
struct shard_source {
  const char *path, *split;
  long n;          /* global rows */
  long *map;       /* NULL: global row i is file row i */
  long *file_rows; /* scratch for the mapped rows, n */
};

static int fetch_rows(void *user, const long *rows, long count, uint8_t *images, int32_t *labels,
                      struct ct_err *e) {
  struct shard_source *s = user;
  const long *file_rows = rows;
  if (s->map) {
    for (long i = 0; i < count; i++)
      s->file_rows[i] = s->map[rows[i]];
    file_rows = s->file_rows;
  }
  return dataset_read_rows(s->path, s->split, file_rows, count, images, labels, e);
}

struct run_data {
  struct dataset_info info;
  struct shard_source train, val, test;
  long *rows; /* train.map and val.map when data.val_size carves a split */
};

static void run_data_free(struct run_data *d) {
  free(d->rows);
  free(d->train.file_rows);
  free(d->val.file_rows);
}

/* Sizes and row maps only: every rank reads its own rows later, epoch by
 * epoch (loader_begin_epoch), never the whole set. */
static int load_data(const struct config *cfg, struct run_data *d, struct ct_err *e) {
  const char *path = cfg->data.path;
  memset(d, 0, sizeof *d);
  if (!path[0]) return err_set(e, CT_ERR_USAGE, "data.path is not set");
  if (dataset_read_info(path, &d->info, e) || dataset_check_labels(path, "train", e) ||
      (d->info.n_val > 0 && dataset_check_labels(path, "val", e)) ||
      dataset_check_labels(path, "test", e))
    return e->code;
  d->train = (struct shard_source){path, "train", d->info.n_train, NULL, NULL};
  d->test = (struct shard_source){path, "test", d->info.n_test, NULL, NULL};
  if (d->info.n_val > 0) {
    if (cfg->data.val_size != 0 && cfg->data.val_size != d->info.n_val)
      return err_set(e, CT_ERR_USAGE,
                     "%s already has a /val split of %d images; set data.val_size = 0 or %d "
                     "(it is %d)",
                     path, d->info.n_val, d->info.n_val, cfg->data.val_size);
    d->val = (struct shard_source){path, "val", d->info.n_val, NULL, NULL};
  } else if (cfg->data.val_size > 0) {
    long n = d->info.n_train, nv = cfg->data.val_size;
    if (nv >= n)
      return err_set(e, CT_ERR_USAGE, "data.val_size = %ld leaves no training images in %s (%ld)",
                     nv, path, n);
    d->rows = malloc((size_t)n * sizeof *d->rows);
    d->train.file_rows = malloc((size_t)(n - nv) * sizeof(long));
    d->val.file_rows = malloc((size_t)nv * sizeof(long));
    if (!d->rows || !d->train.file_rows || !d->val.file_rows)
      return err_set(e, CT_ERR_RUNTIME, "out of memory for the row maps of %s", path);
    if (dataset_val_rows(n, (int)nv, cfg->train.seed, d->rows, d->rows + (n - nv), e))
      return e->code;
    d->train.n = n - nv;
    d->train.map = d->rows;
    d->val = (struct shard_source){path, "train", nv, d->rows + (n - nv), d->val.file_rows};
  }
  if (cfg->train.batch_size > d->train.n)
    return err_set(e, CT_ERR_USAGE,
                   "train.batch_size = %d is larger than the %ld training images of %s",
                   cfg->train.batch_size, d->train.n, path);
  return CT_OK;
}

static struct loader_cfg loader_config(const struct config *cfg, const struct dataset_info *info,
                                       const struct comm *c, int batch, int training,
                                       uint64_t seed) {
  struct loader_cfg l;
  memset(&l, 0, sizeof l);
  l.batch = batch;
  l.rank = c->rank;
  l.ranks = c->size;
  l.shuffle = training && cfg->data.shuffle;
  l.drop_last = training;
  if (training) {
    l.aug.flags = cfg->data.augment;
    l.aug.crop_pad = cfg->data.crop_pad;
    l.aug.rotate_deg = (float)cfg->data.rotate_deg;
    l.aug.cutout_size = cfg->data.cutout_size;
    l.aug.cutout_p = (float)cfg->data.cutout_p;
  }
  l.normalize = cfg->data.normalize;
  memcpy(l.mean, info->mean, sizeof l.mean);
  memcpy(l.std, info->std, sizeof l.std);
  l.seed = seed;
  return l;
}

struct image_task {
  const struct comm *comm;
  const struct ops_backend *ops;
  struct session *s;
  struct run_data data;
  struct loader *train_l, *val_l, *test_l;
  /* Resident training data (backends whose memory is not the host's): this
   * rank's rows of the epoch as uint8, uploaded once per fetch, from which
   * ops->augment makes every batch in place. */
  uint8_t *shard_images;
  int32_t *shard_labels;
  unsigned long shard_generation;
  struct augment_params aug;
};

static int images_begin_epoch(void *self, long epoch, long first_batch, struct ct_err *e) {
  struct image_task *t = self;
  if (loader_begin_epoch(t->train_l, epoch, first_batch, e)) return e->code;
  if (!t->shard_images) return CT_OK;
  const uint8_t *images;
  const int32_t *labels;
  long from, count;
  unsigned long generation;
  loader_shard(t->train_l, &images, &labels, &from, &count, &generation);
  if (generation != t->shard_generation) { /* new rows: the epoch's one copy */
    const size_t img = DATASET_IMAGE_BYTES;
    t->ops->upload(t->ops, t->shard_images + from * img, images + from * img, (size_t)count * img);
    t->ops->upload(t->ops, t->shard_labels + from, labels + from, (size_t)count * sizeof *labels);
    t->shard_generation = generation;
  }
  return CT_OK;
}

static int images_next(void *self) {
  struct image_task *t = self;
  const struct session *s = t->s;
  if (!t->shard_images) {
    int rows = loader_next(t->train_l, s->x.host, s->y.host);
    session_upload_batch(s);
    return rows;
  }
  struct loader_batch b;
  if (!loader_take(t->train_l, &b)) return 0;
  const struct graph *g = &s->g;
  const int batch = s->spec.batch;
  t->aug.key = b.key;
  g->ops->augment(&g->ctx, &t->aug, batch, b.valid,
                  t->shard_images + (size_t)b.index * batch * DATASET_IMAGE_BYTES,
                  t->shard_labels + (size_t)b.index * batch, b.pos0, b.pos_step,
                  (float *)g->tensors[s->io.input].data, (int32_t *)g->tensors[s->io.labels].data);
  return b.valid;
}

static void images_rng_state(const void *self, uint64_t out[LOADER_RNG_WORDS]) {
  const struct image_task *t = self;
  loader_rng_state(t->train_l, out);
}

static int images_evaluate(void *self, const char *split, struct metrics_row *row,
                           struct ct_err *e) {
  struct image_task *t = self;
  struct eval_result r;
  if (session_evaluate(t->s, strcmp(split, "val") == 0 ? t->val_l : t->test_l, t->comm, &r, e))
    return e->code;
  row->loss = r.loss;
  row->acc = r.acc;
  log_info("%s: loss %.4f acc %.2f%% (%ld images)", split, r.loss, 100.0 * r.acc, r.total);
  return CT_OK;
}

void image_task_free(void *self) {
  struct image_task *t = self;
  if (!t) return;
  loader_free(t->train_l);
  loader_free(t->val_l);
  loader_free(t->test_l);
  if (t->shard_images) t->ops->release(t->ops, t->shard_images);
  if (t->shard_labels) t->ops->release(t->ops, t->shard_labels);
  run_data_free(&t->data);
  free(t);
}

/* This rank's loaders, and on a backend whose memory is not the host's the
 * device copy of its rows from which ops->augment makes each batch. */
static int image_task_init(struct image_task *t, const struct config *cfg, int batch,
                           struct model_spec *spec, struct ct_err *e) {
  struct run_data *d = &t->data;
  const struct comm *c = t->comm;
  if (load_data(cfg, d, e) || model_spec_from_config(cfg, &d->info, batch, spec, e)) return e->code;
  uint64_t seed = cfg->train.seed;
  struct loader_cfg lc = loader_config(cfg, &d->info, c, batch, 1, seed);
  lc.resident = !backend_host_memory(t->ops);
  if (loader_create_sharded(&t->train_l, d->train.n, &lc, fetch_rows, &d->train, e)) return e->code;
  if (lc.resident) {
    size_t rows = (size_t)loader_batches(t->train_l) * batch;
    t->shard_images = t->ops->alloc(t->ops, rows * DATASET_IMAGE_BYTES);
    t->shard_labels = t->ops->alloc(t->ops, rows * sizeof(int32_t));
    if (!t->shard_images || !t->shard_labels)
      return err_set(e, CT_ERR_RUNTIME, "out of %s memory for this rank's %zu training images",
                     t->ops->name, rows);
    t->shard_generation = 0; /* the loader's count before its first fetch */
    t->aug =
        augment_params(&lc.aug, lc.normalize ? lc.mean : NULL, lc.normalize ? lc.std : NULL, 0);
  }
  lc = loader_config(cfg, &d->info, c, batch, 0, seed);
  if (d->val.n > 0 && loader_create_sharded(&t->val_l, d->val.n, &lc, fetch_rows, &d->val, e))
    return e->code;
  if (d->test.n > 0 && loader_create_sharded(&t->test_l, d->test.n, &lc, fetch_rows, &d->test, e))
    return e->code;
  return CT_OK;
}

int image_task_open(struct train_task *task, const struct config *cfg, const struct comm *c,
                    const struct ops_backend *ops, int batch, struct session *s,
                    struct model_spec *spec, struct ct_err *e) {
  memset(task, 0, sizeof *task);
  if (coco_is_caption_file(cfg->data.path))
    return err_set(e, CT_ERR_USAGE,
                   "%s is a captioning file (`ctrain prepare coco`); model %s classifies images "
                   "(caption_transformer trains on captions)",
                   cfg->data.path, cfg->model.name);
  struct image_task *t = calloc(1, sizeof *t);
  if (!t) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  *t = (struct image_task){.comm = c, .ops = ops, .s = s};
  if (image_task_init(t, cfg, batch, spec, e)) {
    image_task_free(t);
    return e->code;
  }
  *task = (struct train_task){.self = t,
                              .batches = loader_batches(t->train_l),
                              .has_val = t->val_l != NULL,
                              .has_test = t->test_l != NULL,
                              .rate_key = "images_per_s",
                              .rate_unit = "img/s",
                              .begin_epoch = images_begin_epoch,
                              .next = images_next,
                              .rng_state = images_rng_state,
                              .evaluate = images_evaluate,
                              .free = image_task_free};
  return CT_OK;
}
