/* bench_step — ctrain's side of the speed benchmark: training-step and
 * inference images/s of a model on random data (no loader), peak RSS, and
 * with --profile the time per node kind (on cuda, device time between CUDA
 * events around each node). The architecture (ViT widths and depths, ...)
 * is the recipe's: the [model] section of configs/MODEL.ini, read from the
 * working directory (tests/bench/run.sh runs in the repo). It tunes its
 * environment as `ctrain` does (OpenBLAS core, OpenMP spinning).
 * usage: bench_step MODEL BATCH THREADS STEPS [--profile] [--device cpu|cuda] [--tf32] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/env.h"
#include "config/config.h"
#include "kernels/ops_shared.h"
#include "optim/optim.h"
#include "train/session.h"
#include "train/spec.h"
#ifdef CTRAIN_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

struct opts {
  const char *model, *device;
  int batch, threads, steps, profile, tf32;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse(int argc, char **argv, struct opts *o) {
  if (argc < 5) return -1;
  *o = (struct opts){argv[1], "cpu", atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 0, 0};
  for (int i = 5; i < argc; i++) {
    if (strcmp(argv[i], "--profile") == 0)
      o->profile = 1;
    else if (strcmp(argv[i], "--tf32") == 0)
      o->tf32 = 1;
    else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc)
      o->device = argv[++i];
    else
      return -1;
  }
  return o->batch > 0 && o->threads >= 0 && o->steps > 0 ? 0 : -1;
}

static const struct ops_backend *open_device(const struct opts *o) {
  if (strcmp(o->device, "cpu") == 0) return ops_cpu();
#ifdef CTRAIN_HAVE_CUDA
  if (strcmp(o->device, "cuda") == 0) {
    char msg[256];
    const struct ops_backend *be = NULL;
    if (cuda_backend_probe(msg, sizeof msg) == 0 && cuda_backend_select(0, msg, sizeof msg) >= 0)
      be = cuda_backend_open(o->tf32, msg, sizeof msg);
    if (!be) fprintf(stderr, "bench_step: --device cuda: %s\n", msg);
    return be;
  }
#endif
  fprintf(stderr, "bench_step: --device %s: not a device of this build\n", o->device);
  return NULL;
}

/* The work is done (the stream drained) once a result is back on the host. */
static void finish(struct graph *g, int tensor) {
  float v;
  g->ops->download(g->ops, &v, g->tensors[tensor].data, sizeof v);
}

static void train_step(struct graph *g, struct optimizer *o) {
  graph_forward(g);
  graph_backward(g);
  optim_step(o, &g->ctx, g->params, g->grads, 1e-3, 0.9);
}

struct node_call {
  struct graph *g;
  int node, backward;
};
static void node_issue(void *arg) {
  const struct node_call *c = arg;
  if (c->backward)
    graph_node_backward(c->g, c->node);
  else
    graph_node_forward(c->g, c->node);
}

/* Seconds node `i` takes: device time on cuda, wall time on cpu. */
static double node_seconds(struct graph *g, int i, int backward) {
  struct node_call c = {g, i, backward};
#ifdef CTRAIN_HAVE_CUDA
  if (strcmp(g->ops->name, "cuda") == 0) return 1e-3 * cuda_backend_time_ms(g->ops, node_issue, &c);
#endif
  double t = now_s();
  node_issue(&c);
  return now_s() - t;
}

static void profile(struct graph *g, int steps) {
  double fwd[OP_KINDS] = {0}, bwd[OP_KINDS] = {0};
  g->training = 1;
  for (int it = 0; it < steps; it++) {
    for (int i = 0; i < g->nnodes; i++)
      fwd[g->nodes[i].op] += node_seconds(g, i, 0);
    graph_zero_grads(g);
    for (int i = g->nnodes - 1; i >= 0; i--)
      if (g->tensors[g->nodes[i].out].needs_grad) bwd[g->nodes[i].op] += node_seconds(g, i, 1);
  }
  for (int k = 0; k < OP_KINDS; k++)
    if (fwd[k] + bwd[k] > 0)
      fprintf(stderr, "%-14s fwd %7.3f ms  bwd %7.3f ms per step\n", graph_op_name(k),
              1e3 * fwd[k] / steps, 1e3 * bwd[k] / steps);
}

/* Random images in [-1, 1) and labels, uploaded through host buffers. */
static int fill_inputs(struct session *s, struct ct_err *e) {
  struct graph *g = &s->g;
  size_t n = g->tensors[s->io.input].numel, b = (size_t)s->spec.batch;
  float *x = malloc(n * sizeof *x);
  int32_t *y = malloc(b * sizeof *y);
  if (!x || !y) {
    free(x);
    free(y);
    return err_set(e, CT_ERR_RUNTIME, "out of memory for the inputs");
  }
  for (size_t i = 0; i < n; i++)
    x[i] = 2 * ops_rng_uniform(5, 0, i) - 1;
  for (size_t i = 0; i < b; i++)
    y[i] = (int32_t)(i % 10);
  g->ops->upload(g->ops, g->tensors[s->io.input].data, x, n * sizeof *x);
  g->ops->upload(g->ops, g->tensors[s->io.labels].data, y, b * sizeof *y);
  free(x);
  free(y);
  return CT_OK;
}

int main(int argc, char **argv) {
  env_tune_and_reexec(argv);
  struct opts o;
  if (parse(argc, argv, &o)) {
    fprintf(stderr, "usage: bench_step MODEL BATCH THREADS STEPS [--profile] [--device cpu|cuda] "
                    "[--tf32]\n");
    return 2;
  }
  const struct ops_backend *ops = open_device(&o);
  if (!ops) return 1;
  struct ct_err e = {0};
  char path[256];
  snprintf(path, sizeof path, "configs/%s.ini", o.model);
  static struct config cfg;
  config_defaults(&cfg);
  struct dataset_info info = {.num_classes = 10};
  struct model_spec spec;
  struct session s;
  struct optimizer opt;
  if (config_load_file(&cfg, path, &e) || model_spec_from_config(&cfg, &info, o.batch, &spec, &e) ||
      session_build(&s, ops, &spec, o.threads, 1, &e) || fill_inputs(&s, &e) ||
      optim_init(&opt, ops, "adam", s.g.params_len, 0.999, 1e-8, 0, 0, &e)) {
    fprintf(stderr, "bench_step: %s\n", e.msg);
    return 1;
  }
  struct graph *g = &s.g;
  g->training = 1;
  for (int i = 0; i < 3; i++)
    train_step(g, &opt);
  finish(g, s.io.loss);
  double t0 = now_s();
  for (int i = 0; i < o.steps; i++)
    train_step(g, &opt);
  finish(g, s.io.loss);
  double train_s = now_s() - t0;
  g->training = 0;
  t0 = now_s();
  for (int i = 0; i < o.steps; i++)
    graph_forward(g);
  finish(g, s.io.logits);
  double infer_s = now_s() - t0;
  if (o.profile) profile(g, o.steps);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"impl\":\"ctrain\",\"model\":\"%s\",\"device\":\"%s\",\"tf32\":%d,\"batch\":%d,"
         "\"threads\":%d,\"train_images_per_s\":%.1f,\"infer_images_per_s\":%.1f,"
         "\"peak_rss_mb\":%.1f}\n",
         spec.name, ops->name, o.tf32, spec.batch, o.threads, o.steps * spec.batch / train_s,
         o.steps * spec.batch / infer_s, ru.ru_maxrss / 1024.0);
  optim_free(&opt);
  session_free(&s);
#ifdef CTRAIN_HAVE_CUDA
  if (ops != ops_cpu()) cuda_backend_close(ops);
#endif
  return 0;
}
