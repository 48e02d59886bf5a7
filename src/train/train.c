/* train.c — the training loop: data, graph, comm, optimizer, schedule,
 * checkpoints and metrics, wired together. */
#include "train/train.h"

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
#include "ckpt/ckpt_dir.h"
#include "comm/device.h"
#include "comm/reducer.h"
#include "core/log.h"
#include "data/coco.h"
#include "data/dataset.h"
#include "optim/optim.h"
#include "optim/schedule.h"
#include "train/captioning.h"
#include "train/images.h"
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

/* Rank 0's part of a checkpoint: the file, then `latest` and rotation. */
static int write_checkpoint(const struct config *cfg, const struct session *s,
                            const struct optimizer *o, long step, long batches, double lr,
                            long ranks, const uint64_t *rng_all, char *path_out, size_t path_len,
                            double *save_s, struct ct_err *e) {
  struct ckpt_meta *meta = calloc(1, sizeof *meta);
  if (!meta) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  snprintf(meta->model, sizeof meta->model, "%s", s->spec.name);
  meta->num_classes = s->spec.num_classes;
  meta->step = step;
  meta->epoch = step / batches;
  meta->epoch_batch = step % batches;
  meta->lr = lr;
  meta->world_size = ranks;
  config_write(cfg, meta->config, sizeof meta->config);
  ckpt_dir_step_path(path_out, path_len, cfg->run.dir, step);
  double t0 = now_s();
  int rc = ckpt_save(path_out, &s->g, o, meta, rng_all, LOADER_RNG_WORDS, e);
  free(meta);
  if (rc) return rc;
  *save_s = now_s() - t0;
  return ckpt_dir_commit(cfg->run.dir, step, cfg->run.keep, e);
}

/* Collective: rank 0 gathers every rank's random state and writes; every
 * rank learns the outcome, so a full disk ends all of them cleanly. */
static int save_checkpoint(const struct config *cfg, const struct comm *c, const struct session *s,
                           const struct optimizer *o, const struct train_task *task, long step,
                           long batches, double lr, uint64_t *rng_all, char *path_out,
                           size_t path_len, double *save_s, struct ct_err *e) {
  uint64_t rng[LOADER_RNG_WORDS];
  task->rng_state(task->self, rng);
  if (comm_gather_u64(c, rng, LOADER_RNG_WORDS, rng_all, e)) return e->code;
  int rc = CT_OK;
  if (c->rank == 0)
    rc = write_checkpoint(cfg, s, o, step, batches, lr, c->size, rng_all, path_out, path_len,
                          save_s, e);
  if (c->size == 1) return rc;
  if (comm_bcast(c, &rc, sizeof rc, 0, e)) return e->code;
  if (rc && c->rank != 0)
    err_set(e, rc, "rank 0 could not write the checkpoint of step %ld (see its message)", step);
  return rc ? err_everywhere(e) : CT_OK;
}

struct trainer {
  const struct config *cfg;
  const struct comm *comm;
  const struct ops_backend *ops;
  struct session s;
  struct optimizer opt;
  struct schedule sched;
  struct train_task task; /* the data: images or captions */
  struct metrics m;
  int lock_fd;        /* rank 0: run.dir/.lock, -1 elsewhere */
  struct reducer red; /* gradients, sync BN and broadcasts between ranks */
  uint64_t *rng_all;  /* every rank's loader state, gathered for checkpoints */
  /* The resumed checkpoint's data order (every rank) and path (rank 0);
   * check_rng until the first resumed epoch has begun. */
  uint64_t resume_rng[LOADER_RNG_WORDS];
  char resume_path[4300];
  int check_rng;
  /* Backend memory the step writes instead of returning to the host, read
   * only when a log line, a checkpoint or the end asks: the loss node's
   * score since the last read (weight * loss, correct, counted) and the
   * first non-finite step (bad = {step, 1 loss / 2 gradient}, -1: none). */
  double *score;
  int64_t *bad;
  int64_t *dev_step; /* the step, uploaded before each: what bad records */
  double *bad_all;   /* host: every rank's bad, 2 per rank */
  /* run.cuda_graph: a full batch's step, captured at the second full step
   * (the first warms up: cuBLAS and lazily loaded kernels allocate) and
   * replayed after; partial batches run eagerly. */
  int graph_wanted, rows_full, warm;
  void *graph;
  long step, epoch, batches;
  double comm_s; /* seconds waiting for the gradient all-reduce */
  long comm_steps;
};

static void trainer_free(struct trainer *t) {
  run_lock_release(t->lock_fd);
  if (t->graph) t->ops->graph_free(t->ops, t->graph);
  optim_free(&t->opt);
  reducer_free(&t->red); /* finishes its collectives on the graph's memory */
  session_free(&t->s);
  metrics_close(&t->m);
  if (t->score) t->ops->release(t->ops, t->score);
  if (t->bad) t->ops->release(t->ops, t->bad);
  if (t->dev_step) t->ops->release(t->ops, t->dev_step);
  free(t->rng_all);
  free(t->bad_all);
}

/* Without sync BN each rank's running statistics follow its own batches;
 * like DDP, rank 0's are the model's (the checkpoint holds them), so they
 * are what every rank evaluates with. */
static int trainer_eval(struct trainer *t, const char *split, double *acc, struct ct_err *e) {
  struct graph *g = &t->s.g;
  if (!t->cfg->model.sync_bn && reducer_bcast(&t->red, g->buffers, g->buffers_view.bytes, e))
    return e->code;
  struct metrics_row row = {split, t->epoch, t->step, 0, 0, -1, -1, NULL, NULL};
  if (t->task.evaluate(t->task.self, split, &row, e)) return e->code;
  metrics_write(&t->m, &row);
  *acc = row.acc;
  return CT_OK;
}

/* The task for cfg's model: captioning (captioning.h) or images
 * (images.h). Fills the spec of the graph. */
static int trainer_task_open(struct trainer *t, int batch, struct model_spec *spec,
                             struct ct_err *e) {
  if (model_task_of(t->cfg->model.name) == TASK_CAPTIONS)
    return caption_task_open(&t->task, t->cfg, t->comm, batch, &t->s, spec, e);
  return image_task_open(&t->task, t->cfg, t->comm, t->ops, batch, &t->s, spec, e);
}

/* Rank 0, resuming from `path`: one line naming the settings that differ
 * from those it was saved under (another train.lr or train.epochs is the
 * user's choice; another train.seed is refused at the first epoch). */
static void log_changed_settings(const struct config *cfg, const char *path) {
  struct session_ckpt *k = NULL;
  struct ct_err e = {0};
  char keys[1024];
  if (session_ckpt_read(path, &k, &e)) {
    log_info("resuming: %s", e.msg);
    return;
  }
  int n = config_diff(&k->cfg, cfg, keys, sizeof keys);
  if (n)
    log_info("resuming with %d setting%s changed since the checkpoint: %s", n, n > 1 ? "s" : "",
             keys);
  free(k);
}

/* Rank 0 resumes; every rank then takes its parameters, buffers, optimizer
 * state, position and the saved data order (checked at the first epoch). */
static int trainer_resume(struct trainer *t, struct ct_err *e) {
  const struct comm *c = t->comm;
  const struct config *cfg = t->cfg;
  struct graph *g = &t->s.g;
  long state[3] = {CT_OK, 0, 0}; /* rank 0's outcome, step, whether it loaded a checkpoint */
  if (c->rank == 0) {
    struct ckpt_resume *r = malloc(sizeof *r);
    if (!r)
      state[0] = err_set(e, CT_ERR_RUNTIME, "out of memory");
    else
      state[0] = ckpt_dir_resume(cfg->run.dir, cfg->run.resume, t->s.spec.name, g, &t->opt,
                                 LOADER_RNG_WORDS, r, e);
    if (r && state[0] == CT_OK) {
      state[1] = r->step;
      state[2] = r->path[0] != '\0';
      memcpy(t->resume_rng, r->rng, sizeof t->resume_rng);
      snprintf(t->resume_path, sizeof t->resume_path, "%s", r->path);
      if (r->path[0]) log_changed_settings(cfg, r->path);
    }
    free(r);
  }
  if (comm_bcast(c, state, sizeof state, 0, e)) return e->code;
  if (state[0] != CT_OK) {
    if (c->rank != 0) err_set(e, (int)state[0], "rank 0 could not resume (see its message)");
    return err_everywhere(e);
  }
  size_t bytes = g->params_len * sizeof(float);
  int adam = t->opt.kind != OPTIM_SGD;
  struct reducer *r = &t->red;
  if (reducer_bcast(r, g->params, bytes, e) ||
      reducer_bcast(r, g->buffers, g->buffers_view.bytes, e) ||
      reducer_bcast(r, t->opt.m, bytes, e) || (adam && reducer_bcast(r, t->opt.v, bytes, e)) ||
      comm_bcast(c, &t->opt.step, sizeof t->opt.step, 0, e) ||
      comm_bcast(c, t->resume_rng, sizeof t->resume_rng, 0, e))
    return e->code;
  t->step = state[1];
  t->epoch = t->step / t->batches;
  t->check_rng = (int)state[2];
  return CT_OK;
}

/* After the resumed epoch began: the task's data order must be the one the
 * checkpoint saved, or the run would not continue the saved one. Positions
 * compare as global batch indices, since a checkpoint at the end of epoch E
 * saved (E, batches) and the resumed run stands at (E + 1, 0); the
 * augmentation key belongs to an epoch, so it compares only within one. */
static int trainer_check_rng(struct trainer *t, struct ct_err *e) {
  uint64_t now[LOADER_RNG_WORDS];
  const uint64_t *was = t->resume_rng;
  t->task.rng_state(t->task.self, now);
  const long nb = t->batches;
  long pos_was = (long)was[2] * nb + (long)was[3], pos_now = (long)now[2] * nb + (long)now[3];
  const char *path = t->comm->rank == 0 ? t->resume_path : "the checkpoint";
  t->check_rng = 0;
  if (was[0] != now[0])
    err_set(e, CT_ERR_USAGE,
            "%s was trained with another data order (train.seed differs from the checkpoint's "
            "config): set it back, or set run.resume = none or a new run.dir",
            path);
  else if (pos_was != pos_now || (was[2] == now[2] && was[1] != now[1]))
    err_set(e, CT_ERR_USAGE,
            "%s saved the data position epoch %llu batch %llu, this run resumes at epoch %llu "
            "batch %llu of %ld (did train.batch_size or the data change?)",
            path, (unsigned long long)was[2], (unsigned long long)was[3],
            (unsigned long long)now[2], (unsigned long long)now[3], nb);
  else
    return CT_OK;
  return err_everywhere(e);
}

static int trainer_setup(struct trainer *t, struct ct_err *e) {
  const struct config *cfg = t->cfg;
  const struct comm *c = t->comm;
  /* Before the first collective, and before NCCL, which takes it too. */
  comm_set_timeout(c, cfg->run.comm_timeout_s);
  int batch;
  if (spec_rank_batch(cfg, c->size, 1, &batch, e)) return e->code;
  if (c->rank == 0 && mkdir_p(cfg->run.dir, e)) return e->code;
  if (c->rank == 0 && run_lock_acquire(cfg->run.dir, &t->lock_fd, e)) return e->code;
  char sub[4200];
  snprintf(sub, sizeof sub, "%s/checkpoints", cfg->run.dir);
  if (c->rank == 0 && mkdir_p(sub, e)) return e->code;
  int on_device;
  if (reducer_choose(cfg->run.collectives, c, t->ops, &on_device, e)) return e->code;
  struct model_spec spec;
  if (trainer_task_open(t, batch, &spec, e)) return e->code;
  if (session_build(&t->s, t->ops, &spec, session_threads(cfg->run.threads, c), cfg->train.seed, e))
    return e->code;
  struct graph *g = &t->s.g;
  /* Sync BN sums the statistics where they are, and the gradients are
   * averaged as backward makes them final when bucketed. */
  int bucketed = strcmp(cfg->run.allreduce, "bucketed") == 0;
  if (reducer_init(&t->red, c, t->ops, backend_host_memory(t->ops), on_device, g->grads,
                   g->params_len, bucketed, (size_t)cfg->run.bucket_kib * 1024 / sizeof(float), e))
    return e->code;
  if (cfg->model.sync_bn && c->size > 1 &&
      reducer_sync_bn(&t->red, g->ctx.scratch_len * sizeof(float), &g->ctx.reduce_sum,
                      &g->ctx.reduce_user, e))
    return e->code;
  if (t->red.bucketed && graph_set_grads_hook(g, reducer_ready, &t->red, e)) return e->code;
  if (optim_init(&t->opt, t->ops, cfg->train.optimizer, g->params_len, cfg->train.beta2,
                 cfg->train.eps, cfg->train.weight_decay, cfg->train.momentum, e))
    return e->code;
  t->rng_all = calloc((size_t)c->size * LOADER_RNG_WORDS, sizeof *t->rng_all);
  t->bad_all = calloc(2 * (size_t)c->size, sizeof *t->bad_all);
  if (!t->rng_all || !t->bad_all) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  t->score = t->ops->alloc(t->ops, 3 * sizeof(double));
  t->bad = t->ops->alloc(t->ops, 2 * sizeof(int64_t));
  t->dev_step = t->ops->alloc(t->ops, sizeof(int64_t));
  if (!t->score || !t->bad || !t->dev_step)
    return err_set(e, CT_ERR_RUNTIME, "out of %s memory", t->ops->name);
  const int64_t none[2] = {-1, -1};
  t->ops->memset0(t->ops, t->score, 3 * sizeof(double));
  t->ops->upload(t->ops, t->bad, none, sizeof none);

  /* A graph replays kernels with their captured arguments: dropout's
   * random stream moves with the step, and the MPI path copies through the
   * host, so neither can be replayed. */
  t->rows_full = batch;
  t->graph_wanted = cfg->run.cuda_graph && t->ops->graph_capture_begin &&
                    (c->size == 1 || on_device) && !graph_draws(g);
  if (cfg->run.cuda_graph && t->ops->graph_capture_begin && !t->graph_wanted)
    log_info("run.cuda_graph: off: %s", graph_draws(g)
                                            ? "the model draws dropout each step"
                                            : "collectives over MPI copy through the host");
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
           "rank), %ld steps per epoch, %s",
           CTRAIN_VERSION, spec.name, g->params_count, t->ops->name, c->size, g->ctx.threads,
           cfg->train.batch_size, batch, t->batches, reducer_describe(&t->red));
  if (c->size > 1) {
    char where[1024];
    if (comm_placement(c, where, sizeof where, e)) return e->code;
    log_info("placement: %s", where);
  }
  return CT_OK;
}

/* One optimizer step on the batch in the session's input tensors. Nothing
 * comes back to the host: the loss and accuracy go to t->score, a
 * non-finite loss or gradient to t->bad (trainer_check_finite). */
static int step_work(struct trainer *t, int rows, struct ct_err *e) {
  struct graph *g = &t->s.g;
  const float *loss = (const float *)g->tensors[g->loss].data;
  graph_forward(g);
  session_score(&t->s, (float)rows, t->score);
  graph_backward(g);
  double t0 = now_s();
  if (reducer_wait(&t->red, e)) return e->code;
  t->comm_s += now_s() - t0;
  t->comm_steps++;
  g->ops->grad_clip(&g->ctx, g->params_len, g->grads, (float)t->cfg->train.grad_clip, loss,
                    t->dev_step, t->bad);
  optim_apply(&t->opt, &g->ctx, g->params, g->grads);
  return CT_OK;
}

/* The step recorded as a graph and launched (recording ran nothing). A
 * capture the backend refuses turns run.cuda_graph off, and the step runs
 * eagerly. */
static int capture_step(struct trainer *t, int rows, struct ct_err *e) {
  const struct ops_backend *o = t->ops;
  char msg[256];
  void *graph = NULL;
  int failed = o->graph_capture_begin(o, msg, sizeof msg);
  if (!failed) {
    int rc = step_work(t, rows, e);
    failed = o->graph_capture_end(o, &graph, msg, sizeof msg);
    if (rc) {
      if (!failed) o->graph_free(o, graph);
      return rc;
    }
  }
  if (failed) {
    log_info("run.cuda_graph: off: the training step could not be captured (%s)", msg);
    t->graph_wanted = 0;
    return step_work(t, rows, e);
  }
  t->graph = graph;
  log_info("run.cuda_graph: the training step is a CUDA Graph from step %ld on", t->step + 1);
  if (o->graph_launch(o, graph, msg, sizeof msg))
    return err_set(e, CT_ERR_RUNTIME, "run.cuda_graph: %s", msg);
  return CT_OK;
}

static int train_step(struct trainer *t, int rows, double lr, double beta1, struct ct_err *e) {
  struct graph *g = &t->s.g;
  g->training = 1;
  g->step_counter = (uint64_t)t->step;
  /* the scalars that change each step, in backend memory for a replay */
  optim_prepare(&t->opt, lr, beta1);
  const int64_t step = t->step;
  t->ops->upload_async(t->ops, t->dev_step, &step, sizeof step);
  int full = rows == t->rows_full;
  char msg[256];
  if (full && t->graph) {
    if (t->ops->graph_launch(t->ops, t->graph, msg, sizeof msg))
      return err_set(e, CT_ERR_RUNTIME, "run.cuda_graph: %s", msg);
    return CT_OK;
  }
  if (full && t->graph_wanted && t->warm) return capture_step(t, rows, e);
  t->warm |= full;
  return step_work(t, rows, e);
}

/* The NaN stop: fails if any rank's step has seen a non-finite loss or
 * gradient (its parameters are then no longer worth a checkpoint). */
static int trainer_check_finite(struct trainer *t, struct ct_err *e) {
  int64_t bad[2];
  /* Every host synchronisation starts here: a download behind a collective
   * that never ends would hang, so the collectives finish by the deadline
   * first. */
  if (reducer_check(&t->red, e)) return e->code;
  t->ops->download(t->ops, bad, t->bad, sizeof bad);
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
  int rc = train_run_with(cfg, comm, ops, e);
  device_release(ops);
  return rc;
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
    if (t.check_rng && (rc = trainer_check_rng(&t, e))) break;
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
        t.ops->download(t.ops, window, t.score, 3 * sizeof(double));
        t.ops->memset0(t.ops, t.score, 3 * sizeof(double));
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
    log_info("timing: %ld steps, %.2f ms per step, %.3f ms of it waiting for the %s",
             t.step - first_step, 1e3 * loop_s / (double)t.comm_steps,
             1e3 * t.comm_s / (double)t.comm_steps, reducer_describe(&t.red));
  if (t.task.free) t.task.free(t.task.self);
  trainer_free(&t);
  return rc;
}
