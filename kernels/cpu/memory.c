/* memory.c — the CPU backend's memory entries: host memory, 64-byte aligned
 * (a cache line, and the widest vector loads the kernels use). */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

#define CPU_ALIGN 64

void *cpu_alloc(size_t bytes) {
  size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
  return aligned_alloc(CPU_ALIGN, rounded ? rounded : CPU_ALIGN);
}

void cpu_release(void *p) { free(p); }

void cpu_memset0(void *p, size_t bytes) { memset(p, 0, bytes); }

void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
