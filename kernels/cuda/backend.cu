/* backend.cu — the CUDA backend opened per device: its op table with the
 * state the table carries (cuBLAS handle, stream, reduction buffers), the
 * memory entries and the device probe. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_backend.h"

/* One opened backend: its table (first, so the table's address is the
 * backend's) and the state the table's entries and ops reach through it. */
struct cuda_backend {
  struct ops_backend table;
  struct cuda_state state;
};

static const struct cuda_state *state_of(const struct ops_backend *be) {
  return (const struct cuda_state *)be->state;
}

/* The first failed call of cuda_backend_open, in msg. */
static int open_failed(char *msg, size_t len, const char *call, const char *why, int line) {
  snprintf(msg, len, "%s failed: %s at %s:%d", call, why, __FILE__, line);
  return -1;
}
#define OPEN_CUDA(call)                                                                            \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      cudaGetLastError(); /* cleared: the caller reports it */                                     \
      rc = open_failed(msg, len, #call, cudaGetErrorString(e_), __LINE__);                         \
    }                                                                                              \
  } while (0)
#define OPEN_CUBLAS(call)                                                                          \
  do {                                                                                             \
    cublasStatus_t s_ = (call);                                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                               \
      rc = open_failed(msg, len, #call, cublasGetStatusString(s_), __LINE__);                      \
  } while (0)

static struct ops_backend make_table(void);

extern "C" const struct ops_backend *cuda_backend_open(int tf32, char *msg, size_t len) {
  struct cuda_backend *b = (struct cuda_backend *)calloc(1, sizeof *b);
  if (!b) {
    snprintf(msg, len, "out of host memory for the CUDA backend");
    return NULL;
  }
  struct cuda_state *st = &b->state;
  int rc = 0;
  OPEN_CUDA(cudaStreamCreate(&st->stream));
  if (!rc) OPEN_CUBLAS(cublasCreate(&st->blas));
  if (!rc) OPEN_CUBLAS(cublasSetStream(st->blas, st->stream));
  if (!rc)
    OPEN_CUBLAS(
        cublasSetMathMode(st->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (!rc) OPEN_CUDA(cudaMalloc(&st->partials, (CUDA_PARTIALS + 2) * sizeof(double)));
  if (!rc) OPEN_CUDA(cudaMalloc(&st->counts, (2 * CUDA_PARTIALS + 1) * sizeof(int)));
  b->table = make_table();
  b->table.state = st;
  if (rc) {
    cuda_backend_close(&b->table);
    return NULL;
  }
  return &b->table;
}

extern "C" void cuda_backend_close(const struct ops_backend *be) {
  if (!be) return;
  struct cuda_backend *b = (struct cuda_backend *)be;
  struct cuda_state *st = &b->state;
  if (st->counts) CUDA_CHECK(cudaFree(st->counts));
  if (st->partials) CUDA_CHECK(cudaFree(st->partials));
  if (st->blas) CUBLAS_CHECK(cublasDestroy(st->blas));
  if (st->stream) CUDA_CHECK(cudaStreamDestroy(st->stream));
  free(b);
}

extern "C" void *cuda_backend_stream(const struct ops_backend *be) {
  return (void *)state_of(be)->stream;
}

extern "C" double cuda_backend_time_ms(const struct ops_backend *be, void (*issue)(void *),
                                       void *arg) {
  cudaStream_t st = state_of(be)->stream;
  cudaEvent_t from, to;
  float ms = 0.0f;
  CUDA_CHECK(cudaEventCreate(&from));
  CUDA_CHECK(cudaEventCreate(&to));
  CUDA_CHECK(cudaEventRecord(from, st));
  issue(arg);
  CUDA_CHECK(cudaEventRecord(to, st));
  CUDA_CHECK(cudaEventSynchronize(to));
  CUDA_CHECK(cudaEventElapsedTime(&ms, from, to));
  CUDA_CHECK(cudaEventDestroy(from));
  CUDA_CHECK(cudaEventDestroy(to));
  return ms;
}

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

extern "C" void *cuda_alloc(const struct ops_backend *be, size_t bytes) {
  (void)be; /* cudaMalloc is per device, not per stream */
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError(); /* out of memory is the caller's to report */
    return NULL;
  }
  CUDA_CHECK(e);
  return p;
}

extern "C" void cuda_release(const struct ops_backend *be, void *p) {
  (void)be;
  CUDA_CHECK(cudaFree(p));
}

extern "C" void cuda_memset0(const struct ops_backend *be, void *p, size_t bytes) {
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, state_of(be)->stream));
}

extern "C" void cuda_upload(const struct ops_backend *be, void *dst, const void *src,
                            size_t bytes) {
  cudaStream_t st = state_of(be)->stream;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
}

/* From pageable memory: CUDA stages the bytes before it returns. */
extern "C" void cuda_upload_async(const struct ops_backend *be, void *dst, const void *src,
                                  size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, state_of(be)->stream));
}

extern "C" void cuda_download(const struct ops_backend *be, void *dst, const void *src,
                              size_t bytes) {
  cudaStream_t st = state_of(be)->stream;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
}

/* ---- CUDA Graphs (ops.h) ---------------------------------------------------------------- */
struct cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

static int graph_failed(char *msg, size_t len, const char *call, cudaError_t rc, int line) {
  cudaGetLastError(); /* cleared: the caller reports it */
  snprintf(msg, len, "%s failed: %s at %s:%d", call, cudaGetErrorString(rc), __FILE__, line);
  return -1;
}
#define GRAPH_CUDA(call)                                                                           \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) return graph_failed(msg, len, #call, e_, __LINE__);                     \
  } while (0)

/* Thread-local: NCCL's and the runtime's own threads go on unhindered. */
extern "C" int cuda_graph_capture_begin(const struct ops_backend *be, char *msg, size_t len) {
  GRAPH_CUDA(cudaStreamBeginCapture(state_of(be)->stream, cudaStreamCaptureModeThreadLocal));
  return 0;
}

extern "C" int cuda_graph_capture_end(const struct ops_backend *be, void **out, char *msg,
                                      size_t len) {
  cudaGraph_t graph = NULL;
  GRAPH_CUDA(cudaStreamEndCapture(state_of(be)->stream, &graph));
  struct cuda_graph *g = (struct cuda_graph *)calloc(1, sizeof *g);
  cudaError_t rc = g ? cudaGraphInstantiate(&g->exec, graph, 0) : cudaErrorMemoryAllocation;
  if (rc != cudaSuccess) {
    free(g);
    CUDA_CHECK(cudaGraphDestroy(graph));
    return graph_failed(msg, len, "cudaGraphInstantiate", rc, __LINE__);
  }
  g->graph = graph;
  *out = g;
  return 0;
}

extern "C" int cuda_graph_launch(const struct ops_backend *be, void *graph, char *msg, size_t len) {
  GRAPH_CUDA(cudaGraphLaunch(((struct cuda_graph *)graph)->exec, state_of(be)->stream));
  return 0;
}

extern "C" void cuda_graph_free(const struct ops_backend *be, void *graph) {
  (void)be;
  struct cuda_graph *g = (struct cuda_graph *)graph;
  if (!g) return;
  CUDA_CHECK(cudaGraphExecDestroy(g->exec));
  CUDA_CHECK(cudaGraphDestroy(g->graph));
  free(g);
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
  t.upload_async = cuda_upload_async;
  t.graph_capture_begin = cuda_graph_capture_begin;
  t.graph_capture_end = cuda_graph_capture_end;
  t.graph_launch = cuda_graph_launch;
  t.graph_free = cuda_graph_free;
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
