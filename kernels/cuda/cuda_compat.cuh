/* cuda_compat.cuh — the one header every kernels/cuda source includes first.
 *
 * Under nvcc it is the CUDA runtime and cuBLAS; under g++ (CTRAIN_CUDA_EMU)
 * it is the SIMT host emulator (emu/emu.h) and its cuBLAS shim, so the same
 * bytes run on a GPU and in CI. Kernels launch only through LAUNCH and take
 * dynamic shared memory only through DYN_SHARED. Every runtime and cuBLAS
 * call goes through CUDA_CHECK / CUBLAS_CHECK: a failure names the call, the
 * file and the line, and stops the process (the op table returns nothing, and
 * a device that fails mid-step cannot be recovered from). */
#ifndef CTRAIN_CUDA_COMPAT_CUH
#define CTRAIN_CUDA_COMPAT_CUH

#include <stdio.h>
#include <stdlib.h>

#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cuda_runtime.h>
#define LAUNCH(kernel, grid, block, shmem, stream) kernel<<<grid, block, shmem, stream>>>
#define DYN_SHARED(type, name) extern __shared__ type name[]
#else
#include "kernels/cuda/emu/cublas_emu.h"
#include "kernels/cuda/emu/emu.h"
#endif

#define CUDA_CHECK(call) cuda_check_((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check_((call), #call, __FILE__, __LINE__)
/* After every launch: configuration errors surface here. */
#define LAUNCH_CHECK(name) cuda_check_(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)

static inline void cuda_check_(cudaError_t e, const char *call, const char *file, int line) {
  if (e == cudaSuccess) return;
  fprintf(stderr, "ctrain: %s failed: %s (%s) at %s:%d\n", call, cudaGetErrorString(e),
          cudaGetErrorName(e), file, line);
  abort();
}

static inline void cublas_check_(cublasStatus_t s, const char *call, const char *file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fprintf(stderr, "ctrain: %s failed: %s (status %d) at %s:%d\n", call, cublasGetStatusString(s),
          (int)s, file, line);
  abort();
}

#endif
