/* test_nccl_train.c — on 2 ranks (mpirun -np 2), the trainer on the
 * emulated CUDA backend, whose gradients and synchronised BatchNorm go over
 * NCCL (comm/nccl.h, the emulator's NCCL shim), equals the same 2-rank run
 * on the CPU backend, whose gradients and sync BN go over MPI on the host.
 *
 * Each backend trains attn_cnn for STEPS steps of global batch TC_BATCH
 * (TC_BATCH / 2 a rank) as train_compare.h describes, with
 * model.sync_bn = true (BatchNorm statistics over both ranks' images),
 * run.allreduce = bucketed and run.bucket_kib = 16, so the ~45k gradients go
 * in ~12 buckets issued from the backward hook. ctest also requires the
 * trainer's "all-reduce over NCCL" line, so the emulated run cannot pass on
 * the host MPI path.
 *
 * Tolerances: those of the single-rank test_cuda_train, which
 * train_compare.h justifies: the runs differ only by the kernels' rounding.
 * The collectives add nothing: the emulated ncclAvg is the sum of the same
 * two float32 values times 1/2, as the host path forms it, and sync
 * BN's sums are float64 on both backends, rounded once to float32. Compared:
 * the training loss of every step, the final checkpoints (parameters, Adam
 * moments, BatchNorm running statistics, num_batches_tracked and the step)
 * and the test row. */
#include "train_compare.h"

enum { STEPS = 3, N_TRAIN = 48, N_TEST = 16 };
_Static_assert(STEPS <= TC_MAX_STEPS, "train_loss holds TC_MAX_STEPS steps");

int main(int argc, char **argv) {
  static const char *const extra[] = {"model.sync_bn=true", "run.allreduce=bucketed",
                                      "run.bucket_kib=16", NULL};
  static const struct tc_test test = {"test_nccl_train", 2, STEPS, N_TRAIN, N_TEST, extra, 1};
  struct tc t;
  tc_start(&t, &test, &argc, &argv);
  return tc_finish(&t, &test,
                   "attn_cnn steps on 2 ranks, sync BN, bucketed: cuda (emulated) over NCCL equals "
                   "cpu over MPI");
}
