/* train_compare.h — the real trainer (train_run_with) on the emulated CUDA
 * backend against the same run on the CPU backend, on one rank
 * (test_cuda_train) or several (test_nccl_train).
 *
 * Each backend trains attn_cnn from configs/attn_cnn.ini for `steps` steps of
 * global batch TC_BATCH on a small synthetic dataset, with the config's
 * shuffle and augmentation (crop, flip, rotate) on and a loss logged every
 * step; the trainer then evaluates the test split and rank 0 writes the final
 * checkpoint. Everything host-side (data order, augmentation, initial
 * parameters) is the same, so the two runs differ only by the kernels'
 * rounding. Compared:
 *
 * - the training loss of every step in metrics.jsonl: 1e-5 relative at step
 *   1 (test_cuda_step's bound for one step), LOSS_TOL = 1e-4 relative
 *   after. After k Adam steps the parameters also carry the noise steps
 *   described below (up to 2 lr per step on the pre-BatchNorm biases), so
 *   later losses agree less closely than one step's rounding.
 * - the final checkpoints, read back on the CPU: parameters, Adam moments
 *   and BatchNorm running statistics per tensor within
 *   |cuda - cpu| <= 1e-3 * max|cpu| + 1e-4 |cpu| (test_cuda_step's gradient
 *   tolerance), except where the gradient is rounding noise. A convolution
 *   bias before BatchNorm has an exact gradient of 0, so both backends hold
 *   noise there; an element counts as noise when its first moment (the
 *   averaged gradient) is below FLOOR = 1e-6 * the largest first moment of
 *   the model (test_cuda_step's gradient floor). Adam moves each parameter by
 *   ~lr * m / sqrt(v) ~ +-lr whatever |g| is, so at noise elements the step's
 *   sign is not determined at float32 precision: there the parameter may
 *   differ by 2 lr per step, the moments by 2 FLOOR and 4 FLOOR^2 (or the
 *   general tolerance, when larger: a small mean of large gradients is not
 *   noise in v). A BatchNorm's
 *   running_mean averages its input, which carries the bias of the
 *   convolution before it, so it gets the same 2 lr per step on top.
 *   num_batches_tracked, optimizer_step and the position are exact.
 * - the test rows: loss within LOSS_TOL relative, accuracy within one
 *   image. */
#ifndef CTRAIN_TESTS_CUDA_TRAIN_COMPARE_H
#define CTRAIN_TESTS_CUDA_TRAIN_COMPARE_H

#include <stdio.h>

#include "comm/comm.h"

enum { TC_BATCH = 8 };
#define TC_MAX_STEPS 8 /* not an enum: the tests compare it with their own enum STEPS */

/* Mismatches so far on this rank; TC_FAIL reports one and counts it. */
extern int tc_failures;

#define TC_FAIL(...)                                                                               \
  do {                                                                                             \
    fprintf(stderr, "FAIL " __VA_ARGS__);                                                          \
    fputc('\n', stderr);                                                                           \
    tc_failures++;                                                                                 \
  } while (0)

struct tc_test {
  const char *name;         /* the program's: its scratch directory is /tmp/NAME.XXXXXX */
  int ranks;                /* the world size it must run on */
  int steps;                /* at most TC_MAX_STEPS (a static assertion in the test) */
  int n_train, n_test;      /* images of the synthetic dataset */
  const char *const *extra; /* settings for both runs, NULL-terminated */
  /* The cuda run replays its step as a CUDA Graph (run.cuda_graph): it is
   * also trained with run.cuda_graph = false, and the two must agree
   * bitwise (losses, test row, checkpoint); in the emulator the graph run
   * must have launched its graph at every step after the first. */
  int graphs;
};

struct tc_run {
  char dir[128], ckpt[192];
  double train_loss[TC_MAX_STEPS + 1]; /* by step, from metrics.jsonl (rank 0) */
  double test_loss, test_acc;
};

struct tc {
  struct comm c;
  char tmp[64], data[96];               /* the scratch directory and its dataset */
  struct tc_run cpu, gpu;               /* in tmp/cpu and tmp/cuda */
  struct tc_run eager;                  /* test->graphs: tmp/cuda_eager, run.cuda_graph = false */
  unsigned long long graph_launches[2]; /* emulator: by the cuda run, by the eager one */
  const struct ops_backend *cuda;       /* the CUDA backend, opened by tc_start */
};

/* MPI, the CUDA backend, the scratch directory and dataset (made by rank
 * 0), then both runs on every rank; exits with a message on any error.
 * argv[1] is the config. */
void tc_start(struct tc *t, const struct tc_test *test, int *argc, char ***argv);

/* Compares the runs on rank 0 (module comment), removes the scratch
 * directory, closes the CUDA backend, finalizes MPI and returns the exit status: 1 if any rank
 * counted a mismatch, else 0 after rank 0 prints the step count and
 * `passed`. */
int tc_finish(struct tc *t, const struct tc_test *test, const char *passed);

#endif
