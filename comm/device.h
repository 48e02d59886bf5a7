/* device.h — where this rank computes. comm owns the choice: it knows the
 * rank's place on its node, which picks the GPU. */
#ifndef CTRAIN_DEVICE_H
#define CTRAIN_DEVICE_H

#include "comm/comm.h"
#include "core/error.h"
#include "kernels/ops.h"

/* want: "cpu", "cuda" or "auto" (run.device). auto is cuda when this build
 * has the CUDA backend and a device answers, else cpu. cuda fails with one
 * line: CT_ERR_USAGE when the build has no CUDA backend, CT_ERR_RUNTIME
 * naming the CUDA error when no device answers. On cuda each rank takes
 * device local_rank % (devices on the node), with its matrix products in
 * TF32 tensor-core math when tf32 != 0 (else full FP32; tf32 does nothing
 * on cpu). Rank 0 logs the choice. */
int device_choose(const char *want, int tf32, const struct comm *c, const struct ops_backend **ops,
                  struct ct_err *e);

/* Frees what device_choose opened for *ops (the CUDA backend's stream,
 * cuBLAS handle and buffers), once nothing uses the table any more. */
void device_release(const struct ops_backend *ops);

#endif
