/* cuda_backend.h — the CUDA backend's front door: the device probe and
 * choice, and opening and closing its op table (struct ops_backend,
 * kernels/ops.h). Plain C. */
#ifndef CTRAIN_CUDA_BACKEND_H
#define CTRAIN_CUDA_BACKEND_H

#include <stddef.h>

#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when a CUDA device answers. Otherwise -1, with one line in msg naming
 * the CUDA error (e.g. "cudaGetDeviceCount failed: CUDA driver version is
 * insufficient for CUDA runtime version (cudaErrorInsufficientDriver, 35)")
 * or saying that no device is present. Safe to call before cuda_backend_open. */
int cuda_backend_probe(char *msg, size_t len);

/* Binds this process to device local_rank % (devices visible), before
 * cuda_backend_open, whose stream and cuBLAS handle live on that device.
 * Returns the device index and describes the choice in msg ("cuda device 1
 * of 4"); -1 with one line in msg naming the failed CUDA call. */
int cuda_backend_select(int local_rank, char *msg, size_t len);

/* The op table of the device this process is bound to
 * (cuda_backend_select), with its own stream, cuBLAS handle and reduction
 * buffers: every op and memory entry of the table runs in order on that
 * stream. Matrix products use TF32 tensor-core math when tf32 != 0, else
 * full FP32. NULL, with one line in msg naming the failed call, when one of
 * them cannot be created. */
const struct ops_backend *cuda_backend_open(int tf32, char *msg, size_t len);

/* Frees what cuda_backend_open created; NULL does nothing. */
void cuda_backend_close(const struct ops_backend *be);

/* The stream of an opened table, as a cudaStream_t (void * in C):
 * collectives on device memory (comm/nccl.h) are ordered after it. */
void *cuda_backend_stream(const struct ops_backend *be);

/* Device time in ms of the work `issue(arg)` puts on be's stream, between
 * two CUDA events around it (waits for the second): what the GPU spent,
 * not the host's launch overhead. For profiles (bench_step --profile). */
double cuda_backend_time_ms(const struct ops_backend *be, void (*issue)(void *), void *arg);

#ifdef __cplusplus
}
#endif
#endif
