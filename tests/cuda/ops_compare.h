/* ops_compare.h — the harness of the emulator's op tests (test_cuda_ops.c,
 * test_cuda_elementwise.c): the CPU backend and the emulated CUDA backend
 * side by side, tensors held on both, and comparisons.
 *
 * Inputs are uniform in [-1, 1); gradient buffers start random, so the
 * "backward accumulates" convention is checked too. An element passes when
 * |cuda - cpu| <= atol + rtol |cpu|. The tolerances, per family:
 * - GEMM-based ops (matmul, linear, conv2d, attention): both sides are
 *   float32 OpenBLAS products (cuBLAS is served by OpenBLAS here), but the
 *   CUDA side sums in a different order (im2col layout, batched chunks, the
 *   fused attention's own dot products) and the CPU sums some reductions in
 *   double: float32 rounding of O(1) terms over K <= ~600 terms stays below
 *   K * 6e-8 ~ 4e-5 relative; we allow rtol 1e-4, atol 1e-5.
 * - Reductions (layernorm, batchnorm, the loss, mean over the last
 *   axis): both sides accumulate in ops_acc_t (double, kernels/ops_shared.h)
 *   and finish with the same float maths, so they differ only by the order
 *   of double sums, ~1e-16 relative per term, which can move a float result
 *   by an ulp at most: rtol 1e-5, atol 1e-5 (the float rounding of the saved
 *   statistics, ~1e-7 relative, amplified at most ~10x by rstd in the
 *   backward, stays below).
 * - Elementwise ops with the same formula on both sides (activations,
 *   dropout, add/axpy/scale, transpose, embedding, posenc, maxpool, patch
 *   extraction, padding, the optimizers, mean over the middle axis): the
 *   same float operations in the same order, so in the emulator (the CPU's
 *   math library, no FMA) they agree to rtol 1e-6, atol 0. On hardware (the
 *   *_gpu tests) nvcc contracts a*b+c into one FMA (one rounding instead of
 *   two) and CUDA's expf/erff/tanhf are within 2 ulp where glibc's are
 *   within 1: a few ulp (6e-8 each) per formula, so rtol 1e-5 (~100x
 *   margin; an indexing bug moves values by O(1)) and atol 1e-6 for results
 *   near 0 formed by a subtraction.
 * Integer outputs (maxpool indices, dropout masks, the loss's row count,
 * num_batches_tracked, the score's counts, the guard's record) and the
 * augmented images (ops_sincos, augment.cu without FMA) must be equal on
 * both.
 */
#ifndef CTRAIN_TESTS_OPS_COMPARE_H
#define CTRAIN_TESTS_OPS_COMPARE_H

#include <stddef.h>

#include "kernels/ops.h"

extern const struct ops_backend *CPU, *GPU;
extern struct ops_ctx cctx, gctx; /* scratch() sets their scratch buffers */
extern int failures;              /* comparisons failed so far */

enum { GEMM, RED, EXACT }; /* the tolerance families above */
extern const double RTOL[], ATOL[];

/* n floats uniform in [-1, 1), a new stream per call. */
float *hrand(size_t n);
/* A device copy of `bytes` host bytes (exits when allocation fails). */
void *dev(const void *h, size_t bytes);
/* Compares device buffer `d` (n floats) with host `want` under family tol. */
void cmp(const char *what, const float *d, const float *want, size_t n, int tol);
/* Device bytes that must equal host `want` exactly (counters, indices). */
void cmp_bytes(const char *what, const void *d, const void *want, size_t bytes);

/* A float tensor on both sides: host copy for the CPU, device copy. */
struct t {
  float *h, *d;
  size_t n;
};
struct t mk(size_t n);
void drop(struct t *t);
#define CMP(what, t, tol) cmp(what, (t).d, (t).h, (t).n, tol)

/* Planned workspace of both contexts, replacing the previous one. */
void scratch(size_t cpu_floats, size_t gpu_floats);

/* Opens both backends (device_required.h: no device fails the emulator's
 * tests and skips the *_gpu ones). */
void oc_open(void);
/* Frees what oc_open and scratch made; prints `passed` or the number of
 * failed comparisons and returns the exit status. */
int oc_close(const char *passed);

#endif
