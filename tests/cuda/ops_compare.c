/* ops_compare.c — the op tests' harness (ops_compare.h). */
#include "ops_compare.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_required.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/ops_shared.h"

const struct ops_backend *CPU, *GPU;
struct ops_ctx cctx = {.threads = 1}, gctx = {.threads = 1};
int failures = 0;
static uint64_t seed = 1;

#ifdef CTRAIN_GPU_TEST
/* On hardware (ops_compare.h): EXACT widens for FMA contraction and CUDA's
 * math library, GEMM for cuBLAS's own algorithms (split-K reorders sums;
 * K <= ~600 O(1) terms still stay under 4e-5 relative). */
const double RTOL[] = {1e-4, 1e-5, 1e-5}, ATOL[] = {1e-5, 1e-5, 1e-6};
#else
const double RTOL[] = {1e-4, 1e-5, 1e-6}, ATOL[] = {1e-5, 1e-5, 0.0};
#endif

float *hrand(size_t n) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  uint64_t s = seed++;
  for (size_t i = 0; i < n; i++)
    x[i] = 2.0f * ops_rng_uniform(s, 0, i) - 1.0f;
  return x;
}

void *dev(const void *h, size_t bytes) {
  void *d = GPU->alloc(GPU, bytes);
  if (!d) {
    fprintf(stderr, "device allocation of %zu bytes failed\n", bytes);
    exit(1);
  }
  GPU->upload(GPU, d, h, bytes);
  return d;
}

void cmp(const char *what, const float *d, const float *want, size_t n, int tol) {
  float *got = malloc((n ? n : 1) * sizeof *got);
  GPU->download(GPU, got, d, n * sizeof *got);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double diff = fabs((double)got[i] - want[i]);
    int same_nan = isnan(got[i]) && isnan(want[i]);
    if (!same_nan && !(diff <= ATOL[tol] + RTOL[tol] * fabs(want[i]))) {
      if (bad < 5) fprintf(stderr, "%s[%zu]: cuda %.9g cpu %.9g\n", what, i, got[i], want[i]);
      bad++;
    }
  }
  if (bad) {
    fprintf(stderr, "FAIL %s: %d of %zu elements beyond rtol %g atol %g\n", what, bad, n, RTOL[tol],
            ATOL[tol]);
    failures++;
  }
  free(got);
}

void cmp_bytes(const char *what, const void *d, const void *want, size_t bytes) {
  unsigned char *got = malloc(bytes ? bytes : 1);
  GPU->download(GPU, got, d, bytes);
  if (memcmp(got, want, bytes)) {
    fprintf(stderr, "FAIL %s: differs\n", what);
    failures++;
  }
  free(got);
}

struct t mk(size_t n) {
  struct t t = {hrand(n), NULL, n};
  t.d = dev(t.h, n * sizeof(float));
  return t;
}
void drop(struct t *t) {
  free(t->h);
  GPU->release(GPU, t->d);
}
void scratch(size_t cpu_floats, size_t gpu_floats) {
  free(cctx.scratch);
  if (gctx.scratch) GPU->release(GPU, gctx.scratch);
  cctx.scratch = malloc((cpu_floats ? cpu_floats : 1) * sizeof(float));
  gctx.scratch = GPU->alloc(GPU, (gpu_floats ? gpu_floats : 1) * sizeof(float));
  cctx.scratch_len = cpu_floats;
  gctx.scratch_len = gpu_floats;
}

void oc_open(void) {
  device_required();
  char msg[256];
  CPU = ops_cpu();
  if (!(GPU = cuda_backend_open(0, msg, sizeof msg))) {
    fprintf(stderr, "%s\n", msg);
    exit(1);
  }
  gctx.state = GPU->state;
}

int oc_close(const char *passed) {
  free(cctx.scratch);
  if (gctx.scratch) GPU->release(GPU, gctx.scratch);
  cuda_backend_close(GPU);
  if (failures) {
    fprintf(stderr, "%d comparisons failed\n", failures);
    return 1;
  }
  printf("%s\n", passed);
  return 0;
}
