/* train_compare.c — the runs and the comparisons of train_compare.h. */
#include "train_compare.h"

#ifndef CTRAIN_GPU_TEST
#include "kernels/cuda/emu/emu_stats.h"
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "config/config.h"
#include "core/log.h"
#include "data/prepare.h"
#include "device_required.h"
#include "kernels/cuda/cuda_backend.h"
#include "optim/optim.h"
#include "train/session.h"
#include "train/spec.h"
#include "train/train.h"

static const double LOSS_TOL = 1e-4;

int tc_failures;

/* Reads the train rows and the test row of r's metrics.jsonl. */
static int read_metrics(struct tc_run *r, int steps) {
  char path[160], line[1024];
  snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
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
    if (strstr(line, "\"split\":\"train\"") && step >= 1 && step <= steps) {
      r->train_loss[step] = loss;
      rows++;
    } else if (strstr(line, "\"split\":\"test\"")) {
      r->test_loss = loss;
      r->test_acc = acc;
      rows++;
    }
  }
  fclose(f);
  if (rows != steps + 1) {
    fprintf(stderr, "%s: %d train and test rows, expected %d\n", path, rows, steps + 1);
    return 1;
  }
  return 0;
}

/* The graph launches so far: the emulator counts them; on a GPU there is
 * no count (0), and only the bitwise comparison applies. */
static unsigned long long graph_launches(void) {
#ifdef CTRAIN_GPU_TEST
  return 0;
#else
  struct emu_stats st;
  emu_stats_get(&st);
  return st.graph_launches;
#endif
}

/* Trains on every rank into tmp/name (with one more setting, if any); rank
 * 0 then reads the metrics back. */
static int train(const struct tc *t, const struct tc_test *test, const char *ini, const char *name,
                 const struct ops_backend *ops, const char *more, struct tc_run *r) {
  struct config *cfg = malloc(sizeof *cfg);
  struct ct_err e = {0};
  char set[4][160];
  snprintf(r->dir, sizeof r->dir, "%s/%s", t->tmp, name);
  snprintf(set[0], sizeof set[0], "data.path=%s", t->data);
  snprintf(set[1], sizeof set[1], "run.dir=%s", r->dir);
  snprintf(set[2], sizeof set[2], "train.max_steps=%d", test->steps);
  snprintf(set[3], sizeof set[3], "train.batch_size=%d", TC_BATCH);
  config_defaults(cfg);
  int rc = config_load_file(cfg, ini, &e);
  for (int i = 0; i < 4 && !rc; i++)
    rc = config_set(cfg, set[i], &e);
  const char *fixed[] = {"data.val_size=0", "run.log_every=1", "run.threads=1", "run.resume=none"};
  for (int i = 0; i < 4 && !rc; i++)
    rc = config_set(cfg, fixed[i], &e);
  for (const char *const *x = test->extra; *x && !rc; x++)
    rc = config_set(cfg, *x, &e);
  if (more && !rc) rc = config_set(cfg, more, &e);
  if (!rc) rc = config_validate(cfg, &e);
  if (!rc) rc = train_run_with(cfg, &t->c, ops, &e);
  free(cfg);
  if (rc) {
    fprintf(stderr, "rank %d: train on %s: %s\n", t->c.rank, ops->name, e.msg);
    return 1;
  }
  snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoints/step_%08d.h5", r->dir, test->steps);
  return t->c.rank == 0 ? read_metrics(r, test->steps) : 0;
}

void tc_start(struct tc *t, const struct tc_test *test, int *argc, char ***argv) {
  struct ct_err e = {0};
  memset(t, 0, sizeof *t);
  if (*argc != 2) {
    fprintf(stderr, "usage: mpirun -np %d %s SOURCE_DIR/configs/attn_cnn.ini\n", test->ranks,
            test->name);
    exit(2);
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  device_required();
  if (comm_init(&t->c, argc, argv, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    exit(1);
  }
  log_set_rank(t->c.rank);
  if (t->c.size != test->ranks) {
    fprintf(stderr, "%s runs on %d ranks, not %d\n", test->name, test->ranks, t->c.size);
    comm_abort(&t->c, 2);
  }
  /* Rank 0 makes the directory and the dataset; every rank reads them. */
  int ok = 1;
  if (t->c.rank == 0) {
    snprintf(t->tmp, sizeof t->tmp, "/tmp/%s.XXXXXX", test->name);
    ok = mkdtemp(t->tmp) != NULL;
    if (!ok) perror("mkdtemp");
    snprintf(t->data, sizeof t->data, "%s/d.h5", t->tmp);
    if (ok && prepare_synthetic(t->data, test->n_train, test->n_test, 0, 7, &e)) {
      fprintf(stderr, "%s\n", e.msg);
      ok = 0;
    }
  }
  if (comm_bcast(&t->c, &ok, sizeof ok, 0, &e) || comm_bcast(&t->c, t->tmp, sizeof t->tmp, 0, &e) ||
      comm_bcast(&t->c, t->data, sizeof t->data, 0, &e) || !ok)
    comm_abort(&t->c, 1);
  char msg[256];
  if (!(t->cuda = cuda_backend_open(0, msg, sizeof msg))) {
    fprintf(stderr, "rank %d: %s\n", t->c.rank, msg);
    comm_abort(&t->c, 1);
  }
  const char *ini = (*argv)[1];
  if (train(t, test, ini, "cpu", ops_cpu(), NULL, &t->cpu) ||
      train(t, test, ini, "cuda", t->cuda, NULL, &t->gpu))
    comm_abort(&t->c, 1);
  if (!test->graphs) return;
  t->graph_launches[0] = graph_launches();
  if (train(t, test, ini, "cuda_eager", t->cuda, "run.cuda_graph=false", &t->eager))
    comm_abort(&t->c, 1);
  t->graph_launches[1] = graph_launches() - t->graph_launches[0];
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
      TC_FAIL("%s %s[%zu]: cuda %.9g cpu %.9g (tolerance %.3g)", what, name, i, b[i], a[i], t);
  }
}

static void compare_checkpoints(const struct loaded *a, const struct loaded *b, int steps) {
  const struct graph *ga = &a->s.g, *gb = &b->s.g;
  if (a->meta.step != steps || b->meta.step != steps || a->o.step != steps || b->o.step != steps)
    TC_FAIL("position: cpu step %ld/%ld, cuda %ld/%ld", a->meta.step, a->o.step, b->meta.step,
            b->o.step);
  const double floor = 1e-6 * max_abs(a->o.m, ga->params_len), lr_noise = 2.0 * a->lr * steps;
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
      if (ca != steps || cb != steps)
        TC_FAIL("%s: cuda %lld cpu %lld", ta->name, (long long)cb, (long long)ca);
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

static void compare_runs(const struct tc_run *cpu, const struct tc_run *gpu,
                         const struct tc_test *test) {
  for (int s = 1; s <= test->steps; s++) {
    double a = cpu->train_loss[s], b = gpu->train_loss[s], tol = s == 1 ? 1e-5 : LOSS_TOL;
    printf("step %d loss: cpu %.9g cuda %.9g (rel. diff %.2g)\n", s, a, b, fabs(a - b) / fabs(a));
    if (!(fabs(a - b) <= tol * fabs(a))) TC_FAIL("step %d loss: cuda %.9g cpu %.9g", s, b, a);
  }
  printf("test: cpu %.9g / %.4f, cuda %.9g / %.4f\n", cpu->test_loss, cpu->test_acc, gpu->test_loss,
         gpu->test_acc);
  if (!(fabs(gpu->test_loss - cpu->test_loss) <= LOSS_TOL * fabs(cpu->test_loss)) ||
      fabs(gpu->test_acc - cpu->test_acc) > 1.0 / test->n_test + 1e-12)
    TC_FAIL("test row: cuda %.9g / %.4f, cpu %.9g / %.4f", gpu->test_loss, gpu->test_acc,
            cpu->test_loss, cpu->test_acc);
  struct loaded la, lb;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  if (load(cpu->ckpt, &la) || load(gpu->ckpt, &lb)) {
    TC_FAIL("cannot load the checkpoints");
    return;
  }
  compare_checkpoints(&la, &lb, test->steps);
  optim_free(&la.o);
  optim_free(&lb.o);
  session_free(&la.s);
  session_free(&lb.s);
}

/* A replayed CUDA Graph runs the kernels the eager step runs, with the
 * same arguments, in the same order: the same bits. */
static void compare_graph_eager(const struct tc *t, const struct tc_test *test) {
  const struct tc_run *a = &t->gpu, *b = &t->eager;
  for (int s = 1; s <= test->steps; s++)
    if (memcmp(&a->train_loss[s], &b->train_loss[s], sizeof a->train_loss[s]))
      TC_FAIL("step %d loss: cuda graph %.9g, eager %.9g", s, a->train_loss[s], b->train_loss[s]);
  if (a->test_loss != b->test_loss || a->test_acc != b->test_acc)
    TC_FAIL("test row: cuda graph %.9g / %.4f, eager %.9g / %.4f", a->test_loss, a->test_acc,
            b->test_loss, b->test_acc);
  struct loaded la, lb;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  if (load(a->ckpt, &la) || load(b->ckpt, &lb)) {
    TC_FAIL("cannot load the checkpoints");
    return;
  }
  size_t n = la.s.g.params_len * sizeof(float);
  if (memcmp(la.s.g.params, lb.s.g.params, n) || memcmp(la.o.m, lb.o.m, n) ||
      memcmp(la.o.v, lb.o.v, n) || memcmp(la.s.g.buffers, lb.s.g.buffers, la.s.g.buffers_bytes))
    TC_FAIL("the checkpoints of the cuda graph and the eager run differ");
#ifndef CTRAIN_GPU_TEST
  /* this rank's: the first step warms up, the second is captured and
   * launched, and every one after is a launch */
  unsigned long long want = (unsigned long long)(test->steps - 1);
  if (t->graph_launches[0] != want || t->graph_launches[1] != 0)
    TC_FAIL("graph launches: %llu by the cuda run (want %llu), %llu by the eager one",
            t->graph_launches[0], want, t->graph_launches[1]);
#endif
  printf("cuda graph run equals the eager run bitwise (%d steps, %llu graph launches)\n",
         test->steps, t->graph_launches[0]);
  optim_free(&la.o);
  optim_free(&lb.o);
  session_free(&la.s);
  session_free(&lb.s);
}

int tc_finish(struct tc *t, const struct tc_test *test, const char *passed) {
  struct ct_err e = {0};
  if (t->c.rank == 0) {
    compare_runs(&t->cpu, &t->gpu, test);
    if (test->graphs) compare_graph_eager(t, test);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", t->tmp);
  }
  int any = 0;
  if (comm_any(&t->c, tc_failures != 0, &any, &e)) comm_abort(&t->c, 1);
  if (tc_failures) fprintf(stderr, "rank %d: %d mismatches\n", t->c.rank, tc_failures);
  cuda_backend_close(t->cuda);
  if (t->c.rank == 0 && !any) printf("%d %s\n", test->steps, passed);
  comm_finalize(&t->c);
  return any ? 1 : 0;
}
