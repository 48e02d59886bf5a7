/* test_cuda_budget.c — launch and cuBLAS budgets of a training step, counted
 * by the emulator (emu_stats.h), so that a regression to per-image loops
 * fails CI without a GPU.
 *
 * For each recipe's model (configs/MODEL.ini; cnn_early, cnn_late,
 * cnn_double and resnet10_attn are left out for the emulator's time: they
 * are cnn_vanilla's and resnet10's blocks with attention, which vit,
 * conv_vit and the captioning model cover), one step — forward, backward
 * and the Adam update — on the emulated CUDA backend at a batch of B and of
 * 2B. Asserted:
 * - kernel launches and cuBLAS calls do not grow with the batch (equal at B
 *   and 2B): at CIFAR sizes launch overhead is a step's main cost on a GPU,
 *   and a loop over images multiplies it by the batch;
 * - cuBLAS calls stay within 3 per weight matrix (conv and linear weights:
 *   forward, the input's and the weight's gradient) plus, per attention
 *   layer, 6 per head (S = QK^T and PV forward, unless the fused kernel
 *   takes the tile; dV, dP, dQ, dK backward): the products the maths needs,
 *   one call each;
 * - kernel launches stay within the stated per-model budget (measured when
 *   the budgets were set, plus ~10 % for new work), and the step copies
 *   nothing between host and device;
 * - the same step captured as a CUDA Graph (ops.h's graph_capture_begin)
 *   is one graph launch, with no kernel launch or cuBLAS call of its own.
 * The counts are printed for docs/gpu.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "device_required.h"
#include "graph/graph.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/emu/emu_stats.h"
#include "kernels/ops_shared.h"
#include "models/models.h"
#include "train/spec.h"

struct budget {
  const char *model;
  int batch;    /* B; the step also runs at 2B */
  int launches; /* kernel launches per step, at most */
};

/* Batches small enough for the emulator; the counts do not depend on them.
 * Launch budgets: measured when set (61, 34, 21, 124, 207, 129, 114) plus
 * ~10 %. */
static const struct budget budgets[] = {
    {"attn_cnn", 1, 67},
    {"ultimus", 1, 38},
    {"cnn_vanilla", 1, 24},
    {"resnet10", 1, 137},
    {"vit", 1, 228},
    {"conv_vit", 1, 142},
    {"caption_transformer", 1, 125},
};

struct counts {
  struct emu_stats st, graph; /* the step; one launch of it captured */
  int weights;                /* weight matrices: parameters of 2 or more dimensions */
  int attn_gemm;              /* 6 per head per attention layer */
};

/* Forward, backward and the Adam update. */
static void one_step(const struct ops_backend *ops, struct graph *g, float *m, float *v,
                     const float *hyper) {
  graph_forward(g);
  graph_backward(g);
  ops->adam_step(&g->ctx, g->params_len, g->params, g->grads, m, v, hyper, 0.999f, 1e-8f, 0.0f, 0);
}

/* One launch of the step captured as a CUDA Graph, counted into *st. */
static int captured_counts(const struct ops_backend *ops, struct graph *g, float *m, float *v,
                           float *hyper, const char *model, struct emu_stats *st) {
  char msg[256];
  void *captured = NULL;
  if (ops->graph_capture_begin(ops, msg, sizeof msg)) {
    fprintf(stderr, "FAIL %s: %s\n", model, msg);
    return 1;
  }
  one_step(ops, g, m, v, hyper);
  if (ops->graph_capture_end(ops, &captured, msg, sizeof msg)) {
    fprintf(stderr, "FAIL %s: %s\n", model, msg);
    return 1;
  }
  emu_stats_reset();
  int rc = ops->graph_launch(ops, captured, msg, sizeof msg);
  float h[OPS_HYPER_LEN];
  ops->download(ops, h, hyper, sizeof h); /* the launch has run */
  emu_stats_get(st);
  ops->graph_free(ops, captured);
  if (rc) fprintf(stderr, "FAIL %s: %s\n", model, msg);
  return rc ? 1 : 0;
}

/* The step's counts in out->st; with `graph`, also those of one launch of
 * it captured, in out->graph. */
static int step_counts(const struct ops_backend *ops, const char *src, const char *model, int batch,
                       int graph, struct counts *out) {
  char ini[4200];
  snprintf(ini, sizeof ini, "%s/configs/%s.ini", src, model);
  struct config *cfg = malloc(sizeof *cfg);
  struct ct_err e = {0};
  config_defaults(cfg);
  struct dataset_info info = {.num_classes = 10};
  struct model_spec spec;
  struct graph g;
  struct model_io io;
  /* captioning: a CS231n-sized vocabulary and features (the counts do not
   * depend on them) and the config's caption width */
  struct coco_info coco = {.vocab_size = 1004, .feature_dim = 512};
  int rc = config_load_file(cfg, ini, &e);
  coco.max_length = cfg->model.max_length;
  if (!rc)
    rc = strcmp(model, "caption_transformer") == 0
             ? model_spec_caption(cfg, &coco, batch, &spec, &e)
             : model_spec_from_config(cfg, &info, batch, &spec, &e);
  if (rc) {
    fprintf(stderr, "FAIL %s: %s\n", model, e.msg);
    free(cfg);
    return 1;
  }
  free(cfg);
  graph_init(&g, ops, 1, 7);
  if (model_build(&g, &spec, &io, &e) || graph_plan(&g, &e)) {
    fprintf(stderr, "FAIL %s: %s\n", model, e.msg);
    return 1;
  }
  memset(out, 0, sizeof *out);
  for (int t = 0; t < g.ntensors; t++) {
    const struct tensor *x = &g.tensors[t];
    if (x->kind == TK_PARAM && x->view_of < 0 && x->ndim >= 2) out->weights++;
  }
  for (int n = 0; n < g.nnodes; n++)
    if (g.nodes[n].op == OP_ATTENTION) out->attn_gemm += 6 * g.nodes[n].p.attn.h;
  size_t np = g.params_len;
  float *m = ops->alloc(ops, np * sizeof(float)), *v = ops->alloc(ops, np * sizeof(float));
  float h[OPS_HYPER_LEN], *hyper = ops->alloc(ops, sizeof h);
  ops_adam_hyper(1e-3f, 0.9f, 0.999f, 1, h);
  ops->upload(ops, hyper, h, sizeof h);
  ops->memset0(ops, m, np * sizeof(float));
  ops->memset0(ops, v, np * sizeof(float));
  ops->memset0(ops, g.tensors[io.input].data, g.tensors[io.input].numel * sizeof(float));
  /* labels (and caption tokens) 1: a class, and a caption word that counts */
  int ids[] = {io.labels, io.tokens};
  for (int k = 0; k < 2; k++) {
    if (ids[k] < 0) continue;
    size_t nl = g.tensors[ids[k]].numel;
    int32_t *one = malloc(nl * sizeof *one);
    for (size_t i = 0; i < nl; i++)
      one[i] = 1;
    ops->upload(ops, g.tensors[ids[k]].data, one, nl * sizeof *one);
    free(one);
  }
  g.training = 1;
  g.step_counter = 1;
  emu_stats_reset();
  one_step(ops, &g, m, v, hyper);
  emu_stats_get(&out->st);
  rc = graph ? captured_counts(ops, &g, m, v, hyper, model, &out->graph) : 0;
  ops->release(ops, m);
  ops->release(ops, v);
  ops->release(ops, hyper);
  graph_free(&g);
  return rc;
}

int main(int argc, char **argv) {
  device_required();
  if (argc != 2) {
    fprintf(stderr, "usage: test_cuda_budget SOURCE_DIR\n");
    return 2;
  }
  char msg[256];
  const struct ops_backend *cuda = cuda_backend_open(0, msg, sizeof msg);
  if (!cuda) {
    fprintf(stderr, "FAIL: %s\n", msg);
    return 1;
  }
  int failures = 0;
  printf("%-12s %8s %8s %10s %10s\n", "model", "weights", "attn", "launches", "cublas");
  for (size_t i = 0; i < sizeof budgets / sizeof *budgets; i++) {
    const struct budget *b = &budgets[i];
    struct counts one, two;
    if (step_counts(cuda, argv[1], b->model, b->batch, 1, &one) ||
        step_counts(cuda, argv[1], b->model, 2 * b->batch, 0, &two)) {
      failures++;
      continue;
    }
    printf("%-12s %8d %8d %10llu %10llu\n", b->model, one.weights, one.attn_gemm, one.st.launches,
           one.st.blas_calls);
    if (one.st.launches != two.st.launches || one.st.blas_calls != two.st.blas_calls) {
      fprintf(stderr, "FAIL %s: batch %d: %llu launches, %llu cuBLAS calls; batch %d: %llu, %llu\n",
              b->model, b->batch, one.st.launches, one.st.blas_calls, 2 * b->batch, two.st.launches,
              two.st.blas_calls);
      failures++;
    }
    unsigned long long blas_budget = 3ull * one.weights + (unsigned long long)one.attn_gemm;
    if (one.st.blas_calls > blas_budget) {
      fprintf(stderr, "FAIL %s: %llu cuBLAS calls, budget %llu (3 x %d weights + %d attention)\n",
              b->model, one.st.blas_calls, blas_budget, one.weights, one.attn_gemm);
      failures++;
    }
    if (one.st.launches > (unsigned long long)b->launches) {
      fprintf(stderr, "FAIL %s: %llu kernel launches, budget %d\n", b->model, one.st.launches,
              b->launches);
      failures++;
    }
    const struct emu_stats *gr = &one.graph;
    if (gr->graph_launches != 1 || gr->launches || gr->blas_calls || gr->h2d_bytes) {
      fprintf(stderr,
              "FAIL %s: the captured step: %llu graph launches, %llu kernel launches, %llu cuBLAS "
              "calls, %llu bytes uploaded\n",
              b->model, gr->graph_launches, gr->launches, gr->blas_calls, gr->h2d_bytes);
      failures++;
    }
    if (one.st.h2d_bytes || one.st.d2h_bytes) {
      fprintf(stderr, "FAIL %s: the step copied %llu bytes to and %llu from the device\n", b->model,
              one.st.h2d_bytes, one.st.d2h_bytes);
      failures++;
    }
  }
  cuda_backend_close(cuda);
  if (failures) return 1;
  printf("every model's step within its launch and cuBLAS budget, independent of the batch, and "
         "one graph launch when captured\n");
  return 0;
}
