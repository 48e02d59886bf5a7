/* test_mpi_cuda_train.c — on 2 ranks (mpirun -np 2), the trainer on the
 * emulated CUDA backend with run.collectives = mpi: its gradients go
 * device -> host -> MPI -> device in buckets, and synchronised BatchNorm's
 * sums through a host copy (the path of a build without NCCL). It must equal
 * the same 2-rank run on the CPU backend, as test_nccl_train's NCCL path
 * does; ctest rejects the run if the trainer says it used NCCL.
 *
 * Tolerances: those of test_cuda_train (train_compare.h): the copies move
 * bits unchanged and both backends average the same float32 values over
 * MPI, so the runs differ only by the kernels' rounding. */
#include "train_compare.h"

enum { STEPS = 3, N_TRAIN = 48, N_TEST = 16 };
_Static_assert(STEPS <= TC_MAX_STEPS, "train_loss holds TC_MAX_STEPS steps");

int main(int argc, char **argv) {
  static const char *const extra[] = {"model.sync_bn=true", "run.allreduce=bucketed",
                                      "run.bucket_kib=16", "run.collectives=mpi", NULL};
  static const struct tc_test test = {"test_mpi_cuda_train", 2, STEPS, N_TRAIN, N_TEST, extra, 0};
  struct tc t;
  tc_start(&t, &test, &argc, &argv);
  return tc_finish(&t, &test,
                   "attn_cnn steps on 2 ranks, sync BN, bucketed: cuda (emulated) over MPI through "
                   "host memory equals cpu over MPI");
}
