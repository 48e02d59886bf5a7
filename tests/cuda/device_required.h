/* device_required.h — the CUDA tests' first step. Built for the emulator
 * they fail when its device does not answer (a broken emulator); built as
 * `*_gpu` tests for real hardware (CTRAIN_GPU_TEST, -DCTRAIN_GPU_TESTS=ON)
 * a machine without a usable GPU reports them skipped: exit 77, ctest's
 * SKIP_RETURN_CODE, with the CUDA error in one line. */
#ifndef CTRAIN_TESTS_DEVICE_REQUIRED_H
#define CTRAIN_TESTS_DEVICE_REQUIRED_H

#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_backend.h"

static inline void device_required(void) {
  char msg[256];
  if (cuda_backend_probe(msg, sizeof msg) == 0) return;
#ifdef CTRAIN_GPU_TEST
  printf("skipped: no usable CUDA device: %s\n", msg);
  exit(77);
#else
  fprintf(stderr, "the emulated device does not answer: %s\n", msg);
  exit(1);
#endif
}

#endif
