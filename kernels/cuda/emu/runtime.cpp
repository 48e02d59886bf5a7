/* runtime.cpp — the SIMT host emulator's CUDA runtime (emu.h): device
 * memory with a checked header, streams and events (one in-order device,
 * so synchronisation is immediate), and the sticky last error. */
#include "kernels/cuda/emu/emu.h"

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace emu {

struct stream_rec {
  int id;
};
struct event_rec {
  double ms;
};

namespace {
/* A device allocation starts with this header, so cudaFree can check the
 * pointer and keep the count of bytes in use. */
struct alloc_header {
  uint64_t magic;
  size_t bytes;
};
constexpr uint64_t ALLOC_MAGIC = 0xdec1ce0fa110c8edULL;
constexpr size_t HEADER = 256; /* keeps cudaMalloc's 256-byte alignment */

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

cudaError_t last_error = cudaSuccess;
size_t allocated = 0;

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}
} // namespace

cudaError_t record_error(cudaError_t e) { return record(e); }

size_t bytes_in_use() { return allocated; }

cudaError_t cudaMalloc(void **p, size_t bytes) {
  if (!p) return record(cudaErrorInvalidValue);
  void *m = nullptr;
  if (posix_memalign(&m, HEADER, HEADER + bytes)) return record(cudaErrorMemoryAllocation);
  alloc_header *h = static_cast<alloc_header *>(m);
  h->magic = ALLOC_MAGIC;
  h->bytes = bytes;
  allocated += bytes;
  *p = static_cast<char *>(m) + HEADER;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  alloc_header *h = reinterpret_cast<alloc_header *>(static_cast<char *>(p) - HEADER);
  if (h->magic != ALLOC_MAGIC) return record(cudaErrorInvalidDevicePointer);
  h->magic = 0;
  allocated -= h->bytes;
  std::free(h);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return record(cudaErrorInvalidMemcpyDirection);
  if (bytes && (!dst || !src)) return record(cudaErrorInvalidValue);
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  if (bytes && !p) return record(cudaErrorInvalidValue);
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(p, value, bytes);
}

/* Work runs when it is issued, so every stream is always complete. */
cudaError_t cudaStreamCreate(cudaStream_t *s) {
  static int next_id = 1;
  if (!s) return record(cudaErrorInvalidValue);
  *s = new stream_rec{next_id++};
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
  if (flags & ~cudaStreamNonBlocking) return record(cudaErrorInvalidValue);
  return cudaStreamCreate(s);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s) return record(cudaErrorInvalidResourceHandle);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t *e) {
  if (!e) return record(cudaErrorInvalidValue);
  *e = new event_rec{0.0};
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
  if (flags & ~cudaEventDisableTiming) return record(cudaErrorInvalidValue);
  return cudaEventCreate(e);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned flags) {
  if (!e) return record(cudaErrorInvalidResourceHandle);
  return flags ? record(cudaErrorInvalidValue) : cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  if (!e) return record(cudaErrorInvalidResourceHandle);
  delete e;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return record(cudaErrorInvalidResourceHandle);
  e->ms = now_ms();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return e ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return record(cudaErrorInvalidValue);
  if (!start || !end) return record(cudaErrorInvalidResourceHandle);
  *ms = static_cast<float>(end->ms - start->ms);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : record(cudaErrorInvalidValue);
}

cudaError_t cudaGetDevice(int *device) {
  if (!device) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return last_error; }

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
  case cudaSuccess:
    return "cudaSuccess";
  case cudaErrorInvalidValue:
    return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation:
    return "cudaErrorMemoryAllocation";
  case cudaErrorInvalidConfiguration:
    return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidDevicePointer:
    return "cudaErrorInvalidDevicePointer";
  case cudaErrorInvalidMemcpyDirection:
    return "cudaErrorInvalidMemcpyDirection";
  case cudaErrorInvalidResourceHandle:
    return "cudaErrorInvalidResourceHandle";
  }
  return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess:
    return "no error";
  case cudaErrorInvalidValue:
    return "invalid argument";
  case cudaErrorMemoryAllocation:
    return "out of memory";
  case cudaErrorInvalidConfiguration:
    return "invalid configuration argument";
  case cudaErrorInvalidDevicePointer:
    return "invalid device pointer";
  case cudaErrorInvalidMemcpyDirection:
    return "invalid copy direction for memcpy";
  case cudaErrorInvalidResourceHandle:
    return "invalid resource handle";
  }
  return "unknown error";
}

/* ---- stream priorities and event queries (emu.h) ----------------------------------------- */
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
  if (least) *least = 0;
  if (greatest) *greatest = 0;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int priority) {
  (void)priority; /* CUDA clamps it into the range, which here is 0 alone */
  return cudaStreamCreateWithFlags(s, flags);
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
  return e ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

} // namespace emu
