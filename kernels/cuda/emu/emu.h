/* emu.h — the SIMT host emulator: CUDA's built-ins and runtime for g++.
 *
 * kernels/cuda/<name>.cu are compiled as host C++ with this header in place of
 * cuda_runtime.h (kernels/cuda/cuda_compat.cuh chooses). A launch runs the
 * grid on the calling OS thread: blocks one after another, the threads of a
 * block as fibers that switch only at __syncthreads and warp collectives.
 * Between two barriers the ready fibers run in a random order (seeded; the
 * EMU_SEED environment variable overrides), so a shared-memory race shows up
 * as a wrong result. The emulator stops the process with a report when
 * threads of a block reach different barriers, when a thread exits while
 * others wait at a barrier, when a warp collective names lanes that cannot
 * take part, when a launch exceeds the hardware limits (1024 threads per
 * block, 48 KiB of shared memory), when floating-point arithmetic reads
 * shared memory no thread of the block wrote (emu.cpp), when two blocks of
 * a launch write one device word, when host code touches device memory
 * (runtime.cpp), and when two streams reach one buffer with no event
 * ordering them (streams.cpp: each stream is a deferred queue). Device
 * memory is mmap'd pages with poisoned tails, so AddressSanitizer (the
 * emulator tests build with it) catches out-of-bounds accesses; the fiber
 * switches are announced to it.
 *
 * Static __shared__ variables are function-local statics: blocks run one at
 * a time, so one copy serves every block. They live in the section
 * "emu_shared" so their sizes can be audited per kernel (tests/cuda) and
 * the emulator can refill them at each block. */
#ifndef CTRAIN_CUDA_EMU_H
#define CTRAIN_CUDA_EMU_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- qualifiers ------------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ __attribute__((section("emu_shared"))) static

/* ---- vector types and built-in variables ------------------------------------------------ */
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,                 /* cudaEventElapsedTime of an event not yet complete */
  cudaErrorStreamCaptureUnsupported = 900, /* a synchronisation while a stream captures */
  cudaErrorStreamCaptureInvalidated = 901, /* ending a capture an error spoilt */
  cudaErrorStreamCaptureUnjoined = 904,    /* a joined stream's work not joined back */
  cudaErrorStreamCaptureWrongThread = 908, /* ending a capture on a stream not its origin */
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

namespace emu {

struct stream_rec;
struct event_rec;

/* The fiber running now; the block and grid of the running launch. */
struct fiber;
extern fiber *g_cur;
extern uint3 g_block_idx;
extern dim3 g_block_dim, g_grid_dim;
const uint3 &thread_idx();

/* Barriers and warp collectives, with the call site for reports. */
void syncthreads(const char *file, int line);
uint64_t warp_collective(unsigned mask, uint64_t value, int src_lane, const char *file, int line);
int lane_id();
int shfl_src_idx(int src, int width);
int shfl_src_down(unsigned delta, int width);
int shfl_src_xor(int lane_mask, int width);
void *dyn_shared();

/* A launch's configuration checked against the hardware limits, as a real
 * launch checks it when issued; counted when valid. */
cudaError_t launch_check(const char *name, dim3 grid, dim3 block, size_t shmem);
/* Runs body(ctx) as every thread of the grid (a checked configuration). */
void launch_run(const char *name, dim3 grid, dim3 block, size_t shmem, void (*body)(void *),
                void *ctx);

/* Device memory an operation reaches: `bytes` from p, or from p on with the
 * extent unknown (bytes 0: a kernel's pointer argument). */
struct span {
  const void *p;
  size_t bytes;
};
/* Issues work on stream s (streams.cpp). Each stream is a deferred queue:
 * its work runs only when something needs it done (a synchronisation, an
 * event another stream waits for, a blocking copy), so work that reads
 * another stream's output without an event between them reads it stale, as
 * on a GPU where the streams run concurrently, and the emulator reports
 * the pair when they share memory (`what` names the work). The legacy
 * stream (nullptr) waits for all work and runs at once. */
void stream_issue(stream_rec *s, const char *what, const span *spans, size_t n, void (*run)(void *),
                  void *ctx, void (*release)(void *));
/* Work the caller runs itself, now, in s's order: s's earlier work (and
 * what it waits for) runs first (NCCL's collectives: other ranks wait). */
void stream_issue_now(stream_rec *s, const char *what, const span *spans, size_t n);

template <class T> uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}
template <class T> T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

/* Device memory is out of the host's reach except during device work
 * (runtime.cpp): device_begin/device_end bracket it (nested calls count),
 * and device_touch opens the allocation holding p, if any, until the
 * outermost device_end. */
/* emu_stats.h's counters (emu.cpp) */
void count_blas();
void count_graph_launch();
void count_copy(int kind, size_t bytes);
void device_begin();
void device_end();
void device_touch(const void *p);
/* Whether p is in a device allocation (or its guard page). */
bool device_holds(const void *p);
/* Runs every stream's queued work (streams.cpp): what the legacy stream's
 * blocking calls, cudaFree and cudaDeviceSynchronize wait for. */
void device_drain();
/* cudaSuccess, or with a capture open (streams.cpp) the error a blocking
 * call gets then, which spoils every open capture. */
cudaError_t refuse_during_capture();
/* Inside a launch's device_scope, before its pointers are touched: with
 * more than one block, device memory writes are tracked by block and a word
 * two blocks write is reported (runtime.cpp). block_done ends a block. */
void track_blocks(dim3 grid);
void block_done(const char *kernel);
/* Atomics may update one word from many blocks. */
void note_atomic(const void *p, size_t bytes);
/* The race build (race.cpp: kernels compiled with -fsanitize=thread call
 * it for each load and store): a kernel thread's access to shared memory,
 * reported when it reads a word another thread wrote in the same interval
 * (no __syncthreads between them, nor __syncwarp or another collective of
 * their warp for two threads of one warp). Atomics are exempt. */
void shared_access(const void *p, size_t bytes, bool write);
void atomic_enter();
void atomic_leave();
struct atomic_scope {
  atomic_scope(const void *p, size_t bytes) {
    note_atomic(p, bytes);
    atomic_enter();
  }
  ~atomic_scope() { atomic_leave(); }
  atomic_scope(const atomic_scope &) = delete;
  atomic_scope &operator=(const atomic_scope &) = delete;
};
struct device_scope {
  device_scope() { device_begin(); }
  ~device_scope() { device_end(); }
  device_scope(const device_scope &) = delete;
  device_scope &operator=(const device_scope &) = delete;
};
template <class T> void touch_arg(const T &v) {
  if constexpr (std::is_pointer_v<T>) device_touch(v);
}

/* A launch: LAUNCH(k, grid, block, shmem, stream)(args...) copies the
 * arguments once, converted to the kernel's parameter types as a real launch
 * does, and queues the kernel on the stream; it runs on every thread when
 * the stream's work is needed. */
template <class T> void span_arg(const T &v, span *out, size_t &n) {
  if constexpr (std::is_pointer_v<T>) out[n++] = span{v, 0};
}
template <class... P> struct launcher {
  void (*kernel)(P...);
  const char *name;
  dim3 grid, block;
  size_t shmem;
  stream_rec *stream;
  template <class... A> cudaError_t operator()(A &&...a) const {
    struct frame {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> args;
      const char *name;
      dim3 grid, block;
      size_t shmem;
    };
    if (cudaError_t e = launch_check(name, grid, block, shmem)) return e;
    frame *f = new frame{
        kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(a)...), name, grid, block, shmem};
    span spans[sizeof...(P) + 1];
    size_t n = 0;
    std::apply([&](const auto &...x) { (span_arg(x, spans, n), ...); }, f->args);
    stream_issue(
        stream, name, spans, n,
        [](void *p) {
          frame *fr = static_cast<frame *>(p);
          device_scope scope; /* the pointer arguments opened now, the rest when reached */
          track_blocks(fr->grid);
          std::apply([](const auto &...x) { (touch_arg(x), ...); }, fr->args);
          launch_run(
              fr->name, fr->grid, fr->block, fr->shmem,
              [](void *q) {
                frame *g = static_cast<frame *>(q);
                std::apply(g->kernel, g->args);
              },
              fr);
        },
        f, [](void *p) { delete static_cast<frame *>(p); });
    return cudaSuccess;
  }
};
template <class... P>
launcher<P...> make_launcher(void (*kernel)(P...), const char *name, dim3 grid, dim3 block,
                             size_t shmem, stream_rec *stream) {
  return launcher<P...>{kernel, name, grid, block, shmem, stream};
}

} // namespace emu

#define threadIdx (emu::thread_idx())
#define blockIdx (emu::g_block_idx)
#define blockDim (emu::g_block_dim)
#define gridDim (emu::g_grid_dim)
#define warpSize 32

#define LAUNCH(kernel, grid, block, shmem, stream)                                                 \
  emu::make_launcher(kernel, #kernel, grid, block, shmem, stream)
#define DYN_SHARED(type, name) type *name = static_cast<type *>(emu::dyn_shared())

#define __syncthreads() emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(mask) ((void)emu::warp_collective((mask), 0, emu::lane_id(), __FILE__, __LINE__))
#define __shfl_sync(mask, var, src, ...)                                                           \
  emu::shfl_((mask), (var), emu::shfl_src_idx((src), emu::width_(__VA_ARGS__ + 0)), __FILE__,      \
             __LINE__)
#define __shfl_down_sync(mask, var, delta, ...)                                                    \
  emu::shfl_((mask), (var), emu::shfl_src_down((delta), emu::width_(__VA_ARGS__ + 0)), __FILE__,   \
             __LINE__)
#define __shfl_xor_sync(mask, var, lane_mask, ...)                                                 \
  emu::shfl_((mask), (var), emu::shfl_src_xor((lane_mask), emu::width_(__VA_ARGS__ + 0)),          \
             __FILE__, __LINE__)

namespace emu {
/* The optional width argument of a shuffle: absent (0 here) means 32. */
inline int width_(int w) { return w ? w : 32; }
template <class T> T shfl_(unsigned mask, T var, int src, const char *file, int line) {
  return from_bits<T>(warp_collective(mask, to_bits(var), src, file, line));
}
} // namespace emu

/* ---- atomics: one OS thread runs every fiber, so plain updates are atomic ---------------- */
template <class T> inline T atomicAdd(T *p, T v) {
  emu::atomic_scope scope(p, sizeof *p);
  T old = *p;
  *p = old + v;
  return old;
}
template <class T> inline T atomicMax(T *p, T v) {
  emu::atomic_scope scope(p, sizeof *p);
  T old = *p;
  *p = old > v ? old : v;
  return old;
}
template <class T> inline T atomicCAS(T *p, T compare, T v) {
  emu::atomic_scope scope(p, sizeof *p);
  T old = *p;
  *p = old == compare ? v : old;
  return old;
}
template <class T> inline T atomicExch(T *p, T v) {
  emu::atomic_scope scope(p, sizeof *p);
  T old = *p;
  *p = v;
  return old;
}

/* ---- math intrinsics the kernels use ------------------------------------------------------ */
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline int __float_as_int(float f) { return emu::from_bits<int>(emu::to_bits(f)); }
inline float __int_as_float(int i) { return emu::from_bits<float>(emu::to_bits(i)); }
template <class T> inline T __ldg(const T *p) { return *p; }

/* ---- runtime API ------------------------------------------------------------------------- */
typedef emu::stream_rec *cudaStream_t;
typedef emu::event_rec *cudaEvent_t;
#define cudaStreamNonBlocking 0x01u
#define cudaEventDisableTiming 0x02u

namespace emu {
cudaError_t cudaMalloc(void **p, size_t bytes);
template <class T> cudaError_t cudaMalloc(T **p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void **>(p), bytes);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
/* Work issued to s after this call waits for the work e captured. */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
/* Bytes of device memory currently allocated (tests check for leaks). */
size_t bytes_in_use();
/* Makes e the sticky last error (cudaGetLastError) and returns it. */
cudaError_t record_error(cudaError_t e);
} // namespace emu

using emu::cudaDeviceSynchronize;
using emu::cudaEventCreate;
using emu::cudaEventCreateWithFlags;
using emu::cudaEventDestroy;
using emu::cudaEventElapsedTime;
using emu::cudaEventRecord;
using emu::cudaEventSynchronize;
using emu::cudaFree;
using emu::cudaGetDevice;
using emu::cudaGetDeviceCount;
using emu::cudaGetErrorName;
using emu::cudaGetErrorString;
using emu::cudaGetLastError;
using emu::cudaMalloc;
using emu::cudaMemcpy;
using emu::cudaMemcpyAsync;
using emu::cudaMemset;
using emu::cudaMemsetAsync;
using emu::cudaPeekAtLastError;
using emu::cudaSetDevice;
using emu::cudaStreamCreate;
using emu::cudaStreamCreateWithFlags;
using emu::cudaStreamDestroy;
using emu::cudaStreamSynchronize;
using emu::cudaStreamWaitEvent;

/* ---- stream priorities and event queries (comm/nccl.cu's comm stream) -------------------- */
namespace emu {
/* One priority, 0, as on a device without priorities. */
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest);
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int priority);
/* cudaSuccess once the work e captured is done: it runs now, as the device
 * would run it while the host polls. */
cudaError_t cudaEventQuery(cudaEvent_t e);
} // namespace emu
using emu::cudaDeviceGetStreamPriorityRange;
using emu::cudaEventQuery;
using emu::cudaStreamCreateWithPriority;

/* ---- CUDA Graphs by stream capture (streams.cpp) ----------------------------------------- */
/* Between cudaStreamBeginCapture and cudaStreamEndCapture a stream's work
 * is recorded, not run; so is the work of any stream that waits for an
 * event recorded in the capture, which must be joined back to the origin
 * stream by an event before the end. A synchronisation while a capture is
 * open fails with cudaErrorStreamCaptureUnsupported and spoils it. A
 * launched graph runs its work again, in issue order, as one item of the
 * stream it is launched on (when it holds collectives, at once, as they
 * run). Kernel arguments, cuBLAS scalars and copies' host sources are
 * those of the capture. */
namespace emu {
struct graph_rec;
struct graph_exec_rec;
} // namespace emu
typedef emu::graph_rec *cudaGraph_t;
typedef emu::graph_exec_rec *cudaGraphExec_t;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
namespace emu {
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
/* Whether work issued to s now is recorded into a capture (nccl_emu.cpp
 * records its collectives then instead of running them). */
bool stream_capturing(stream_rec *s);
/* The next stream_issue on s records a collective: its graph runs at once
 * when launched. */
void stream_mark_collective(stream_rec *s);
} // namespace emu
using emu::cudaGraphDestroy;
using emu::cudaGraphExecDestroy;
using emu::cudaGraphInstantiate;
using emu::cudaGraphLaunch;
using emu::cudaStreamBeginCapture;
using emu::cudaStreamEndCapture;
using emu::cudaStreamIsCapturing;

#endif
