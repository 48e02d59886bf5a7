#include "cli/env.h"

#include <stdlib.h>
#include <unistd.h>

/* Two library settings are read when the libraries load, so they are set
 * here and this binary runs itself again, once (a user's own value wins):
 * - GOMP_SPINCOUNT: idle OpenMP workers spin 300000 iterations by default,
 *   starving the loader's augmentation thread on a fully used node (steps
 *   measured 8x slower on 2 cores); 10000 keeps the wake-up fast.
 * - OPENBLAS_CORETYPE: Debian's OpenBLAS picks its AVX2 kernels on AVX-512
 *   AMD CPUs, where its SkylakeX kernels run ~1.3x faster (tests/bench). */
void env_tune_and_reexec(char **argv) {
  int changed = 0;
  if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY"))
    changed |= setenv("GOMP_SPINCOUNT", "10000", 1) == 0;
  if (!getenv("OPENBLAS_CORETYPE") && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    changed |= setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) == 0;
  if (changed) execv("/proc/self/exe", argv); /* on failure, go on as we are */
}

