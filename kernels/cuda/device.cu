/* device.cu — binding this process to one of the node's GPUs. */
#include <stdio.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_compat.cuh"

/* One line naming the failed call, where, and the CUDA error. */
static int select_fail(char *msg, size_t len, cudaError_t e, const char *call, int line) {
  snprintf(msg, len, "%s failed at %s:%d: %s (%s, %d)", call, __FILE__, line, cudaGetErrorString(e),
           cudaGetErrorName(e), (int)e);
  cudaGetLastError(); /* clear it: the caller reports and decides */
  return -1;
}

#define SELECT_TRY(call)                                                                           \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) return select_fail(msg, len, e_, #call, __LINE__);                      \
  } while (0)

extern "C" int cuda_backend_select(int local_rank, char *msg, size_t len) {
  int count = 0;
  SELECT_TRY(cudaGetDeviceCount(&count));
  if (count < 1) {
    snprintf(msg, len, "cudaGetDeviceCount found no CUDA device");
    return -1;
  }
  int device = (local_rank < 0 ? 0 : local_rank) % count;
  SELECT_TRY(cudaSetDevice(device));
  snprintf(msg, len, "cuda device %d of %d", device, count);
  return device;
}
