/* cuda_backend.h — what the rest of ctrain may ask the CUDA backend besides
 * its op table (ops_cuda() in kernels/ops.h). Plain C. */
#ifndef CTRAIN_CUDA_BACKEND_H
#define CTRAIN_CUDA_BACKEND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 when a CUDA device answers. Otherwise -1, with one line in msg naming
 * the CUDA error (e.g. "cudaGetDeviceCount failed: CUDA driver version is
 * insufficient for CUDA runtime version (cudaErrorInsufficientDriver, 35)")
 * or saying that no device is present. Safe to call before ops_cuda(). */
int cuda_backend_probe(char *msg, size_t len);

/* Binds this process to device local_rank % (devices visible), before the
 * first ops_cuda(), whose stream and cuBLAS handle live on that device.
 * Returns the device index and describes the choice in msg ("cuda device 1
 * of 4"); -1 with one line in msg naming the failed CUDA call. */
int cuda_backend_select(int local_rank, char *msg, size_t len);

/* The stream every op of ops_cuda() runs on, as a cudaStream_t (void * in
 * C): collectives on device memory (comm/nccl.h) are ordered after it. */
void *cuda_backend_stream(void);

/* Matrix products in TF32 tensor-core math (on) or full FP32 (off, the
 * default). Takes effect for the GEMMs issued after the call. */
void cuda_backend_set_tf32(int on);

#ifdef __cplusplus
}
#endif
#endif
