/* runtime.cpp — the SIMT host emulator's CUDA runtime (emu.h): device
 * memory out of the host's reach, blocking copies and fills, the device's
 * identity and the sticky last error; streams and events are streams.cpp's. */
#include "kernels/cuda/emu/emu.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define EMU_POISON(p, n) __asan_poison_memory_region((p), (n))
#define EMU_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define EMU_POISON(p, n) ((void)(p), (void)(n))
#define EMU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace emu {

namespace {

cudaError_t last_error = cudaSuccess;
size_t allocated = 0;

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

/* Device memory: each allocation has pages of its own (mmap), which stay
 * PROT_NONE except while device work (a launch, a copy, a memset, cuBLAS,
 * NCCL) runs, so host code that dereferences a device pointer faults as it
 * would on a GPU. A device operation opens the allocations it is handed
 * (device_touch); a kernel reaching one through a pointer inside its
 * arguments faults once and on_segv opens it. One PROT_NONE page follows
 * each allocation; the bytes between its end and that page are poisoned for
 * AddressSanitizer. */
struct dev_alloc {
  size_t bytes, span; /* span: the bytes rounded up to whole pages */
  bool open;
};
std::map<uintptr_t, dev_alloc> allocs; /* by address */
std::vector<uintptr_t> opened;         /* allocations the running device operation opened */
int device_depth = 0;
size_t page_bytes = 0;
struct sigaction prev_segv;

/* The allocation holding byte a (its guard page included), or allocs.end(). */
std::map<uintptr_t, dev_alloc>::iterator holding(uintptr_t a) {
  auto it = allocs.upper_bound(a);
  if (it == allocs.begin()) return allocs.end();
  --it;
  return a < it->first + it->second.span + page_bytes ? it : allocs.end();
}

/* Writes by block, in a launch of more than one block (blocks of a GPU run
 * concurrently, so two writing one word race): allocations open read-only,
 * a block's first write to a page faults and on_segv saves the page and
 * opens it; when the block ends (block_done) the words that differ from the
 * saved page are the block's, checked against the block that last wrote
 * each in this launch, and the page is read-only again. Words written by
 * atomics are exempt. A write of the value a word already holds goes unseen
 * (harmless on a GPU too). */
struct page_rec {
  std::vector<uint32_t> saved, writer; /* writer: 1 + linear block id, 0 for none */
};
bool tracking = false;
std::unordered_map<uintptr_t, page_rec> pages; /* pages written in this launch */
std::vector<uintptr_t> dirty;                  /* pages the running block wrote */
std::unordered_set<uintptr_t> atomic_words;

/* Page copies without AddressSanitizer's checks: the last page of an
 * allocation holds its poisoned tail. */
__attribute__((no_sanitize_address)) void copy_words(uint32_t *dst, const uint32_t *src, size_t n) {
  for (size_t i = 0; i < n; i++)
    dst[i] = src[i];
}

/* A block's first write to page pg in this launch: the page as it was. */
void save_page(uintptr_t pg) {
  page_rec &r = pages[pg]; /* the fault is at a kernel's store, never inside malloc */
  size_t words = page_bytes / 4;
  if (r.saved.empty()) r.saved.resize(words), r.writer.assign(words, 0);
  copy_words(r.saved.data(), reinterpret_cast<const uint32_t *>(pg), words);
  mprotect(reinterpret_cast<void *>(pg), page_bytes, PROT_READ | PROT_WRITE);
  dirty.push_back(pg);
}

void open_alloc(uintptr_t base, dev_alloc &d) {
  if (d.open) return;
  mprotect(reinterpret_cast<void *>(base), d.span, tracking ? PROT_READ : PROT_READ | PROT_WRITE);
  d.open = true;
  opened.push_back(base); /* capacity reserved by cudaMalloc: no allocation here */
}

/* A fault on a device allocation: inside device work, a kernel reaching it
 * through a pointer it was not passed directly (opened, and the access is
 * retried); from host code, reported, and the previous handler
 * (AddressSanitizer's) then reports the stack. */
void on_segv(int, siginfo_t *si, void *) {
  uintptr_t a = reinterpret_cast<uintptr_t>(si->si_addr);
  auto it = holding(a);
  if (it != allocs.end()) {
    dev_alloc &d = it->second;
    size_t off = a - it->first;
    if (off < d.span && device_depth > 0 && !d.open) return open_alloc(it->first, d);
    if (off < d.span && device_depth > 0 && tracking) return save_page(a & ~(page_bytes - 1));
    if (off >= d.span)
      std::fprintf(stderr,
                   "emu: access at %p, %zu bytes past the end of a cudaMalloc of %zu bytes\n",
                   si->si_addr, off - d.bytes, d.bytes);
    else if (device_depth == 0)
      std::fprintf(stderr,
                   "emu: host access to device memory at %p (byte %zu of a cudaMalloc of %zu "
                   "bytes): only kernels, cudaMemcpy*, cudaMemset*, cuBLAS and NCCL may touch it\n",
                   si->si_addr, off, d.bytes);
  }
  sigaction(SIGSEGV, &prev_segv, nullptr); /* the access faults again, there */
}

void init_device_memory() {
  if (page_bytes) return;
  page_bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &prev_segv);
}

} // namespace

void device_begin() { device_depth++; }

void track_blocks(dim3 grid) {
  tracking = device_depth > 0 && (grid.x > 1 || grid.y > 1 || grid.z > 1);
}

void note_atomic(const void *p, size_t bytes) {
  if (!tracking) return;
  for (size_t i = 0; i < bytes; i += 4)
    atomic_words.insert((reinterpret_cast<uintptr_t>(p) + i) & ~uintptr_t(3));
}

namespace {
[[noreturn]] void report_race(const char *kernel, uintptr_t word, uint32_t other) {
  auto it = holding(word);
  unsigned gx = g_grid_dim.x, gy = g_grid_dim.y, o = other - 1;
  std::fprintf(stderr,
               "emu: kernel %s: blocks (%u,%u,%u) and (%u,%u,%u) both write device memory at "
               "%#lx (byte %zu of a cudaMalloc of %zu bytes) in one launch, not by atomics: a "
               "race on a GPU, whose blocks run concurrently\n",
               kernel, o % gx, o / gx % gy, o / gx / gy, g_block_idx.x, g_block_idx.y,
               g_block_idx.z, static_cast<unsigned long>(word), word - it->first, it->second.bytes);
  std::_Exit(70);
}

/* The words of page pg the running block (writer id `me`) changed. */
__attribute__((no_sanitize_address)) void claim_words(const char *kernel, uintptr_t pg, page_rec &r,
                                                      uint32_t me) {
  const uint32_t *now = reinterpret_cast<const uint32_t *>(pg);
  for (size_t i = 0; i < r.saved.size(); i++) {
    if (now[i] == r.saved[i]) continue;
    uintptr_t word = pg + 4 * i;
    if (r.writer[i] && r.writer[i] != me && !atomic_words.count(word))
      report_race(kernel, word, r.writer[i]);
    r.writer[i] = me;
  }
}
} // namespace

void block_done(const char *kernel) {
  uint32_t me = 1 + g_block_idx.x + g_grid_dim.x * (g_block_idx.y + g_grid_dim.y * g_block_idx.z);
  for (uintptr_t pg : dirty) {
    claim_words(kernel, pg, pages[pg], me);
    mprotect(reinterpret_cast<void *>(pg), page_bytes, PROT_READ);
  }
  dirty.clear();
}

void device_end() {
  if (--device_depth) return;
  if (tracking) pages.clear(), atomic_words.clear(), dirty.clear();
  tracking = false;
  for (uintptr_t base : opened) {
    auto it = allocs.find(base);
    if (it == allocs.end()) continue; /* freed meanwhile */
    mprotect(reinterpret_cast<void *>(base), it->second.span, PROT_NONE);
    it->second.open = false;
  }
  opened.clear();
}

bool device_holds(const void *p) {
  return p && !allocs.empty() && holding(reinterpret_cast<uintptr_t>(p)) != allocs.end();
}

void device_touch(const void *p) {
  if (!p || allocs.empty()) return;
  auto it = holding(reinterpret_cast<uintptr_t>(p));
  if (it != allocs.end()) open_alloc(it->first, it->second);
}

cudaError_t record_error(cudaError_t e) { return record(e); }

size_t bytes_in_use() { return allocated; }

cudaError_t cudaMalloc(void **p, size_t bytes) {
  if (!p) return record(cudaErrorInvalidValue);
  init_device_memory();
  size_t span = (bytes + page_bytes - 1) / page_bytes * page_bytes;
  if (!span) span = page_bytes;
  void *m = mmap(nullptr, span + page_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (m == MAP_FAILED) return record(cudaErrorMemoryAllocation);
  EMU_POISON(static_cast<char *>(m) + bytes, span - bytes);
  allocs[reinterpret_cast<uintptr_t>(m)] = dev_alloc{bytes, span, false};
  opened.reserve(allocs.size());
  allocated += bytes;
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  auto it = allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == allocs.end()) return record(cudaErrorInvalidDevicePointer);
  if (cudaError_t r = refuse_during_capture()) return r;
  device_drain(); /* as cudaFree does: no queued work may still reach it */
  size_t span = it->second.span;
  allocated -= it->second.bytes;
  allocs.erase(it);
  EMU_UNPOISON(p, span); /* the next mapping here starts clean */
  munmap(p, span + page_bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return record(cudaErrorInvalidMemcpyDirection);
  if (bytes && (!dst || !src)) return record(cudaErrorInvalidValue);
  if (!bytes) return cudaSuccess;
  if (cudaError_t r = refuse_during_capture()) return r;
  device_drain(); /* the legacy stream: after all work issued so far */
  emu::count_copy(kind, bytes);
  device_scope scope;
  device_touch(dst);
  device_touch(src);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  if (bytes && !p) return record(cudaErrorInvalidValue);
  if (!bytes) return cudaSuccess;
  if (cudaError_t r = refuse_during_capture()) return r;
  device_drain();
  device_scope scope;
  device_touch(p);
  std::memset(p, value, bytes);
  return cudaSuccess;
}

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
  case cudaErrorNotReady:
    return "cudaErrorNotReady";
  case cudaErrorStreamCaptureUnsupported:
    return "cudaErrorStreamCaptureUnsupported";
  case cudaErrorStreamCaptureInvalidated:
    return "cudaErrorStreamCaptureInvalidated";
  case cudaErrorStreamCaptureUnjoined:
    return "cudaErrorStreamCaptureUnjoined";
  case cudaErrorStreamCaptureWrongThread:
    return "cudaErrorStreamCaptureWrongThread";
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
  case cudaErrorNotReady:
    return "device not ready";
  case cudaErrorStreamCaptureUnsupported:
    return "operation not permitted when stream is capturing";
  case cudaErrorStreamCaptureInvalidated:
    return "operation failed due to a previous error during capture";
  case cudaErrorStreamCaptureUnjoined:
    return "capture was not joined back to the origin stream";
  case cudaErrorStreamCaptureWrongThread:
    return "capture ended on a stream that did not begin it";
  }
  return "unknown error";
}

} // namespace emu
