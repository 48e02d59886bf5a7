/* device.c — choosing the backend for run.device. */
#include "comm/device.h"

#include <string.h>

#include "core/log.h"
#ifdef CTRAIN_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

int device_choose(const char *want, int tf32, const struct comm *c, const struct ops_backend **ops,
                  struct ct_err *e) {
  int cuda = strcmp(want, "cuda") == 0;
  if (!cuda && strcmp(want, "auto") != 0) {
    if (strcmp(want, "cpu") != 0)
      return err_set(e, CT_ERR_USAGE, "device must be cpu, cuda or auto (got '%s')", want);
    *ops = ops_cpu();
    log_info("device: cpu");
    return CT_OK;
  }
#ifdef CTRAIN_HAVE_CUDA
  char msg[256];
  if (cuda_backend_probe(msg, sizeof msg) != 0) {
    if (cuda) return err_set(e, CT_ERR_RUNTIME, "device cuda: %s", msg);
    *ops = ops_cpu();
    log_info("device: cpu (auto: %s)", msg);
    return CT_OK;
  }
  if (cuda_backend_select(c->local_rank, msg, sizeof msg) < 0)
    return err_set(e, CT_ERR_RUNTIME, "device %s: %s", want, msg);
  char why[256];
  if (!(*ops = cuda_backend_open(tf32, why, sizeof why)))
    return err_set(e, CT_ERR_RUNTIME, "device %s: %s", want, why);
  log_info("device: %s (rank 0, local rank %d)%s", msg, c->local_rank,
           tf32 ? ", TF32 matrix products" : "");
  return CT_OK;
#else
  (void)c;
  (void)tf32;
  if (cuda)
    return err_set(e, CT_ERR_USAGE,
                   "device cuda: this build of ctrain has no CUDA backend (nvcc was not found "
                   "when it was configured)");
  *ops = ops_cpu();
  log_info("device: cpu (auto: built without CUDA)");
  return CT_OK;
#endif
}

void device_release(const struct ops_backend *ops) {
#ifdef CTRAIN_HAVE_CUDA
  if (ops && ops != ops_cpu()) cuda_backend_close(ops);
#else
  (void)ops;
#endif
}
