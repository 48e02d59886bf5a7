/* backend.cu — the CUDA backend's op table, its state (cuBLAS handle,
 * stream, reduction buffers), its memory entries and the device probe. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_backend.h"

/* Per process, as the CUDA runtime's own context is: a rank owns one GPU
 * (device_choose binds it before the first use), and the table's memory
 * entries take no ops_ctx to carry it. */
static struct cuda_state state;
static int state_ready = 0;
static int want_tf32 = 0;

const struct cuda_state *cuda_state(void) {
  if (state_ready) return &state;
  CUDA_CHECK(cudaStreamCreate(&state.stream));
  CUBLAS_CHECK(cublasCreate(&state.blas));
  CUBLAS_CHECK(cublasSetStream(state.blas, state.stream));
  CUBLAS_CHECK(
      cublasSetMathMode(state.blas, want_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  CUDA_CHECK(cudaMalloc(&state.partials, (CUDA_PARTIALS + 2) * sizeof(double)));
  CUDA_CHECK(cudaMalloc(&state.counts, (2 * CUDA_PARTIALS + 1) * sizeof(int)));
  state_ready = 1;
  return &state;
}

extern "C" void cuda_backend_set_tf32(int on) {
  want_tf32 = on != 0;
  if (state_ready)
    CUBLAS_CHECK(cublasSetMathMode(state.blas,
                                   want_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

extern "C" void *cuda_backend_stream(void) { return (void *)cuda_state()->stream; }

extern "C" int cuda_backend_probe(char *msg, size_t len) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    snprintf(msg, len, "cudaGetDeviceCount failed: %s (%s, %d)", cudaGetErrorString(e),
             cudaGetErrorName(e), (int)e);
    cudaGetLastError(); /* clear it: the caller may fall back to the CPU */
    return -1;
  }
  if (count < 1) {
    snprintf(msg, len, "cudaGetDeviceCount found no CUDA device");
    return -1;
  }
  return 0;
}

/* ---- memory ---------------------------------------------------------------------------- */

extern "C" void *cuda_alloc(size_t bytes) {
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError(); /* out of memory is the caller's to report */
    return NULL;
  }
  CUDA_CHECK(e);
  return p;
}

extern "C" void cuda_release(void *p) { CUDA_CHECK(cudaFree(p)); }

extern "C" void cuda_memset0(void *p, size_t bytes) {
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, STREAM));
}

extern "C" void cuda_upload(void *dst, const void *src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, STREAM));
  CUDA_CHECK(cudaStreamSynchronize(STREAM));
}

extern "C" void cuda_download(void *dst, const void *src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, STREAM));
  CUDA_CHECK(cudaStreamSynchronize(STREAM));
}

/* ---- the table ------------------------------------------------------------------------- */

static struct ops_backend make_table(void) {
  struct ops_backend t;
  memset(&t, 0, sizeof t);
  t.name = "cuda";
  t.alloc = cuda_alloc;
  t.release = cuda_release;
  t.memset0 = cuda_memset0;
  t.upload = cuda_upload;
  t.download = cuda_download;
  t.patch_fwd = cuda_patch_fwd;
  t.patch_bwd = cuda_patch_bwd;
  t.pad2d_fwd = cuda_pad2d_fwd;
  t.pad2d_bwd = cuda_pad2d_bwd;
  t.matmul = cuda_matmul;
  t.matmul_batched = cuda_matmul_batched;
  t.linear_fwd = cuda_linear_fwd;
  t.linear_bwd = cuda_linear_bwd;
  t.linear_act_fwd = cuda_linear_act_fwd;
  t.linear_act_bwd = cuda_linear_act_bwd;
  t.conv2d_scratch = cuda_conv2d_scratch;
  t.conv2d_fwd = cuda_conv2d_fwd;
  t.conv2d_bwd = cuda_conv2d_bwd;
  t.batchnorm2d_fwd = cuda_batchnorm2d_fwd;
  t.batchnorm2d_bwd = cuda_batchnorm2d_bwd;
  t.maxpool2d_fwd = cuda_maxpool2d_fwd;
  t.maxpool2d_bwd = cuda_maxpool2d_bwd;
  t.mean_mid_fwd = cuda_mean_mid_fwd;
  t.mean_mid_bwd = cuda_mean_mid_bwd;
  t.mean_last_fwd = cuda_mean_last_fwd;
  t.mean_last_bwd = cuda_mean_last_bwd;
  t.layernorm_fwd = cuda_layernorm_fwd;
  t.layernorm_bwd = cuda_layernorm_bwd;
  t.act_fwd = cuda_act_fwd;
  t.act_bwd = cuda_act_bwd;
  t.softmax_fwd = cuda_softmax_fwd;
  t.softmax_bwd = cuda_softmax_bwd;
  t.attention_scratch = cuda_attention_scratch;
  t.attention_fwd = cuda_attention_fwd;
  t.attention_bwd = cuda_attention_bwd;
  t.embedding_fwd = cuda_embedding_fwd;
  t.embedding_bwd = cuda_embedding_bwd;
  t.posenc_fwd = cuda_posenc_fwd;
  t.dropout_fwd = cuda_dropout_fwd;
  t.dropout_bwd = cuda_dropout_bwd;
  t.add_fwd = cuda_add_fwd;
  t.axpy = cuda_axpy;
  t.scale = cuda_scale;
  t.transpose_fwd = cuda_transpose_fwd;
  t.transpose_bwd = cuda_transpose_bwd;
  t.cross_entropy_fwd = cuda_cross_entropy_fwd;
  t.cross_entropy_bwd = cuda_cross_entropy_bwd;
  t.score = cuda_score;
  t.adam_step = cuda_adam_step;
  t.sgd_step = cuda_sgd_step;
  t.augment = cuda_augment;
  t.grad_clip = cuda_grad_clip;
  return t;
}

extern "C" const struct ops_backend *ops_cuda(void) {
  static struct ops_backend table;
  if (!table.name) {
    cuda_state();
    table = make_table();
  }
  return &table;
}
