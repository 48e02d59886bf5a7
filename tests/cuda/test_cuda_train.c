/* test_cuda_train.c — the real trainer (train_run_with) on the emulated CUDA
 * backend equals the same run on the CPU backend, and so does `ctrain eval`
 * (eval_checkpoint_with) of the checkpoints they write.
 *
 * Each backend trains attn_cnn on one rank for STEPS steps of batch TC_BATCH;
 * train_compare.h describes the runs and justifies the tolerances of the
 * training losses, the test rows and the final checkpoints.
 *
 * It also checks that each run's eval equals the trainer's test row (same
 * graph, same batches): loss 1e-6 relative, accuracy exact. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/evaluate.h"
#include "train_compare.h"

enum { STEPS = 5, N_TRAIN = 64, N_TEST = 24 };
_Static_assert(STEPS <= TC_MAX_STEPS, "train_loss holds TC_MAX_STEPS steps");

static int eval(const struct tc *t, const struct tc_run *r, const struct ops_backend *ops,
                double *loss, double *acc) {
  char json[160], line[8192];
  struct ct_err e = {0};
  snprintf(json, sizeof json, "%s/eval.json", r->dir);
  if (eval_checkpoint_with(r->ckpt, t->data, "test", json, ops, &t->c, &e)) {
    fprintf(stderr, "eval on %s: %s\n", ops->name, e.msg);
    return 1;
  }
  FILE *f = fopen(json, "r");
  const char *l, *a;
  int ok = f && fgets(line, sizeof line, f) && (l = strstr(line, "\"loss\":")) &&
           (a = strstr(line, "\"acc\":")) && sscanf(l + 7, "%lf", loss) == 1 &&
           sscanf(a + 6, "%lf", acc) == 1;
  if (f) fclose(f);
  if (!ok) fprintf(stderr, "%s: no loss and acc\n", json);
  return !ok;
}

/* The eval of r's checkpoint against r's test row. */
static void check_eval(const char *name, const struct tc_run *r, double loss, double acc) {
  if (!(fabs(loss - r->test_loss) <= 1e-6 * fabs(r->test_loss)) || acc != r->test_acc)
    TC_FAIL("%s eval %.9g / %.4f differs from the trainer's test row %.9g / %.4f", name, loss, acc,
            r->test_loss, r->test_acc);
}

int main(int argc, char **argv) {
  static const char *const extra[] = {NULL};
  static const struct tc_test test = {"test_cuda_train", 1, STEPS, N_TRAIN, N_TEST, extra, 1};
  struct tc t;
  tc_start(&t, &test, &argc, &argv);
  double el_cpu, ac_cpu, el_gpu, ac_gpu;
  if (eval(&t, &t.cpu, ops_cpu(), &el_cpu, &ac_cpu) || eval(&t, &t.gpu, t.cuda, &el_gpu, &ac_gpu))
    comm_abort(&t.c, 1);
  printf("eval: cpu %.9g / %.4f, cuda %.9g / %.4f\n", el_cpu, ac_cpu, el_gpu, ac_gpu);
  check_eval("cuda", &t.gpu, el_gpu, ac_gpu);
  check_eval("cpu", &t.cpu, el_cpu, ac_cpu);
  return tc_finish(&t, &test,
                   "attn_cnn training steps, checkpoint and eval: cuda (emulated) equals cpu");
}
