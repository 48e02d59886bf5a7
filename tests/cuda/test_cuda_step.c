/* test_cuda_step.c — one whole training step of attn_cnn on the emulated
 * CUDA backend equals the CPU backend's.
 *
 * Both graphs are built by model_build from the same spec and seed (so the
 * same initial parameters, drawn on the host and uploaded), fed the same
 * batch, run forward (training mode: batch statistics, the loss with label
 * smoothing), backward, and one Adam step whose moments live in backend
 * memory. Compared: the loss, every parameter gradient, the BatchNorm
 * running statistics, the parameters after the step.
 *
 * Tolerances. The two backends sum in different orders (im2col layout,
 * warp/block reductions in float against the CPU's double), each op adding
 * ~1e-6 relative error; through ~25 ops forward and back, and BatchNorm's
 * 1/std amplification, we allow, per tensor, |cuda - cpu| <= 1e-3 * max|cpu|
 * + 1e-4 |cpu| for gradients and buffers, and 1e-5 relative for the loss.
 * Gradients also get an absolute floor of 1e-6 * the largest gradient of the
 * model: a convolution bias followed by BatchNorm has an exact gradient of 0,
 * so both backends hold rounding noise there (~1e-8), not a value.
 * Adam's first step moves each parameter by lr * g / (|g| + eps) ~ +-lr, so
 * a parameter may differ by up to 2 lr exactly where its gradient is within
 * the gradient tolerance of zero (its sign is not determined at float32
 * precision); everywhere else parameters must agree to 1e-6 + 1e-5 |p|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_required.h"
#include "graph/graph.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops_shared.h"
#include "models/models.h"

enum { BATCH = 4, CLASSES = 10 };
static const float LR = 1e-3f;

struct run {
  struct graph g;
  struct model_io io;
  float loss;
  float *grads, *params; /* host copies */
  float *m, *v;          /* Adam moments, backend memory */
};

static int build(struct run *r, const struct ops_backend *ops) {
  struct model_spec spec;
  memset(&spec, 0, sizeof spec);
  strcpy(spec.name, "attn_cnn");
  spec.num_classes = CLASSES;
  spec.batch = BATCH;
  spec.image_c = 3;
  spec.image_h = 32;
  spec.image_w = 32;
  spec.label_smoothing = 0.1f;
  struct ct_err e = {0};
  graph_init(&r->g, ops, 1, 20240607);
  if (model_build(&r->g, &spec, &r->io, &e) || graph_plan(&r->g, &e)) {
    fprintf(stderr, "%s: %s\n", ops->name, e.msg);
    return 1;
  }
  return 0;
}

static void step(struct run *r) {
  struct graph *g = &r->g;
  const struct ops_backend *o = g->ops;
  size_t nimg = (size_t)BATCH * 3 * 32 * 32;
  float *x = malloc(nimg * sizeof *x);
  for (size_t i = 0; i < nimg; i++)
    x[i] = 2.0f * ops_rng_uniform(5, 0, i) - 1.0f;
  int32_t labels[BATCH] = {3, 7, 0, 9};
  o->upload(o, g->tensors[r->io.input].data, x, nimg * sizeof *x);
  o->upload(o, g->tensors[r->io.labels].data, labels, sizeof labels);
  free(x);
  g->training = 1;
  g->step_counter = 1;
  graph_forward(g);
  graph_backward(g);
  o->download(o, &r->loss, g->tensors[r->io.loss].data, sizeof r->loss);
  size_t n = g->params_len;
  r->grads = malloc(n * sizeof(float));
  r->params = malloc(n * sizeof(float));
  o->download(o, r->grads, g->grads, n * sizeof(float));
  r->m = o->alloc(o, n * sizeof(float));
  r->v = o->alloc(o, n * sizeof(float));
  o->memset0(o, r->m, n * sizeof(float));
  o->memset0(o, r->v, n * sizeof(float));
  float h[OPS_HYPER_LEN], *hd = o->alloc(o, sizeof h);
  ops_adam_hyper(LR, 0.9f, 0.999f, 1, h);
  o->upload(o, hd, h, sizeof h);
  o->adam_step(&g->ctx, n, g->params, g->grads, r->m, r->v, hd, 0.999f, 1e-8f, 0.0f, 0);
  o->download(o, r->params, g->params, n * sizeof(float));
  o->release(o, hd);
}

static double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = fabs(x[i]) > m ? fabs(x[i]) : m;
  return m;
}

int main(void) {
  struct run cpu, gpu;
  memset(&cpu, 0, sizeof cpu);
  memset(&gpu, 0, sizeof gpu);
  device_required();
  char msg[256];
  const struct ops_backend *cuda = cuda_backend_open(0, msg, sizeof msg);
  if (!cuda) {
    fprintf(stderr, "FAIL: %s\n", msg);
    return 1;
  }
  if (build(&cpu, ops_cpu()) || build(&gpu, cuda)) return 1;
  if (cpu.g.params_len != gpu.g.params_len) {
    fprintf(stderr, "FAIL: %zu parameters on cpu, %zu on cuda\n", cpu.g.params_len,
            gpu.g.params_len);
    return 1;
  }
  step(&cpu);
  step(&gpu);
  int failures = 0;
  if (!(fabs(cpu.loss - gpu.loss) <= 1e-5 * fabs(cpu.loss))) {
    fprintf(stderr, "FAIL loss: cuda %.9g cpu %.9g\n", gpu.loss, cpu.loss);
    failures++;
  }
  printf("loss: cpu %.9g cuda %.9g\n", cpu.loss, gpu.loss);
  int tensors = 0;
  const double floor = 1e-6 * max_abs(cpu.grads, cpu.g.params_len);
  for (int t = 0; t < cpu.g.ntensors; t++) {
    const struct tensor *tc = &cpu.g.tensors[t];
    if (tc->view_of >= 0 || (tc->kind != TK_PARAM && tc->kind != TK_BUFFER)) continue;
    if (tc->dtype != DT_F32) continue; /* num_batches_tracked, checked below */
    size_t n = tc->numel;
    tensors++;
    if (tc->kind == TK_BUFFER) {
      float *b = malloc(n * sizeof *b);
      gpu.g.ops->download(gpu.g.ops, b, gpu.g.tensors[t].data, n * sizeof *b);
      const float *a = tc->data;
      double tol = 1e-3 * max_abs(a, n);
      for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= tol + 1e-4 * fabs(a[i]))) {
          fprintf(stderr, "FAIL %s[%zu]: cuda %.9g cpu %.9g\n", tc->name, i, b[i], a[i]);
          failures++;
          break;
        }
      free(b);
      continue;
    }
    size_t off = (size_t)((const float *)tc->data - cpu.g.params);
    const float *ga = cpu.grads + off, *gb = gpu.grads + off;
    const float *pa = cpu.params + off, *pb = gpu.params + off;
    double tol = 1e-3 * max_abs(ga, n) + floor;
    int bad_g = 0, bad_p = 0;
    for (size_t i = 0; i < n; i++) {
      double gt = tol + 1e-4 * fabs(ga[i]);
      if (!(fabs(ga[i] - gb[i]) <= gt) && bad_g++ < 3)
        fprintf(stderr, "FAIL grad %s[%zu]: cuda %.9g cpu %.9g\n", tc->name, i, gb[i], ga[i]);
      double pt = fabs(ga[i]) <= gt ? 2.0 * LR + 1e-6 : 1e-6 + 1e-5 * fabs(pa[i]);
      if (!(fabs(pa[i] - pb[i]) <= pt) && bad_p++ < 3)
        fprintf(stderr, "FAIL param %s[%zu] after Adam: cuda %.9g cpu %.9g\n", tc->name, i, pb[i],
                pa[i]);
    }
    failures += bad_g > 0;
    failures += bad_p > 0;
  }
  int64_t nb_cpu = 0, nb_gpu = 0;
  int nb = graph_find(&cpu.g, "cnn.1.num_batches_tracked");
  memcpy(&nb_cpu, cpu.g.tensors[nb].data, sizeof nb_cpu);
  gpu.g.ops->download(gpu.g.ops, &nb_gpu, gpu.g.tensors[nb].data, sizeof nb_gpu);
  if (nb_cpu != 1 || nb_gpu != 1) {
    fprintf(stderr, "FAIL num_batches_tracked: cuda %lld cpu %lld\n", (long long)nb_gpu,
            (long long)nb_cpu);
    failures++;
  }
  printf("compared %d parameter and buffer tensors, %zu parameters\n", tensors, cpu.g.params_len);
  free(cpu.grads);
  free(cpu.params);
  free(gpu.grads);
  free(gpu.params);
  cpu.g.ops->release(cpu.g.ops, cpu.m);
  cpu.g.ops->release(cpu.g.ops, cpu.v);
  gpu.g.ops->release(gpu.g.ops, gpu.m);
  gpu.g.ops->release(gpu.g.ops, gpu.v);
  graph_free(&cpu.g);
  graph_free(&gpu.g);
  cuda_backend_close(cuda);
  if (failures) {
    fprintf(stderr, "%d mismatches\n", failures);
    return 1;
  }
  printf("one attn_cnn training step: cuda (emulated) equals cpu\n");
  return 0;
}
