/* bench_step — ctrain's side of the speed benchmark: training-step and
 * inference images/s of a model on random data (no loader), peak RSS, and
 * with --profile the time per node kind. The architecture (ViT widths and
 * depths, ...) is the recipe's: the [model] section of configs/MODEL.ini,
 * read from the working directory (tests/bench/run.sh runs in the repo).
 * usage: bench_step MODEL BATCH THREADS STEPS [--profile] */
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

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_step MODEL BATCH THREADS STEPS\n");
    return 2;
  }
  int threads = atoi(argv[3]), steps = atoi(argv[4]);
  struct ct_err e = {0};
  char path[256];
  snprintf(path, sizeof path, "configs/%s.ini", argv[1]);
  static struct config cfg;
  config_defaults(&cfg);
  struct dataset_info info = {.num_classes = 10};
  struct model_spec spec;
  struct session s;
  struct optimizer o;
  if (config_load_file(&cfg, path, &e) ||
      model_spec_from_config(&cfg, &info, atoi(argv[2]), &spec, &e) ||
      session_build(&s, ops_cpu(), &spec, threads, 1, &e) ||
      optim_init(&o, s.g.ops, "adam", s.g.params_len, 0.999, 1e-8, 0, 0, &e)) {
    fprintf(stderr, "bench_step: %s\n", e.msg);
    return 1;
  }
  struct graph *g = &s.g;
  float *x = tensor_f32(g, s.io.input);
  int32_t *y = (int32_t *)g->tensors[s.io.labels].data;
  for (size_t i = 0; i < g->tensors[s.io.input].numel; i++)
    x[i] = 2 * ops_rng_uniform(5, 0, i) - 1;
  for (int i = 0; i < spec.batch; i++)
    y[i] = i % 10;

  g->training = 1;
  for (int i = 0; i < 3; i++) {
    graph_forward(g);
    graph_backward(g);
    optim_step(&o, g->ops, &g->ctx, g->params, g->grads, 1e-3, 0.9);
  }
  double t0 = now_s();
  for (int i = 0; i < steps; i++) {
    graph_forward(g);
    graph_backward(g);
    optim_step(&o, g->ops, &g->ctx, g->params, g->grads, 1e-3, 0.9);
  }
  double train_s = now_s() - t0;
  g->training = 0;
  t0 = now_s();
  for (int i = 0; i < steps; i++)
    graph_forward(g);
  double infer_s = now_s() - t0;
  if (argc > 5 && strcmp(argv[5], "--profile") == 0) {
    double fwd[OP_KINDS] = {0}, bwd[OP_KINDS] = {0};
    g->training = 1;
    for (int it = 0; it < steps; it++) {
      for (int i = 0; i < g->nnodes; i++) {
        double t = now_s();
        graph_node_forward(g, i);
        fwd[g->nodes[i].op] += now_s() - t;
      }
      graph_zero_grads(g);
      for (int i = g->nnodes - 1; i >= 0; i--) {
        double t = now_s();
        if (g->tensors[g->nodes[i].out].needs_grad) graph_node_backward(g, i);
        bwd[g->nodes[i].op] += now_s() - t;
      }
    }
    for (int k = 0; k < OP_KINDS; k++)
      if (fwd[k] + bwd[k] > 0)
        fprintf(stderr, "%-14s fwd %7.2f ms  bwd %7.2f ms per step\n", graph_op_name(k),
                1e3 * fwd[k] / steps, 1e3 * bwd[k] / steps);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"impl\":\"ctrain\",\"model\":\"%s\",\"batch\":%d,\"threads\":%d,"
         "\"train_images_per_s\":%.1f,\"infer_images_per_s\":%.1f,\"peak_rss_mb\":%.1f}\n",
         spec.name, spec.batch, threads, steps * spec.batch / train_s, steps * spec.batch / infer_s,
         ru.ru_maxrss / 1024.0);
  optim_free(&o);
  session_free(&s);
  return 0;
}
