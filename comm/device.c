/* device.c — choosing the backend for run.device. */
#include "comm/device.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#ifdef CTRAIN_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

#ifdef CTRAIN_HAVE_CUDA
/* Before the first CUDA call: with lazy loading (CUDA 12's default) a
 * kernel's first launch loads its module, which waits for the device to go
 * idle, and it never does while an NCCL kernel on a comm stream waits for
 * a peer that is itself at such a launch: multi-rank runs load every module
 * at start-up. A value the user set stays. */
static int cuda_eager_modules(const struct comm *c, struct ct_err *e) {
  if (c->size > 1 && setenv("CUDA_MODULE_LOADING", "EAGER", 0) != 0)
    return err_set(e, CT_ERR_RUNTIME, "setenv CUDA_MODULE_LOADING=EAGER failed");
  return CT_OK;
}
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
  if (cuda_eager_modules(c, e)) return e->code;
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
