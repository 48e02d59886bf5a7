/* test_emu.cpp — tests of the SIMT host emulator itself.
 *
 * Without an argument it checks, in process, that barriers, warp shuffles,
 * dynamic and static shared memory, atomics, streams, events, graphs, launch limits
 * and cuBLAS's column-major semantics behave as on a GPU. With an argument it
 * runs one kernel that the emulator must stop, and tests.cmake matches the
 * report:
 *   oob        writes one float past a device buffer -> AddressSanitizer (use-after-poison)
 *   divergent  half the block calls __syncthreads     -> "divergent barrier"
 *   exited     a thread returns before the barrier    -> "divergent barrier"
 *   warp-mask  a full-mask shuffle in a partial warp   -> "beyond the block's threads"
 *   shared-uninit   a thread reads a __shared__ slot no thread wrote -> "no thread of the block
 *                   wrote"
 *   no-barrier      tree_sum without its barriers: a thread adds a slot before its writer ran
 *                   (threads between barriers run in a random order) -> the same report
 *   dyn-uninit      the same with dynamic shared memory -> the same report
 *   host-deref      host code reads a device buffer -> "host access to device memory"
 *   block-race      two blocks write one word -> "both write device memory"
 *   warp-race       (test_emu_race, the race build) a lane reads its neighbour's __shared__
 *                   slot with no __syncwarp after the write -> "of its warp wrote with no
 *                   __syncwarp"
 *   stream-race     a kernel on one stream reads another stream's output with no event between
 *                   them -> "stream race" */
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/emu/emu_stats.h"

static int failures = 0;

#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                    \
      std::fprintf(stderr, __VA_ARGS__);                                                           \
      std::fputc('\n', stderr);                                                                    \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

/* Tree sum of 256 values in static shared memory; with `barrier` 0 the
 * __syncthreads between the levels is left out, as a buggy kernel would. */
__global__ void tree_sum(const float *x, float *out, int barrier) {
  __shared__ float s[256];
  unsigned t = threadIdx.x;
  s[t] = x[blockIdx.x * 256 + t];
  if (barrier) __syncthreads();
  for (unsigned half = 128; half > 0; half /= 2) {
    if (t < half) s[t] += s[t + half];
    if (barrier) __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

/* Warp sums three ways, a broadcast from lane 3 and __syncwarp over a
 * dynamic shared buffer written by each lane and read by its neighbour. */
__global__ void warp_ops(const float *x, float *out) {
  DYN_SHARED(float, buf);
  unsigned t = threadIdx.x, lane = t % 32;
  float v = x[t];
  float a = v, b = v;
  for (int o = 16; o > 0; o /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_down_sync(0xffffffffu, b, o);
  }
  float from3 = __shfl_sync(0xffffffffu, v, 3);
  /* sum of the 8 lanes of each 8-wide segment */
  float c = v;
  for (int o = 4; o > 0; o /= 2)
    c += __shfl_xor_sync(0xffffffffu, c, o, 8);
  buf[t] = v * 2.0f;
  __syncwarp(0xffffffffu);
  float nb = buf[(t & ~31u) + (lane + 1) % 32];
  out[t * 5 + 0] = a;
  out[t * 5 + 1] = lane == 0 ? b : 0.0f;
  out[t * 5 + 2] = from3;
  out[t * 5 + 3] = c;
  out[t * 5 + 4] = nb;
}

__global__ void atomic_count(int *counter, float *fsum) {
  atomicAdd(counter, 1);
  atomicAdd(fsum, 0.5f);
}

/* threadIdx, blockIdx, blockDim and gridDim in three dimensions. */
__global__ void coords(int *out) {
  unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[bx * blockDim.x * blockDim.y * blockDim.z + tx] = static_cast<int>(bx * 1000 + tx);
}

__global__ void oob_write(float *x, int n) {
  unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= static_cast<unsigned>(n)) x[i] = 1.0f; /* the bug: <= instead of < */
}

__global__ void divergent_barrier(float *x) {
  if (threadIdx.x < 16) {
    x[threadIdx.x] = 1.0f;
    __syncthreads();
  } else {
    __syncthreads();
  }
}

__global__ void exit_before_barrier(float *x) {
  if (threadIdx.x == 5) return;
  x[threadIdx.x] = 1.0f;
  __syncthreads();
}

__global__ void partial_warp_full_mask(float *x) {
  float v = x[threadIdx.x];
  x[threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 1);
}

/* The bug: the last thread reads the slot after its own, which no thread
 * writes (a stencil whose halo was never loaded). */
__global__ void shared_uninit(float *x) {
  __shared__ float s[33];
  unsigned t = threadIdx.x;
  s[t] = x[t];
  __syncthreads();
  x[t] = s[t] + s[t + 1];
}

/* The same with dynamic shared memory and a double. */
__global__ void dyn_uninit(float *x) {
  DYN_SHARED(double, s);
  unsigned t = threadIdx.x;
  s[t] = x[t];
  __syncthreads();
  x[t] = static_cast<float>(s[t] * s[t + 1]);
}

/* The bug: the output index leaves out the block, so every block writes
 * the same words (a race on a GPU, whichever block is last wins). */
__global__ void block_race(float *x) { x[threadIdx.x] = blockIdx.x + 1.0f; }

/* Each lane reads its neighbour's slot: right with the __syncwarp, a race
 * without it (the race build reports it). */
__global__ void warp_neighbour(float *x, int sync) {
  __shared__ float slot[32];
  unsigned lane = threadIdx.x % 32;
  slot[lane] = static_cast<float>(lane);
  if (sync) __syncwarp(0xffffffffu);
  x[lane] = slot[lane ^ 1];
}

__global__ void fill_value(float *x, int n, float v) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] = v;
}

__global__ void add_from(float *y, const float *x, int n) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] += x[i];
}

static float *dev_upload(const std::vector<float> &h) {
  float *d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  return d;
}

static void test_barrier_and_race() {
  const int blocks = 8;
  std::vector<float> h(blocks * 256);
  for (size_t i = 0; i < h.size(); i++)
    h[i] = static_cast<float>((i * 7919) % 1000); /* integers: every sum is exact */
  float *x = dev_upload(h), *out = nullptr;
  CUDA_CHECK(cudaMalloc(&out, blocks * sizeof(float)));
  std::vector<float> got(blocks);
  LAUNCH(tree_sum, blocks, 256, 0, 0)(x, out, 1);
  LAUNCH_CHECK("tree_sum");
  CUDA_CHECK(cudaMemcpy(got.data(), out, blocks * sizeof(float), cudaMemcpyDeviceToHost));
  for (int b = 0; b < blocks; b++) {
    float want = 0;
    for (int t = 0; t < 256; t++)
      want += h[b * 256 + t];
    EXPECT(got[b] == want, "tree_sum block %d: %g, want %g", b, got[b], want);
  }
  CUDA_CHECK(cudaFree(x));
  CUDA_CHECK(cudaFree(out));
}

static void test_warp_ops() {
  const int n = 64; /* two warps */
  std::vector<float> h(n);
  for (int i = 0; i < n; i++)
    h[i] = static_cast<float>(i);
  float *x = dev_upload(h), *out = nullptr;
  CUDA_CHECK(cudaMalloc(&out, n * 5 * sizeof(float)));
  LAUNCH(warp_ops, 1, n, n * sizeof(float), 0)(x, out);
  LAUNCH_CHECK("warp_ops");
  std::vector<float> got(n * 5);
  CUDA_CHECK(cudaMemcpy(got.data(), out, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (int t = 0; t < n; t++) {
    int w = t / 32, lane = t % 32, seg = t / 8;
    float wsum = 0, ssum = 0;
    for (int j = 0; j < 32; j++)
      wsum += h[w * 32 + j];
    for (int j = 0; j < 8; j++)
      ssum += h[seg * 8 + j];
    EXPECT(got[t * 5 + 0] == wsum, "xor sum lane %d: %g want %g", t, got[t * 5], wsum);
    if (lane == 0) EXPECT(got[t * 5 + 1] == wsum, "down sum warp %d: %g", w, got[t * 5 + 1]);
    EXPECT(got[t * 5 + 2] == h[w * 32 + 3], "broadcast lane %d: %g", t, got[t * 5 + 2]);
    EXPECT(got[t * 5 + 3] == ssum, "width-8 sum lane %d: %g want %g", t, got[t * 5 + 3], ssum);
    EXPECT(got[t * 5 + 4] == 2.0f * h[w * 32 + (lane + 1) % 32], "syncwarp lane %d: %g", t,
           got[t * 5 + 4]);
  }
  CUDA_CHECK(cudaFree(x));
  CUDA_CHECK(cudaFree(out));
}

static void test_atomics_coords_streams() {
  int *counter = nullptr;
  float *fsum = nullptr;
  CUDA_CHECK(cudaMalloc(&counter, sizeof(int)));
  CUDA_CHECK(cudaMalloc(&fsum, sizeof(float)));
  CUDA_CHECK(cudaMemset(counter, 0, sizeof(int)));
  CUDA_CHECK(cudaMemset(fsum, 0, sizeof(float)));
  cudaStream_t s;
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaStreamCreate(&s));
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  CUDA_CHECK(cudaEventRecord(e0, s));
  LAUNCH(atomic_count, dim3(3, 2), dim3(50), 0, s)(counter, fsum);
  LAUNCH_CHECK("atomic_count");
  CUDA_CHECK(cudaEventRecord(e1, s));
  CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = -1;
  CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  EXPECT(ms >= 0, "elapsed time %g", ms);
  int c = 0;
  float f = 0;
  CUDA_CHECK(cudaMemcpyAsync(&c, counter, sizeof c, cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaMemcpyAsync(&f, fsum, sizeof f, cudaMemcpyDeviceToHost, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  EXPECT(c == 300 && f == 150.0f, "atomics: %d, %g", c, f);
  CUDA_CHECK(cudaEventDestroy(e0));
  CUDA_CHECK(cudaEventDestroy(e1));
  CUDA_CHECK(cudaStreamDestroy(s));
  CUDA_CHECK(cudaFree(counter));
  CUDA_CHECK(cudaFree(fsum));

  dim3 grid(2, 3, 2), block(4, 2, 3);
  int n = 12 * 24;
  int *out = nullptr;
  CUDA_CHECK(cudaMalloc(&out, n * sizeof(int)));
  LAUNCH(coords, grid, block, 0, 0)(out);
  LAUNCH_CHECK("coords");
  std::vector<int> got(n);
  CUDA_CHECK(cudaMemcpy(got.data(), out, n * sizeof(int), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; i++)
    EXPECT(got[i] == (i / 24) * 1000 + i % 24, "coords[%d] = %d", i, got[i]);
  CUDA_CHECK(cudaFree(out));
}

static void test_warp_neighbour() {
  float *x = nullptr;
  CUDA_CHECK(cudaMalloc(&x, 32 * sizeof(float)));
  LAUNCH(warp_neighbour, 1, 32, 0, 0)(x, 1);
  LAUNCH_CHECK("warp_neighbour");
  std::vector<float> got(32);
  CUDA_CHECK(cudaMemcpy(got.data(), x, 32 * sizeof(float), cudaMemcpyDeviceToHost));
  for (int l = 0; l < 32; l++)
    EXPECT(got[l] == static_cast<float>(l ^ 1), "lane %d read %g", l, got[l]);
  CUDA_CHECK(cudaFree(x));
}

/* Streams are deferred queues ordered by events: work runs only when
 * something needs it, and in the order the events give. */
static void test_stream_order() {
  const int n = 64;
  float *x = nullptr, *y = nullptr;
  CUDA_CHECK(cudaMalloc(&x, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&y, n * sizeof(float)));
  CUDA_CHECK(cudaMemset(y, 0, n * sizeof(float)));
  cudaStream_t s1, s2;
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreate(&s2));
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  CUDA_CHECK(cudaEventRecord(e0, s1));
  LAUNCH(fill_value, 1, n, 0, s1)(x, n, 3.0f);
  LAUNCH_CHECK("fill_value");
  CUDA_CHECK(cudaEventRecord(e1, s1));
  float ms = 0;
  EXPECT(cudaEventElapsedTime(&ms, e0, e1) == cudaErrorNotReady,
         "s1's work ran before anything needed it");
  /* s2 reads x after s1's event: s1 runs first when s2 is synchronised. */
  CUDA_CHECK(cudaStreamWaitEvent(s2, e1, 0));
  LAUNCH(add_from, 1, n, 0, s2)(y, x, n);
  LAUNCH(add_from, 1, n, 0, s2)(y, x, n);
  LAUNCH_CHECK("add_from");
  std::vector<float> got(n);
  CUDA_CHECK(cudaMemcpyAsync(got.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost, s2));
  for (int i = 0; i < n; i++)
    EXPECT(got[i] == 6.0f, "y[%d] = %g after two ordered adds of 3", i, got[i]);
  CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  /* Once the host has synchronised s2 (which saw e1), s1's old work is
   * ordered before anything issued later: a new read of x on s2 without an
   * event is no race. */
  LAUNCH(add_from, 1, n, 0, s2)(y, x, n);
  CUDA_CHECK(cudaStreamSynchronize(s2));
  CUDA_CHECK(cudaMemcpy(got.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT(got[n - 1] == 9.0f, "y = %g after three adds", got[n - 1]);
  CUDA_CHECK(cudaEventDestroy(e0));
  CUDA_CHECK(cudaEventDestroy(e1));
  CUDA_CHECK(cudaStreamDestroy(s1));
  CUDA_CHECK(cudaStreamDestroy(s2));
  CUDA_CHECK(cudaFree(x));
  CUDA_CHECK(cudaFree(y));
}

/* CUDA Graphs: captured work runs only when launched, again at each launch
 * and as one launch; a synchronisation spoils a capture; a stream that
 * joins one must be joined back. */
static void test_graphs() {
  const int n = 32;
  float *x = nullptr, *y = nullptr;
  CUDA_CHECK(cudaMalloc(&x, n * sizeof(float)));
  CUDA_CHECK(cudaMalloc(&y, n * sizeof(float)));
  CUDA_CHECK(cudaMemset(y, 0, n * sizeof(float)));
  cudaStream_t s1, s2;
  CUDA_CHECK(cudaStreamCreate(&s1));
  CUDA_CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  cudaEvent_t fork, join;
  CUDA_CHECK(cudaEventCreate(&fork));
  CUDA_CHECK(cudaEventCreate(&join));
  CUDA_CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
  cudaStreamCaptureStatus st;
  CUDA_CHECK(cudaStreamIsCapturing(s1, &st));
  EXPECT(st == cudaStreamCaptureStatusActive, "capture status %d", static_cast<int>(st));
  LAUNCH(fill_value, 1, n, 0, s1)(x, n, 2.0f);
  CUDA_CHECK(cudaEventRecord(fork, s1));
  CUDA_CHECK(cudaStreamWaitEvent(s2, fork, 0)); /* s2 joins */
  LAUNCH(add_from, 1, n, 0, s2)(y, x, n);
  CUDA_CHECK(cudaEventRecord(join, s2));
  CUDA_CHECK(cudaStreamWaitEvent(s1, join, 0)); /* and is joined back */
  LAUNCH(add_from, 1, n, 0, s1)(y, x, n);
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(s1, &graph));
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  std::vector<float> got(n);
  CUDA_CHECK(cudaMemcpy(got.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT(got[0] == 0.0f, "captured work ran at capture: y = %g", got[0]);
  emu_stats before, after;
  emu_stats_get(&before);
  for (int i = 0; i < 3; i++)
    CUDA_CHECK(cudaGraphLaunch(exec, s1));
  CUDA_CHECK(cudaStreamSynchronize(s1));
  emu_stats_get(&after);
  CUDA_CHECK(cudaMemcpy(got.data(), y, n * sizeof(float), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; i++)
    EXPECT(got[i] == 12.0f, "y[%d] = %g after 3 launches adding 2 twice", i, got[i]);
  EXPECT(after.graph_launches - before.graph_launches == 3 && after.launches == before.launches,
         "3 launches counted as %llu graph launches and %llu kernels",
         after.graph_launches - before.graph_launches, after.launches - before.launches);
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));

  CUDA_CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
  LAUNCH(fill_value, 1, n, 0, s1)(x, n, 1.0f);
  EXPECT(cudaStreamSynchronize(s1) == cudaErrorStreamCaptureUnsupported, "sync while capturing");
  EXPECT(cudaStreamEndCapture(s1, &graph) == cudaErrorStreamCaptureInvalidated && !graph,
         "a spoilt capture ended well");
  CUDA_CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeGlobal));
  CUDA_CHECK(cudaEventRecord(fork, s1));
  CUDA_CHECK(cudaStreamWaitEvent(s2, fork, 0));
  LAUNCH(fill_value, 1, n, 0, s2)(x, n, 1.0f);
  EXPECT(cudaStreamEndCapture(s1, &graph) == cudaErrorStreamCaptureUnjoined,
         "a capture ended with s2's work not joined back");
  cudaGetLastError();
  CUDA_CHECK(cudaEventDestroy(fork));
  CUDA_CHECK(cudaEventDestroy(join));
  CUDA_CHECK(cudaStreamDestroy(s1));
  CUDA_CHECK(cudaStreamDestroy(s2));
  CUDA_CHECK(cudaFree(x));
  CUDA_CHECK(cudaFree(y));
}

static void test_limits() {
  float *x = nullptr;
  CUDA_CHECK(cudaMalloc(&x, 4096 * sizeof(float)));
  /* 1025 threads and 48 KiB + 4 bytes of dynamic shared memory are refused
   * with the error a GPU gives; the kernel does not run. */
  LAUNCH(oob_write, 1, 1025, 0, 0)(x, 4096);
  EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "1025 threads accepted");
  LAUNCH(oob_write, 1, dim3(32, 32, 2), 0, 0)(x, 4096);
  EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "2048 threads accepted");
  LAUNCH(warp_ops, 1, 32, 48 * 1024 + 4, 0)(x, x);
  EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration, "48 KiB + 4 of shared accepted");
  EXPECT(cudaGetLastError() == cudaSuccess, "the error was not cleared");
  float *bad = x + 1;
  EXPECT(cudaFree(bad) == cudaErrorInvalidDevicePointer, "cudaFree of an inner pointer");
  cudaGetLastError();
  CUDA_CHECK(cudaFree(x));
  EXPECT(emu::bytes_in_use() == 0, "%zu device bytes leaked", emu::bytes_in_use());
}

/* cuBLAS semantics: C (m, n) column-major = op(A) op(B), leading dimensions
 * larger than the rows, a strided batch, and the argument checks. */
static void test_cublas() {
  cublasHandle_t h;
  CUBLAS_CHECK(cublasCreate(&h));
  const int m = 3, n = 2, k = 4, lda = 5, ldb = 6, ldc = 4, batch = 2;
  const long long sa = lda * m + 1, sb = ldb * n + 3, sc = ldc * n + 2; /* A^T stored: (k, m) */
  std::vector<float> a(sa * batch), b(sb * batch), c(sc * batch, 7.0f);
  for (size_t i = 0; i < a.size(); i++)
    a[i] = static_cast<float>(i % 5) - 2.0f;
  for (size_t i = 0; i < b.size(); i++)
    b[i] = static_cast<float>(i % 3) - 1.0f;
  std::vector<float> want = c;
  for (int q = 0; q < batch; q++)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        float s = 0;
        for (int l = 0; l < k; l++)
          s += a[q * sa + i * lda + l] * b[q * sb + j * ldb + l]; /* op(A)=A^T, op(B)=B */
        want[q * sc + j * ldc + i] = 2.0f * s + 0.5f * 7.0f;
      }
  const float alpha = 2.0f, beta = 0.5f;
  CUBLAS_CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a.data(),
                                         lda, sa, b.data(), ldb, sb, &beta, c.data(), ldc, sc,
                                         batch));
  for (size_t i = 0; i < c.size(); i++)
    EXPECT(c[i] == want[i], "strided batched gemm c[%zu] = %g want %g", i, c[i], want[i]);
  EXPECT(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, a.data(), m - 1, b.data(), ldb,
                     &beta, c.data(), ldc) == CUBLAS_STATUS_INVALID_VALUE,
         "lda < m accepted");
  CUBLAS_CHECK(cublasDestroy(h));
}

int main(int argc, char **argv) {
  if (argc > 1) {
    float *x = nullptr;
    CUDA_CHECK(cudaMalloc(&x, 100 * sizeof(float)));
    if (!std::strcmp(argv[1], "oob")) {
      LAUNCH(oob_write, 4, 32, 0, 0)(x, 100);
    } else if (!std::strcmp(argv[1], "divergent")) {
      LAUNCH(divergent_barrier, 1, 64, 0, 0)(x);
    } else if (!std::strcmp(argv[1], "exited")) {
      LAUNCH(exit_before_barrier, 1, 64, 0, 0)(x);
    } else if (!std::strcmp(argv[1], "warp-mask")) {
      LAUNCH(partial_warp_full_mask, 1, 40, 0, 0)(x);
    } else if (!std::strcmp(argv[1], "shared-uninit")) {
      CUDA_CHECK(cudaMemset(x, 0, 100 * sizeof(float)));
      LAUNCH(shared_uninit, 1, 32, 0, 0)(x);
    } else if (!std::strcmp(argv[1], "dyn-uninit")) {
      CUDA_CHECK(cudaMemset(x, 0, 100 * sizeof(float)));
      LAUNCH(dyn_uninit, 1, 32, 33 * sizeof(double), 0)(x);
    } else if (!std::strcmp(argv[1], "no-barrier")) {
      float *out = nullptr;
      CUDA_CHECK(cudaMalloc(&out, sizeof(float)));
      std::vector<float> h(256, 1.0f);
      float *in = dev_upload(h);
      LAUNCH(tree_sum, 1, 256, 0, 0)(in, out, 0);
    } else if (!std::strcmp(argv[1], "block-race")) {
      LAUNCH(block_race, 3, 32, 0, 0)(x);
    } else if (!std::strcmp(argv[1], "warp-race")) {
      LAUNCH(warp_neighbour, 1, 32, 0, 0)(x, 0);
    } else if (!std::strcmp(argv[1], "stream-race")) {
      float *y = nullptr;
      CUDA_CHECK(cudaMalloc(&y, 100 * sizeof(float)));
      cudaStream_t s1, s2;
      CUDA_CHECK(cudaStreamCreate(&s1));
      CUDA_CHECK(cudaStreamCreate(&s2));
      LAUNCH(fill_value, 1, 100, 0, s1)(x, 100, 1.0f);
      LAUNCH(add_from, 1, 100, 0, s2)(y, x, 100); /* the bug: no event after s1's fill */
      CUDA_CHECK(cudaDeviceSynchronize());
    } else if (!std::strcmp(argv[1], "host-deref")) {
      CUDA_CHECK(cudaMemset(x, 0, 100 * sizeof(float)));
      std::printf("x[3] = %g\n", static_cast<double>(x[3])); /* the bug: x is a device pointer */
    } else {
      std::fprintf(stderr, "unknown case %s\n", argv[1]);
      return 2;
    }
    std::printf("the emulator did not stop the kernel\n");
    return 1;
  }
  test_barrier_and_race();
  test_warp_ops();
  test_warp_neighbour();
  test_atomics_coords_streams();
  test_stream_order();
  test_graphs();
  test_limits();
  test_cublas();
  if (failures) {
    std::fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  std::printf("emulator self-test passed\n");
  return 0;
}
