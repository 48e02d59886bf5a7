/* emu_stats.h — what the emulated device was asked to do since the last
 * reset: kernel launches, graph launches, cuBLAS calls, bytes copied each
 * way. Tests hold a
 * training step to a budget with it (tests/cuda/test_cuda_budget.c), so a
 * regression to per-image loops fails CI without a GPU. C and C++. */
#ifndef CTRAIN_EMU_STATS_H
#define CTRAIN_EMU_STATS_H

struct emu_stats {
  unsigned long long launches;       /* kernels, when issued (a graph's at its capture) */
  unsigned long long graph_launches; /* cudaGraphLaunch */
  unsigned long long blas_calls;     /* cublasSgemm, cublasSgemmStridedBatched */
  unsigned long long h2d_bytes, d2h_bytes, d2d_bytes;
};

#ifdef __cplusplus
extern "C" {
#endif
void emu_stats_get(struct emu_stats *out);
void emu_stats_reset(void);
#ifdef __cplusplus
}
#endif

#endif
