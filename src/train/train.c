/* train.c — the training loop: data, graph, comm, optimizer, schedule,
 * checkpoints and metrics, wired together. */
#include "train/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "comm/device.h"
#include "comm/nccl.h"
#include "core/log.h"
#include "data/coco.h"
#include "data/dataset.h"
#include "optim/optim.h"
#include "optim/schedule.h"
#include "train/captioning.h"
#include "train/metrics.h"
#include "train/run_lock.h"
#include "train/session.h"
#include "train/spec.h"
#include "train/task.h"

/* Set by SIGTERM/SIGUSR1/SIGINT; the loop checkpoints and exits at the next step. */
static volatile sig_atomic_t stop_requested;

/* A second SIGINT exits at once. A checkpoint being written then is a .tmp file that
 * is only renamed over its name once complete, so earlier checkpoints stay intact. */
static void on_stop_signal(int sig) {
  if (sig == SIGINT && stop_requested) _exit(130);
  stop_requested = 1;
}

static void install_stop_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mkdir_p(const char *path, struct ct_err *e) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return err_set(e, CT_ERR_RUNTIME, "%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST)
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot create directory: %s", buf, strerror(errno));
  if (access(buf, W_OK) != 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: directory is not writable", buf);
  return CT_OK;
}

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

static struct schedule schedule_config(const struct config *cfg, long total_steps) {
  const struct cfg_train *t = &cfg->train;
  struct schedule s = {.total_steps = total_steps > 0 ? total_steps : 1,
                       .lr = t->lr,
                       .eta_min = t->eta_min,
                       .beta1 = t->beta1,
                       .max_lr = t->max_lr > 0 ? t->max_lr : t->lr,
                       .pct_start = t->pct_start,
                       .div_factor = t->div_factor,
                       .final_div_factor = t->final_div_factor,
                       .base_momentum = t->base_momentum,
                       .max_momentum = t->max_momentum,
                       .anneal_linear = strcmp(t->anneal, "linear") == 0,
                       .cycle_momentum = t->cycle_momentum,
                       .warmup_steps = t->warmup_steps};
  if (strcmp(t->schedule, "cosine") == 0)
    s.kind = SCHED_COSINE;
  else if (strcmp(t->schedule, "onecycle") == 0)
    s.kind = SCHED_ONECYCLE;
  else
    s.kind = SCHED_CONSTANT;
  return s;
}

static int is_ckpt_name(const char *name) {
  size_t len = strlen(name);
  return strncmp(name, "step_", 5) == 0 && len > 8 && strcmp(name + len - 3, ".h5") == 0;
}

/* The checkpoints in run.dir, newest first (names sort by step); n < 0 when
 * the directory cannot be read. Free with free_names. */
static int list_checkpoints(const struct config *cfg, struct dirent ***list) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/checkpoints", cfg->run.dir);
  int n = scandir(dir, list, NULL, alphasort), kept = 0;
  for (int i = 0; i < n; i++) {
    struct dirent *d = (*list)[i];
    if (is_ckpt_name(d->d_name))
      (*list)[kept++] = d;
    else
      free(d);
  }
  for (int i = 0; i < kept / 2; i++) {
    struct dirent *d = (*list)[i];
    (*list)[i] = (*list)[kept - 1 - i];
    (*list)[kept - 1 - i] = d;
  }
  return n < 0 ? n : kept;
}

static void free_names(struct dirent **list, int n) {
  for (int i = 0; i < n; i++)
    free(list[i]);
  if (n >= 0) free(list);
}

/* checkpoints/step_XXXXXXXX.h5, then `latest` names it; older ones beyond
 * run.keep are removed. Collective: rank 0 gathers every rank's random
 * state and writes. */
static int save_checkpoint(const struct config *cfg, const struct comm *c, const struct session *s,
                           const struct optimizer *o, const struct train_task *task, long step,
                           long batches, double lr, uint64_t *rng_all, char *path_out,
                           size_t path_len, double *save_s, struct ct_err *e) {
  uint64_t rng[LOADER_RNG_WORDS];
  task->rng_state(task->self, rng);
  if (comm_gather_u64(c, rng, LOADER_RNG_WORDS, rng_all, e)) return e->code;
  if (c->rank != 0) return CT_OK;
  struct ckpt_meta *meta = calloc(1, sizeof *meta);
  if (!meta) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  snprintf(meta->model, sizeof meta->model, "%s", s->spec.name);
  meta->num_classes = s->spec.num_classes;
  meta->step = step;
  meta->epoch = step / batches;
  meta->epoch_batch = step % batches;
  meta->lr = lr;
  meta->world_size = c->size;
  config_write(cfg, meta->config, sizeof meta->config);
  snprintf(path_out, path_len, "%s/checkpoints/step_%08ld.h5", cfg->run.dir, step);
  double t0 = now_s();
  int rc = ckpt_save(path_out, &s->g, o, meta, rng_all, LOADER_RNG_WORDS, e);
  free(meta);
  if (rc) return rc;
  *save_s = now_s() - t0;

  char latest[4200], tmp[4300];
  snprintf(latest, sizeof latest, "%s/checkpoints/latest", cfg->run.dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", latest);
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "step_%08ld.h5\n", step) < 0 || fclose(f) != 0 || rename(tmp, latest) != 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot write: %s", latest, strerror(errno));

  struct dirent **list;
  int n = list_checkpoints(cfg, &list);
  for (int i = cfg->run.keep; i < n; i++) {
    char old[4500];
    snprintf(old, sizeof old, "%s/checkpoints/%s", cfg->run.dir, list[i]->d_name);
    unlink(old);
  }
  free_names(list, n);
  return CT_OK;
}

/* Loads `path` (verified first, so a bad file leaves the model untouched). */
static int try_resume(const char *path, const char *model, struct graph *g, struct optimizer *o,
                      long *step, struct ct_err *e) {
  struct ckpt_meta *meta = calloc(1, sizeof *meta);
  if (!meta) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  double t0 = now_s();
  int rc = ckpt_verify(path, e);
  if (!rc) rc = ckpt_read_meta(path, meta, e);
  if (!rc && strcmp(meta->model, model) != 0)
    rc = err_set(e, CT_ERR_USAGE, "%s holds a '%s' model, the config trains '%s'", path,
                 meta->model, model);
  if (!rc) rc = ckpt_load(path, g, o, e);
  if (!rc) {
    *step = meta->step;
    log_info("resumed from %s at step %ld (saved by %ld ranks; verified and loaded in %.1f ms)",
             path, meta->step, meta->world_size, 1e3 * (now_s() - t0));
  }
  free(meta);
  return rc;
}

/* Rank 0: run.resume = none, a path (must load), or auto: the newest valid
 * checkpoint in run.dir, falling back past damaged ones, none is a fresh
 * start. *step stays 0 on a fresh start. */
static int resume_rank0(const struct config *cfg, const char *model, struct graph *g,
                        struct optimizer *o, long *step, struct ct_err *e) {
  const char *how = cfg->run.resume;
  char ck[4200];
  snprintf(ck, sizeof ck, "%s/checkpoints", cfg->run.dir);
  if (ckpt_dir_clean_tmp(ck, e)) return e->code;
  if (strcmp(how, "none") == 0) return CT_OK;
  if (strcmp(how, "auto") != 0) return try_resume(how, model, g, o, step, e);
  struct dirent **list;
  int n = list_checkpoints(cfg, &list), rc = CT_OK, loaded = 0;
  for (int i = 0; i < n && !loaded; i++) {
    char path[4500];
    snprintf(path, sizeof path, "%s/checkpoints/%s", cfg->run.dir, list[i]->d_name);
    rc = try_resume(path, model, g, o, step, e);
    if (rc == CT_ERR_USAGE) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      err_set(e, CT_ERR_USAGE,
              "%s: run.dir %s holds another run's checkpoints, left untouched (set run.resume = "
              "none or a new run.dir)",
              why, cfg->run.dir);
      break;
    }
    loaded = rc == CT_OK;
    if (!loaded)
      log_error("%s; %s", e->msg,
                i + 1 < n ? "falling back to the previous checkpoint" : "starting fresh");
  }
  free_names(list, n);
  return rc == CT_ERR_USAGE ? rc : CT_OK;
}

struct trainer {
  const struct config *cfg;
  const struct comm *comm;
  const struct ops_backend *ops;
  struct run_data data;
  struct session s;
  struct optimizer opt;
  struct schedule sched;
  struct loader *train_l, *val_l, *test_l;
  /* Resident training data (backends whose memory is not the host's): this
   * rank's rows of the epoch as uint8, uploaded once per fetch, from which
   * ops->augment makes every batch in place. */
  uint8_t *shard_images;
  int32_t *shard_labels;
  unsigned long shard_generation;
  struct augment_params aug;
  struct train_task task; /* the data: images (the loaders above) or captions */
  struct metrics m;
  int lock_fd; /* rank 0: run.dir/.lock, -1 elsewhere */
  struct comm_buckets buckets;
  int bucketed;
  struct host_view grads; /* the gradients MPI reduces (more than one rank) */
  size_t grads_pulled;    /* bucketed: gradients copied to the view in this backward */
  /* cuda over more than one rank: gradients and sync BN over NCCL in device
   * memory instead (then grads and buckets are unused) */
  struct nccl_comm *nccl;
  struct nccl_buckets nccl_grads;
  uint64_t *rng_all; /* every rank's loader state, gathered for checkpoints */
  /* Backend memory the step writes instead of returning to the host, read
   * only when a log line, a checkpoint or the end asks: the loss node's
   * score since the last read (weight * loss, correct, counted) and the
   * first non-finite step (bad = {step, 1 loss / 2 gradient}, -1: none). */
  const struct node *loss_node;
  double *score;
  int64_t *bad;
  double *bad_all; /* host: every rank's bad, 2 per rank */
  long step, epoch, batches;
  double comm_s; /* seconds waiting for the gradient all-reduce */
  long comm_steps;
};

static void trainer_free(struct trainer *t) {
  run_lock_release(t->lock_fd);
  loader_free(t->train_l);
  loader_free(t->val_l);
  loader_free(t->test_l);
  optim_free(&t->opt);
#ifdef CTRAIN_HAVE_CUDA
  nccl_comm_destroy(t->nccl); /* finishes its collectives on the graph's memory */
#endif
  session_free(&t->s);
  metrics_close(&t->m);
  comm_buckets_free(&t->buckets);
  host_view_free(&t->grads);
  if (t->shard_images) t->ops->release(t->shard_images);
  if (t->shard_labels) t->ops->release(t->shard_labels);
  if (t->score) t->ops->release(t->score);
  if (t->bad) t->ops->release(t->bad);
  free(t->rng_all);
  free(t->bad_all);
  run_data_free(&t->data);
}

/* Broadcasts the backend memory behind v from rank 0: over NCCL on the
 * device when the trainer has a communicator, else through v's host copy
 * and MPI. */
static int bcast_view(const struct trainer *t, const struct host_view *v, struct ct_err *e) {
  const struct comm *c = t->comm;
  if (c->size == 1) return CT_OK;
#ifdef CTRAIN_HAVE_CUDA
  if (t->nccl) return nccl_bcast(t->nccl, v->dev, v->bytes, 0, e);
#endif
  if (c->rank == 0) host_view_pull(v, 0, v->bytes);
  if (comm_bcast(c, v->host, v->bytes, 0, e)) return e->code;
  if (c->rank != 0) host_view_push(v, 0, v->bytes);
  return CT_OK;
}

/* The same for backend memory without a view of its own (resume only). */
static int bcast_backend(const struct trainer *t, void *dev, size_t bytes, struct ct_err *e) {
  if (t->comm->size == 1) return CT_OK;
  struct host_view v = {.ops = t->ops, .dev = dev, .host = NULL, .bytes = bytes};
  if (t->nccl) return bcast_view(t, &v, e); /* device to device: no host copy */
  if (host_view_init(&v, t->ops, dev, bytes, e)) return e->code;
  int rc = bcast_view(t, &v, e);
  host_view_free(&v);
  return rc;
}

/* Without sync BN each rank's running statistics follow its own batches;
 * like DDP, rank 0's are the model's (the checkpoint holds them), so they
 * are what every rank evaluates with. */
static int trainer_eval(struct trainer *t, const char *split, double *acc, struct ct_err *e) {
  struct graph *g = &t->s.g;
  if (!t->cfg->model.sync_bn && bcast_view(t, &g->buffers_view, e)) return e->code;
  struct metrics_row row = {split, t->epoch, t->step, 0, 0, -1, -1, NULL, NULL};
  if (t->task.evaluate(t->task.self, split, &row, e)) return e->code;
  metrics_write(&t->m, &row);
  *acc = row.acc;
  return CT_OK;
}

/* ---- the image classification task (task.h) over the loaders ------------- */

static int images_begin_epoch(void *self, long epoch, long first_batch, struct ct_err *e) {
  struct trainer *t = self;
  if (loader_begin_epoch(t->train_l, epoch, first_batch, e)) return e->code;
  if (!t->shard_images) return CT_OK;
  const uint8_t *images;
  const int32_t *labels;
  long from, count;
  unsigned long generation;
  loader_shard(t->train_l, &images, &labels, &from, &count, &generation);
  if (generation != t->shard_generation) { /* new rows: the epoch's one copy */
    const size_t img = DATASET_IMAGE_BYTES;
    t->ops->upload(t->shard_images + from * img, images + from * img, (size_t)count * img);
    t->ops->upload(t->shard_labels + from, labels + from, (size_t)count * sizeof *labels);
    t->shard_generation = generation;
  }
  return CT_OK;
}

static int images_next(void *self) {
  struct trainer *t = self;
  const struct session *s = &t->s;
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
  const struct trainer *t = self;
  loader_rng_state(t->train_l, out);
}

static int images_evaluate(void *self, const char *split, struct metrics_row *row,
                           struct ct_err *e) {
  struct trainer *t = self;
  struct eval_result r;
  if (session_evaluate(&t->s, strcmp(split, "val") == 0 ? t->val_l : t->test_l, t->comm, &r, e))
    return e->code;
  row->loss = r.loss;
  row->acc = r.acc;
  log_info("%s: loss %.4f acc %.2f%% (%ld images)", split, r.loss, 100.0 * r.acc, r.total);
  return CT_OK;
}

/* The task for cfg's model: captioning (captioning.h) or images, whose
 * loaders over this rank's rows are made here. Fills the spec of the graph. */
static int trainer_task_open(struct trainer *t, int batch, struct model_spec *spec,
                             struct ct_err *e) {
  const struct config *cfg = t->cfg;
  const struct comm *c = t->comm;
  if (model_task_of(cfg->model.name) == TASK_CAPTIONS)
    return caption_task_open(&t->task, cfg, c, batch, &t->s, spec, e);
  struct run_data *d = &t->data;
  if (coco_is_caption_file(cfg->data.path))
    return err_set(e, CT_ERR_USAGE,
                   "%s is a captioning file (`ctrain prepare coco`); model %s classifies images "
                   "(caption_transformer trains on captions)",
                   cfg->data.path, cfg->model.name);
  if (load_data(cfg, d, e) || model_spec_from_config(cfg, &d->info, batch, spec, e)) return e->code;
  uint64_t seed = cfg->train.seed;
  struct loader_cfg lc = loader_config(cfg, &d->info, c, batch, 1, seed);
  lc.resident = !backend_host_memory(t->ops);
  if (loader_create_sharded(&t->train_l, d->train.n, &lc, fetch_rows, &d->train, e)) return e->code;
  if (lc.resident) {
    size_t rows = (size_t)loader_batches(t->train_l) * batch;
    t->shard_images = t->ops->alloc(rows * DATASET_IMAGE_BYTES);
    t->shard_labels = t->ops->alloc(rows * sizeof(int32_t));
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
  t->task = (struct train_task){.self = t,
                                .batches = loader_batches(t->train_l),
                                .has_val = t->val_l != NULL,
                                .has_test = t->test_l != NULL,
                                .rate_key = "images_per_s",
                                .rate_unit = "img/s",
                                .begin_epoch = images_begin_epoch,
                                .next = images_next,
                                .rng_state = images_rng_state,
                                .evaluate = images_evaluate};
  return CT_OK;
}

/* Rank 0 resumes; every rank then takes its parameters, buffers, optimizer
 * state and position. */
static int trainer_resume(struct trainer *t, struct ct_err *e) {
  const struct comm *c = t->comm;
  struct graph *g = &t->s.g;
  long state[2] = {CT_OK, 0}; /* rank 0's outcome, step */
  if (c->rank == 0) state[0] = resume_rank0(t->cfg, t->s.spec.name, g, &t->opt, &state[1], e);
  if (comm_bcast(c, state, sizeof state, 0, e)) return e->code;
  if (state[0] != CT_OK)
    return c->rank == 0 ? (int)state[0]
                        : err_set(e, (int)state[0], "rank 0 could not resume (see its message)");
  size_t bytes = g->params_len * sizeof(float);
  int adam = t->opt.kind != OPTIM_SGD;
  if (bcast_backend(t, g->params, bytes, e) || bcast_view(t, &g->buffers_view, e) ||
      bcast_backend(t, t->opt.m, bytes, e) || (adam && bcast_backend(t, t->opt.v, bytes, e)) ||
      comm_bcast(c, &t->opt.step, sizeof t->opt.step, 0, e))
    return e->code;
  t->step = state[1];
  t->epoch = t->step / t->batches;
  return CT_OK;
}

/* The graph's backward hook: the gradients that became final go to the host
 * view, then to the bucketed all-reduce. */
static void grads_ready(void *user, size_t prefix) {
  struct trainer *t = user;
  host_view_pull(&t->grads, t->grads_pulled * sizeof(float),
                 (prefix - t->grads_pulled) * sizeof(float));
  t->grads_pulled = prefix;
  comm_buckets_ready(&t->buckets, prefix);
}

/* The mean of the gradients over ranks (more than one), back in the graph. */
static int allreduce_grads(struct trainer *t, struct ct_err *e) {
#ifdef CTRAIN_HAVE_CUDA
  /* On the device: the optimizer's stream waits for NCCL, the host does not. */
  if (t->nccl) return nccl_buckets_wait(&t->nccl_grads, e);
#endif
  const struct host_view *v = &t->grads;
  if (t->bucketed) {
    if (comm_buckets_wait(&t->buckets, e)) return e->code;
    t->grads_pulled = 0;
  } else {
    host_view_pull(v, 0, v->bytes);
    if (comm_allreduce_avg_f32(t->comm, v->host, t->s.g.params_len, e)) return e->code;
  }
  host_view_push(v, 0, v->bytes);
  return CT_OK;
}

/* Whether gradients and sync BN go over NCCL: the cuda backend (real or
 * emulated) on more than one rank, in a build with the CUDA backend. */
static int use_nccl(const struct trainer *t) {
#ifdef CTRAIN_HAVE_CUDA
  return t->comm->size > 1 && strcmp(t->ops->name, "cuda") == 0;
#else
  (void)t;
  return 0;
#endif
}

#ifdef CTRAIN_HAVE_CUDA
/* NCCL on the graph's device memory (comm/nccl.h): sync BN's sums and the
 * gradient mean, in buckets issued from the backward hook when bucketed,
 * else in one all-reduce after backward. */
static int trainer_setup_nccl(struct trainer *t, struct ct_err *e) {
  const struct config *cfg = t->cfg;
  struct graph *g = &t->s.g;
  if (nccl_comm_create(&t->nccl, t->comm, e)) return e->code;
  if (cfg->model.sync_bn) {
    g->ctx.reduce_sum = nccl_reduce_sum_cb;
    g->ctx.reduce_user = t->nccl;
  }
  size_t bucket = t->bucketed ? (size_t)cfg->run.bucket_kib * 1024 / sizeof(float) : g->params_len;
  nccl_buckets_init(&t->nccl_grads, t->nccl, g->grads, g->params_len, bucket);
  return t->bucketed ? graph_set_grads_hook(g, nccl_buckets_ready, &t->nccl_grads, e) : CT_OK;
}
#endif

/* MPI on host memory: sync BN's sums (host backends only), and the
 * gradients through a host view, in buckets pulled from the backward hook
 * when bucketed. */
static int trainer_setup_mpi(struct trainer *t, struct ct_err *e) {
  const struct config *cfg = t->cfg;
  const struct comm *c = t->comm;
  struct graph *g = &t->s.g;
  if (cfg->model.sync_bn) {
    g->ctx.reduce_sum = comm_reduce_sum_cb;
    g->ctx.reduce_user = (void *)c;
  }
  if (host_view_init(&t->grads, t->ops, g->grads, g->params_len * sizeof(float), e)) return e->code;
  if (t->bucketed && (comm_buckets_init(&t->buckets, c, t->grads.host, g->params_len,
                                        (size_t)cfg->run.bucket_kib * 1024 / sizeof(float), e) ||
                      graph_set_grads_hook(g, grads_ready, t, e)))
    return e->code;
  return CT_OK;
}

static int trainer_setup(struct trainer *t, struct ct_err *e) {
  const struct config *cfg = t->cfg;
  const struct comm *c = t->comm;
  int global = cfg->train.batch_size;
  if (global % c->size != 0)
    return err_set(e, CT_ERR_USAGE,
                   "train.batch_size = %d does not divide over %d ranks (make it a multiple of %d)",
                   global, c->size, c->size);
  int batch = global / c->size;
  if (c->rank == 0 && mkdir_p(cfg->run.dir, e)) return e->code;
  if (c->rank == 0 && run_lock_acquire(cfg->run.dir, &t->lock_fd, e)) return e->code;
  char sub[4200];
  snprintf(sub, sizeof sub, "%s/checkpoints", cfg->run.dir);
  if (c->rank == 0 && mkdir_p(sub, e)) return e->code;
  /* Sync BN sums the statistics where they are: MPI on host memory, NCCL
   * on cuda's device memory; another backend has neither. */
  if (cfg->model.sync_bn && c->size > 1 && !backend_host_memory(t->ops) && !use_nccl(t))
    return err_set(e, CT_ERR_USAGE,
                   "model.sync_bn over %d ranks is not available on the %s backend (set "
                   "model.sync_bn = false or run.device = cpu)",
                   c->size, t->ops->name);
  struct model_spec spec;
  if (trainer_task_open(t, batch, &spec, e)) return e->code;
  if (session_build(&t->s, t->ops, &spec, session_threads(cfg->run.threads, c), cfg->train.seed, e))
    return e->code;
  struct graph *g = &t->s.g;
  t->bucketed = strcmp(cfg->run.allreduce, "bucketed") == 0 && c->size > 1;
  if (use_nccl(t)) {
#ifdef CTRAIN_HAVE_CUDA
    if (trainer_setup_nccl(t, e)) return e->code;
#endif
  } else if (c->size > 1 && trainer_setup_mpi(t, e)) {
    return e->code;
  }
  if (optim_init(&t->opt, t->ops, cfg->train.optimizer, g->params_len, cfg->train.beta2,
                 cfg->train.eps, cfg->train.weight_decay, cfg->train.momentum, e))
    return e->code;
  t->rng_all = calloc((size_t)c->size * LOADER_RNG_WORDS, sizeof *t->rng_all);
  t->bad_all = calloc(2 * (size_t)c->size, sizeof *t->bad_all);
  if (!t->rng_all || !t->bad_all) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].out == g->loss) t->loss_node = &g->nodes[i];
  CT_CHECK(t->loss_node && t->loss_node->op == OP_CROSS_ENTROPY);
  t->score = t->ops->alloc(3 * sizeof(double));
  t->bad = t->ops->alloc(2 * sizeof(int64_t));
  if (!t->score || !t->bad) return err_set(e, CT_ERR_RUNTIME, "out of %s memory", t->ops->name);
  const int64_t none[2] = {-1, -1};
  t->ops->memset0(t->score, 3 * sizeof(double));
  t->ops->upload(t->bad, none, sizeof none);

  t->batches = t->task.batches;
  t->sched = schedule_config(cfg, (long)cfg->train.epochs * t->batches);
  if (trainer_resume(t, e)) return e->code;
  if (c->rank == 0) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg->run.dir);
    if (metrics_open(&t->m, path, e)) return e->code;
    t->m.rate_unit = t->task.rate_unit;
  }
  log_info("ctrain %s: model %s (%zu parameters) on %s, %d ranks x %d threads, batch %d (%d per "
           "rank), %ld steps per epoch, %s all-reduce%s",
           CTRAIN_VERSION, spec.name, g->params_len, t->ops->name, c->size, g->ctx.threads, global,
           batch, t->batches,
           c->size == 1  ? "no"
           : t->bucketed ? "bucketed"
                         : "blocking",
           t->nccl ? " over NCCL" : "");
  return CT_OK;
}

/* One optimizer step on the batch in the session's input tensors. Nothing
 * comes back to the host: the loss and accuracy go to t->score, a
 * non-finite loss or gradient to t->bad (trainer_check_finite). */
static int train_step(struct trainer *t, int rows, double lr, double beta1, struct ct_err *e) {
  struct graph *g = &t->s.g;
  const struct node *ce = t->loss_node;
  const float *loss = (const float *)g->tensors[g->loss].data;
  g->training = 1;
  g->step_counter = (uint64_t)t->step;
  graph_forward(g);
  g->ops->score(&g->ctx, ce->p.ce.n, ce->p.ce.classes, (const float *)g->tensors[ce->in[0]].data,
                (const int32_t *)g->tensors[ce->in[1]].data, ce->p.ce.ignore_index, loss,
                (float)rows, t->score);
  graph_backward(g);
  double t0 = now_s();
  if (t->comm->size > 1 && allreduce_grads(t, e)) return e->code;
  t->comm_s += now_s() - t0;
  t->comm_steps++;
  g->ops->grad_clip(&g->ctx, g->params_len, g->grads, (float)t->cfg->train.grad_clip, loss,
                    (int64_t)t->step, t->bad);
  optim_step(&t->opt, g->ops, &g->ctx, g->params, g->grads, lr, beta1);
  return CT_OK;
}

/* The NaN stop: fails if any rank's step has seen a non-finite loss or
 * gradient (its parameters are then no longer worth a checkpoint). */
static int trainer_check_finite(struct trainer *t, struct ct_err *e) {
  int64_t bad[2];
  t->ops->download(bad, t->bad, sizeof bad);
  /* Every rank's {step, kind} in its own slots, summed: all ranks see all. */
  const struct comm *c = t->comm;
  double *all = t->bad_all;
  memset(all, 0, 2 * (size_t)c->size * sizeof *all);
  all[2 * c->rank] = (double)bad[0];
  all[2 * c->rank + 1] = (double)bad[1];
  if (comm_allreduce_sum_f64(c, all, 2 * c->size, e)) return e->code;
  int first = -1; /* the rank with the earliest bad step */
  for (int r = 0; r < c->size; r++)
    if (all[2 * r] >= 0 && (first < 0 || all[2 * r] < all[2 * first])) first = r;
  if (first < 0) return CT_OK;
  long step = (long)all[2 * first];
  double lr, beta1;
  schedule_at(&t->sched, step, &lr, &beta1);
  return err_set(e, CT_ERR_RUNTIME,
                 "non-finite %s at step %ld (lr %.3g); stopping without writing a checkpoint",
                 all[2 * first + 1] == 1 ? "loss" : "gradient", step, lr);
}

int train_run(const struct config *cfg, const struct comm *comm, struct ct_err *e) {
  const struct ops_backend *ops;
  if (device_choose(cfg->run.device, cfg->run.tf32, comm, &ops, e)) return e->code;
  return train_run_with(cfg, comm, ops, e);
}

int train_run_with(const struct config *cfg, const struct comm *comm, const struct ops_backend *ops,
                   struct ct_err *e) {
  struct trainer t;
  memset(&t, 0, sizeof t);
  t.cfg = cfg;
  t.comm = comm;
  t.ops = ops;
  t.lock_fd = -1;
  install_stop_handlers();
  int rc = trainer_setup(&t, e);
  const long max_steps = cfg->train.max_steps, epochs = cfg->train.epochs;
  double val_acc = -1, test_acc = -1, lr = 0, beta1 = 0, loop_s = 0, save_s = 0;
  long first_step = t.step;
  int stopped = 0;
  char path[4300] = "";
  while (!rc && t.epoch < epochs && !(max_steps >= 0 && t.step >= max_steps) && !stopped) {
    long first = t.step - t.epoch * t.batches, b = first;
    if ((rc = t.task.begin_epoch(t.task.self, t.epoch, first, e))) break;
    double t0 = now_s(), tw = t0;
    /* [0] loss * rows, [1] correct, [2] predictions counted (rows, or caption
     * tokens), [3] rows, since the last log line; summed over ranks */
    double window[4] = {0, 0, 0, 0}, epoch_sums[4] = {0, 0, 0, 0};
    int rows;
    while (!rc && !(max_steps >= 0 && t.step >= max_steps) &&
           (rows = t.task.next(t.task.self)) > 0) {
      double ts = now_s();
      schedule_at(&t.sched, t.step, &lr, &beta1);
      if ((rc = train_step(&t, rows, lr, beta1, e))) break;
      loop_s += now_s() - ts;
      t.step++;
      b++;
      window[3] += rows;
      int logged = cfg->run.log_every > 0 && t.step % cfg->run.log_every == 0;
      if (logged || b == t.batches) {
        /* The one host synchronisation of the step, when a line is due. */
        if ((rc = trainer_check_finite(&t, e))) break;
        t.ops->download(window, t.score, 3 * sizeof(double));
        t.ops->memset0(t.score, 3 * sizeof(double));
        if ((rc = comm_allreduce_sum_f64(comm, window, 4, e))) break;
        for (int i = 0; i < 4; i++)
          epoch_sums[i] += window[i];
        double now = now_s(), rate = window[3] / (now - tw);
        double eta = (now - t0) / (double)(b - first) * (double)(t.batches - b);
        metrics_progress(&t.m, t.epoch + 1, epochs, b, t.batches, eta,
                         epoch_sums[0] / epoch_sums[3], epoch_sums[1] / epoch_sums[2], rate);
        if (logged) {
          struct metrics_row row = {.split = "train",
                                    .epoch = t.epoch,
                                    .step = t.step,
                                    .loss = window[0] / window[3],
                                    .acc = window[1] / window[2],
                                    .lr = lr,
                                    .rate = rate,
                                    .rate_key = t.task.rate_key};
          metrics_write(&t.m, &row);
        }
        tw = now;
        memset(window, 0, sizeof window);
      }
      int any_stop = 0;
      if ((rc = comm_any(comm, stop_requested, &any_stop, e))) break;
      if (any_stop) {
        stopped = 1;
        break;
      }
      if (cfg->run.checkpoint_every > 0 && t.step % cfg->run.checkpoint_every == 0 &&
          ((rc = trainer_check_finite(&t, e)) ||
           (rc = save_checkpoint(cfg, comm, &t.s, &t.opt, &t.task, t.step, t.batches, lr, t.rng_all,
                                 path, sizeof path, &save_s, e))))
        break;
    }
    metrics_progress_end(&t.m);
    if (rc || stopped || b < t.batches) break;
    t.epoch++;
    if (cfg->run.eval_every_epoch && t.task.has_val && (rc = trainer_eval(&t, "val", &val_acc, e)))
      break;
  }
  if (!rc && !stopped && t.task.has_test) rc = trainer_eval(&t, "test", &test_acc, e);
  if (!rc) rc = trainer_check_finite(&t, e);
  if (!rc)
    rc = save_checkpoint(cfg, comm, &t.s, &t.opt, &t.task, t.step, t.batches, lr, t.rng_all, path,
                         sizeof path, &save_s, e);
  if (!rc && stopped) log_info("checkpointed at step %ld: %s", t.step, path);
  if (!rc && !stopped) {
    if (val_acc >= 0) log_info("validation accuracy: %.2f%%", 100.0 * val_acc);
    if (test_acc >= 0) log_info("test accuracy: %.2f%%", 100.0 * test_acc);
    log_info("checkpoint: %s", path);
    log_info("checkpoint written in %.1f ms", 1e3 * save_s);
  }
  if (!rc && t.comm_steps > 0 && comm->size == 1)
    log_info("timing: %ld steps, %.2f ms per step", t.step - first_step,
             1e3 * loop_s / (double)t.comm_steps);
  else if (!rc && t.comm_steps > 0)
    log_info("timing: %ld steps, %.2f ms per step, %.3f ms of it waiting for the %s all-reduce",
             t.step - first_step, 1e3 * loop_s / (double)t.comm_steps,
             1e3 * t.comm_s / (double)t.comm_steps, t.bucketed ? "bucketed" : "blocking");
  if (t.task.free) t.task.free(t.task.self);
  trainer_free(&t);
  return rc;
}
