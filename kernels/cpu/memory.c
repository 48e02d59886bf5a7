/* memory.c — the CPU backend's memory entries: host memory, 64-byte aligned
 * (a cache line, and the widest vector loads the kernels use). The table
 * argument is unused: the CPU backend has no state. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

#define CPU_ALIGN 64

void *cpu_alloc(const struct ops_backend *be, size_t bytes) {
  (void)be;
  size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
  return aligned_alloc(CPU_ALIGN, rounded ? rounded : CPU_ALIGN);
}

void cpu_release(const struct ops_backend *be, void *p) {
  (void)be;
  free(p);
}

void cpu_memset0(const struct ops_backend *be, void *p, size_t bytes) {
  (void)be;
  memset(p, 0, bytes);
}

void cpu_copy(const struct ops_backend *be, void *dst, const void *src, size_t bytes) {
  (void)be;
  memcpy(dst, src, bytes);
}
