/* backend.c — the CPU backend's op table. */
#include <cblas.h>
#if defined(__SSE2__)
#include <pmmintrin.h>
#endif

#include "kernels/cpu/cpu_ops.h"

static const struct ops_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .memset0 = cpu_memset0,
    .upload = cpu_copy,
    .download = cpu_copy,
    .upload_async = cpu_copy,
    .matmul = cpu_matmul,
    .matmul_batched = cpu_matmul_batched,
    .linear_fwd = cpu_linear_fwd,
    .linear_bwd = cpu_linear_bwd,
    .linear_act_fwd = cpu_linear_act_fwd,
    .linear_act_bwd = cpu_linear_act_bwd,
    .conv2d_scratch = cpu_conv2d_scratch,
    .conv2d_fwd = cpu_conv2d_fwd,
    .conv2d_bwd = cpu_conv2d_bwd,
    .batchnorm2d_fwd = cpu_batchnorm2d_fwd,
    .batchnorm2d_bwd = cpu_batchnorm2d_bwd,
    .maxpool2d_fwd = cpu_maxpool2d_fwd,
    .maxpool2d_bwd = cpu_maxpool2d_bwd,
    .mean_mid_fwd = cpu_mean_mid_fwd,
    .mean_mid_bwd = cpu_mean_mid_bwd,
    .mean_last_fwd = cpu_mean_last_fwd,
    .mean_last_bwd = cpu_mean_last_bwd,
    .layernorm_fwd = cpu_layernorm_fwd,
    .layernorm_bwd = cpu_layernorm_bwd,
    .act_fwd = cpu_act_fwd,
    .act_bwd = cpu_act_bwd,
    .attention_scratch = cpu_attention_scratch,
    .attention_fwd = cpu_attention_fwd,
    .attention_bwd = cpu_attention_bwd,
    .embedding_fwd = cpu_embedding_fwd,
    .embedding_bwd = cpu_embedding_bwd,
    .posenc_fwd = cpu_posenc_fwd,
    .dropout_fwd = cpu_dropout_fwd,
    .dropout_bwd = cpu_dropout_bwd,
    .add_fwd = cpu_add_fwd,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .transpose_fwd = cpu_transpose_fwd,
    .transpose_bwd = cpu_transpose_bwd,
    .patch_fwd = cpu_patch_fwd,
    .patch_bwd = cpu_patch_bwd,
    .pad2d_fwd = cpu_pad2d_fwd,
    .pad2d_bwd = cpu_pad2d_bwd,
    .cross_entropy_fwd = cpu_cross_entropy_fwd,
    .cross_entropy_bwd = cpu_cross_entropy_bwd,
    .score = cpu_score,
    .adam_step = cpu_adam_step,
    .sgd_step = cpu_sgd_step,
    .augment = cpu_augment,
    .grad_clip = cpu_grad_clip,
};

/* Subnormal floats flush to zero, as inputs (DAZ) and as results (FTZ).
 * The Adam moments of weights whose gradients are tiny or zero decay into
 * the subnormal range, which x86 handles in microcode: on resnet10's 4.9 M
 * parameters one Adam update took 14.6 ms with normal values and 204-318 ms
 * with subnormal ones, 40 % of a real training step at step 1600. Results
 * change only where a value is below FLT_MIN (1.2e-38); TensorFlow flushes
 * the same way by default, PyTorch after torch.set_flush_denormal(True).
 * The mode is per thread: set here for the caller, whose threads (the
 * OpenMP team, the loader) inherit it when created, and in every thread of
 * an OpenMP team that may already exist. (x86 only: other CPUs keep
 * subnormals.) */
static void flush_subnormals(void) {
#if defined(__SSE2__)
  _mm_setcsr(_mm_getcsr() | _MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON);
#endif
}

/* The kernels split work across OpenMP threads themselves and call BLAS from
 * inside them, so OpenBLAS must not start threads of its own. */
const struct ops_backend *ops_cpu(void) {
  openblas_set_num_threads(1);
  flush_subnormals();
#pragma omp parallel
  flush_subnormals();
  return &cpu_backend;
}
