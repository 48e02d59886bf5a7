/* test_cuda_train.c — the real trainer (train_run_with) on the emulated CUDA
 * backend equals the same run on the CPU backend, and so does `ctrain eval`
 * (eval_checkpoint_with) of the checkpoints they write.
 *
 * Each backend trains attn_cnn from configs/attn_cnn.ini for STEPS steps of
 * batch BATCH on a small synthetic dataset, with the config's shuffle and
 * augmentation (crop, flip, rotate) on and a loss logged every step; the
 * trainer then evaluates the test split and writes its final checkpoint.
 * Everything host-side (data order, augmentation, initial parameters) is the
 * same, so the two runs differ only by the kernels' rounding. Compared:
 *
 * - the training loss of every step in metrics.jsonl: 1e-5 relative at step
 *   1 (test_cuda_step's bound for one step), LOSS_TOL = 1e-4 relative after.
 *   After k Adam steps the parameters also carry the noise steps described
 *   below (up to 2 lr per step on the pre-BatchNorm biases), so later losses
 *   agree less closely than one step's rounding.
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
 *   image.
 *
 * It also checks that the emulated run's eval equals the trainer's test row
 * (same graph, same batches): loss 1e-6 relative, accuracy exact. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "comm/comm.h"
#include "config/config.h"
#include "data/prepare.h"
#include "train/evaluate.h"
#include "train/session.h"
#include "train/spec.h"
#include "train/train.h"

enum { STEPS = 5, BATCH = 8, N_TRAIN = 64, N_TEST = 24 };
static const double LOSS_TOL = 1e-4;

static int failures;

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    fprintf(stderr, "FAIL " __VA_ARGS__);                                                          \
    fputc('\n', stderr);                                                                           \
    failures++;                                                                                    \
  } while (0)

struct run {
  char dir[256], ckpt[300];
  double train_loss[STEPS + 1]; /* by step, from metrics.jsonl */
  double test_loss, test_acc;
};

static int train(const char *ini, const char *data, const char *dir, const struct comm *c,
                 const struct ops_backend *ops, struct run *r) {
  struct config *cfg = malloc(sizeof *cfg);
  struct ct_err e = {0};
  char set[4][320];
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  snprintf(set[0], sizeof set[0], "data.path=%s", data);
  snprintf(set[1], sizeof set[1], "run.dir=%s", dir);
  snprintf(set[2], sizeof set[2], "train.max_steps=%d", STEPS);
  snprintf(set[3], sizeof set[3], "train.batch_size=%d", BATCH);
  config_defaults(cfg);
  int rc = config_load_file(cfg, ini, &e);
  for (int i = 0; i < 4 && !rc; i++)
    rc = config_set(cfg, set[i], &e);
  const char *fixed[] = {"data.val_size=0", "run.log_every=1", "run.threads=1", "run.resume=none"};
  for (int i = 0; i < 4 && !rc; i++)
    rc = config_set(cfg, fixed[i], &e);
  if (!rc) rc = config_validate(cfg, &e);
  if (!rc) rc = train_run_with(cfg, c, ops, &e);
  free(cfg);
  if (rc) {
    fprintf(stderr, "train on %s: %s\n", ops->name, e.msg);
    return 1;
  }
  snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoints/step_%08d.h5", dir, STEPS);

  char path[300], line[1024];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return 1;
  }
  int rows = 0;
  while (fgets(line, sizeof line, f)) {
    long step;
    double loss, acc;
    const char *s = strstr(line, "\"step\":"), *l = strstr(line, "\"loss\":"),
               *a = strstr(line, "\"acc\":");
    if (!s || !l || !a || sscanf(s + 7, "%ld", &step) != 1 || sscanf(l + 7, "%lf", &loss) != 1 ||
        sscanf(a + 6, "%lf", &acc) != 1)
      continue;
    if (strstr(line, "\"split\":\"train\"") && step >= 1 && step <= STEPS) {
      r->train_loss[step] = loss;
      rows++;
    } else if (strstr(line, "\"split\":\"test\"")) {
      r->test_loss = loss;
      r->test_acc = acc;
      rows++;
    }
  }
  fclose(f);
  if (rows != STEPS + 1) {
    fprintf(stderr, "%s: %d train and test rows, expected %d\n", path, rows, STEPS + 1);
    return 1;
  }
  return 0;
}

static int eval(const struct run *r, const char *data, const struct comm *c,
                const struct ops_backend *ops, double *loss, double *acc) {
  char json[320], line[8192];
  struct ct_err e = {0};
  snprintf(json, sizeof json, "%s/eval.json", r->dir);
  if (eval_checkpoint_with(r->ckpt, data, "test", json, ops, c, &e)) {
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

/* A checkpoint read back on the CPU: the graph and the optimizer state. */
struct loaded {
  struct session s;
  struct optimizer o;
  struct ckpt_meta meta;
  double lr; /* train.lr, the schedule's largest rate */
};

static int load(const char *path, struct loaded *l) {
  struct config *cfg = malloc(sizeof *cfg);
  struct ct_err e = {0};
  struct model_spec spec;
  struct dataset_info info = {.num_classes = 10};
  config_defaults(cfg);
  int rc = ckpt_read_meta(path, &l->meta, &e) ||
           config_load_string(cfg, l->meta.config, path, &e) ||
           model_spec_from_config(cfg, &info, cfg->train.batch_size, &spec, &e) ||
           session_build(&l->s, ops_cpu(), &spec, 1, cfg->train.seed, &e) ||
           optim_init(&l->o, ops_cpu(), cfg->train.optimizer, l->s.g.params_len, cfg->train.beta2,
                      cfg->train.eps, 0, 0, &e) ||
           ckpt_load(path, &l->s.g, &l->o, &e);
  l->lr = cfg->train.lr;
  free(cfg);
  if (rc) fprintf(stderr, "%s: %s\n", path, e.msg);
  return rc;
}

static double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = fabs(x[i]) > m ? fabs(x[i]) : m;
  return m;
}

/* Elements of b outside a's tolerance (module comment): `noise` widens it
 * where the cpu first moment m (NULL: nowhere) is below floor; `extra` adds
 * to it everywhere. */
static void compare(const char *what, const char *name, const float *a, const float *b,
                    const float *m, double floor, double noise, double extra, size_t n) {
  double tol = 1e-3 * max_abs(a, n) + extra;
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double t = tol + 1e-4 * fabs(a[i]);
    if (m && fabs(m[i]) <= floor && noise > t) t = noise;
    if (!(fabs(a[i] - b[i]) <= t) && bad++ < 3)
      FAIL("%s %s[%zu]: cuda %.9g cpu %.9g (tolerance %.3g)", what, name, i, b[i], a[i], t);
  }
}

static void compare_checkpoints(const struct loaded *a, const struct loaded *b) {
  const struct graph *ga = &a->s.g, *gb = &b->s.g;
  if (a->meta.step != STEPS || b->meta.step != STEPS || a->o.step != STEPS || b->o.step != STEPS)
    FAIL("position: cpu step %ld/%ld, cuda %ld/%ld", a->meta.step, a->o.step, b->meta.step,
         b->o.step);
  const double floor = 1e-6 * max_abs(a->o.m, ga->params_len), lr_noise = 2.0 * a->lr * STEPS;
  int tensors = 0;
  for (int t = 0; t < ga->ntensors; t++) {
    const struct tensor *ta = &ga->tensors[t], *tb = &gb->tensors[t];
    if (ta->view_of >= 0 || !ta->name[0] || (ta->kind != TK_PARAM && ta->kind != TK_BUFFER))
      continue;
    tensors++;
    if (ta->dtype == DT_I64) { /* num_batches_tracked */
      int64_t ca, cb;
      memcpy(&ca, ta->data, sizeof ca);
      memcpy(&cb, tb->data, sizeof cb);
      if (ca != STEPS || cb != STEPS)
        FAIL("%s: cuda %lld cpu %lld", ta->name, (long long)cb, (long long)ca);
      continue;
    }
    if (ta->kind == TK_BUFFER) {
      int mean = strstr(ta->name, "running_mean") != NULL;
      compare("buffer", ta->name, ta->data, tb->data, NULL, 0, 0, mean ? lr_noise : 0, ta->numel);
      continue;
    }
    size_t off = (size_t)((const float *)ta->data - ga->params);
    const float *ma = a->o.m + off;
    compare("param", ta->name, ta->data, tb->data, ma, floor, lr_noise, 0, ta->numel);
    compare("exp_avg", ta->name, ma, b->o.m + off, ma, floor, 2 * floor, 0, ta->numel);
    compare("exp_avg_sq", ta->name, a->o.v + off, b->o.v + off, ma, floor, 4 * floor * floor, 0,
            ta->numel);
  }
  printf("compared %d parameter and buffer tensors (%zu parameters) and their Adam moments; "
         "noise floor of the first moment %.3g\n",
         tensors, ga->params_len, floor);
}

int main(int argc, char **argv) {
  struct comm c;
  struct ct_err e = {0};
  if (argc != 2) {
    fprintf(stderr, "usage: test_cuda_train SOURCE_DIR/configs/attn_cnn.ini\n");
    return 2;
  }
  const char *ini = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (comm_init(&c, &argc, &argv, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  char tmp[] = "/tmp/test_cuda_train.XXXXXX", data[300], dir_cpu[300], dir_gpu[300];
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(data, sizeof data, "%s/d.h5", tmp);
  snprintf(dir_cpu, sizeof dir_cpu, "%s/cpu", tmp);
  snprintf(dir_gpu, sizeof dir_gpu, "%s/cuda", tmp);
  struct run cpu = {0}, gpu = {0};
  struct loaded la = {0}, lb = {0};
  double el_cpu = 0, ac_cpu = 0, el_gpu = 0, ac_gpu = 0;
  if (prepare_synthetic(data, N_TRAIN, N_TEST, 0, 7, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  if (train(ini, data, dir_cpu, &c, ops_cpu(), &cpu) ||
      train(ini, data, dir_gpu, &c, ops_cuda(), &gpu) ||
      eval(&cpu, data, &c, ops_cpu(), &el_cpu, &ac_cpu) ||
      eval(&gpu, data, &c, ops_cuda(), &el_gpu, &ac_gpu) || load(cpu.ckpt, &la) ||
      load(gpu.ckpt, &lb))
    return 1;

  for (int s = 1; s <= STEPS; s++) {
    double a = cpu.train_loss[s], b = gpu.train_loss[s], tol = s == 1 ? 1e-5 : LOSS_TOL;
    printf("step %d loss: cpu %.9g cuda %.9g (rel. diff %.2g)\n", s, a, b, fabs(a - b) / fabs(a));
    if (!(fabs(a - b) <= tol * fabs(a))) FAIL("step %d loss: cuda %.9g cpu %.9g", s, b, a);
  }
  printf("test: cpu trainer %.9g / %.4f, eval %.9g / %.4f; cuda trainer %.9g / %.4f, eval %.9g / "
         "%.4f\n",
         cpu.test_loss, cpu.test_acc, el_cpu, ac_cpu, gpu.test_loss, gpu.test_acc, el_gpu, ac_gpu);
  if (!(fabs(gpu.test_loss - cpu.test_loss) <= LOSS_TOL * fabs(cpu.test_loss)) ||
      fabs(gpu.test_acc - cpu.test_acc) > 1.0 / N_TEST + 1e-12)
    FAIL("test row: cuda %.9g / %.4f, cpu %.9g / %.4f", gpu.test_loss, gpu.test_acc, cpu.test_loss,
         cpu.test_acc);
  if (!(fabs(el_gpu - gpu.test_loss) <= 1e-6 * fabs(gpu.test_loss)) || ac_gpu != gpu.test_acc)
    FAIL("cuda eval %.9g / %.4f differs from the trainer's test row %.9g / %.4f", el_gpu, ac_gpu,
         gpu.test_loss, gpu.test_acc);
  if (!(fabs(el_cpu - cpu.test_loss) <= 1e-6 * fabs(cpu.test_loss)) || ac_cpu != cpu.test_acc)
    FAIL("cpu eval %.9g / %.4f differs from the trainer's test row %.9g / %.4f", el_cpu, ac_cpu,
         cpu.test_loss, cpu.test_acc);
  compare_checkpoints(&la, &lb);

  optim_free(&la.o);
  optim_free(&lb.o);
  session_free(&la.s);
  session_free(&lb.s);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  comm_finalize(&c);
  if (failures) {
    fprintf(stderr, "%d mismatches\n", failures);
    return 1;
  }
  printf("%d attn_cnn training steps, checkpoint and eval: cuda (emulated) equals cpu\n", STEPS);
  return 0;
}
