/* evaluate.c — evaluation of a saved model. */
#include "train/evaluate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "comm/device.h"
#include "config/config.h"
#include "core/log.h"
#include "data/coco.h"
#include "data/dataset.h"
#include "train/session.h"
#include "train/spec.h"

static void print_report(FILE *f, const struct dataset_info *info, const char *split,
                         const struct eval_result *r) {
  int k = info->num_classes;
  fprintf(f, "%s: loss %.4f accuracy %.2f%% (%ld images)\n\n%-12s %8s %8s\n", split, r->loss,
          100.0 * r->acc, r->total, "class", "images", "acc");
  for (int i = 0; i < k; i++) {
    long n = 0;
    for (int j = 0; j < k; j++)
      n += r->confusion[i * k + j];
    fprintf(f, "%-12s %8ld %7.2f%%\n", info->classes[i], n,
            n ? 100.0 * r->confusion[i * k + i] / n : 0.0);
  }
  fprintf(f, "\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
  for (int j = 0; j < k; j++)
    fprintf(f, " %6.6s", info->classes[j]);
  fputc('\n', f);
  for (int i = 0; i < k; i++) {
    fprintf(f, "%-12s", info->classes[i]);
    for (int j = 0; j < k; j++)
      fprintf(f, " %6ld", r->confusion[i * k + j]);
    fputc('\n', f);
  }
}

static void print_json(FILE *f, const char *ckpt, const struct dataset_info *info,
                       const char *split, const struct eval_result *r) {
  int k = info->num_classes;
  fprintf(f, "{\"checkpoint\":\"%s\",\"split\":\"%s\",\"images\":%ld,\"loss\":%.9g,\"acc\":%.9g,",
          ckpt, split, r->total, r->loss, r->acc);
  fputs("\"classes\":[", f);
  for (int i = 0; i < k; i++)
    fprintf(f, "%s\"%s\"", i ? "," : "", info->classes[i]);
  fputs("],\"per_class_acc\":[", f);
  for (int i = 0; i < k; i++) {
    long n = 0;
    for (int j = 0; j < k; j++)
      n += r->confusion[i * k + j];
    fprintf(f, "%s%.9g", i ? "," : "", n ? (double)r->confusion[i * k + i] / n : 0.0);
  }
  fputs("],\"confusion\":[", f);
  for (int i = 0; i < k; i++) {
    fputs(i ? ",[" : "[", f);
    for (int j = 0; j < k; j++)
      fprintf(f, "%s%ld", j ? "," : "", r->confusion[i * k + j]);
    fputc(']', f);
  }
  fputs("]}\n", f);
}

int eval_checkpoint(const char *ckpt, const char *data, const char *split, const char *json_path,
                    const char *device, const struct comm *c, struct ct_err *e) {
  const struct ops_backend *ops;
  if (device_choose(device, 0, c, &ops, e)) return e->code;
  int rc = eval_checkpoint_with(ckpt, data, split, json_path, ops, c, e);
  device_release(ops);
  return rc;
}

int eval_checkpoint_with(const char *ckpt, const char *data, const char *split,
                         const char *json_path, const struct ops_backend *ops, const struct comm *c,
                         struct ct_err *e) {
  if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
    return err_set(e, CT_ERR_USAGE, "--split must be train, val or test (got '%s')", split);
  struct dataset_info info;
  struct image_split rows = {0};
  struct session s = {0};
  struct loader *l = NULL;
  struct eval_result r;
  int built = 0, rc;
  struct session_ckpt *k = NULL;
  rc = session_ckpt_read(ckpt, &k, e);
  struct ckpt_meta *meta = k ? &k->meta : NULL;
  struct config *cfg = k ? &k->cfg : NULL;
  if (!rc && model_task_of(meta->model) == TASK_CAPTIONS)
    rc = err_set(e, CT_ERR_USAGE,
                 "%s holds a captioning model (%s); `ctrain sample` evaluates it (loss, BLEU)",
                 ckpt, meta->model);
  if (!rc && coco_is_caption_file(data))
    rc = err_set(e, CT_ERR_USAGE, "%s is a captioning file; the model in %s classifies images",
                 data, ckpt);
  if (!rc) rc = dataset_read_info(data, &info, e);
  if (!rc && info.num_classes != meta->num_classes)
    rc = err_set(e, CT_ERR_USAGE, "%s has %d classes, the model in %s predicts %ld", data,
                 info.num_classes, ckpt, meta->num_classes);
  if (!rc) rc = dataset_read_split(data, split, c->rank, c->size, -1, &rows, e);
  /* Only an empty split is an error: with fewer rows than ranks, the ranks
   * past the last row add nothing to the sums, as in the trainer's eval. */
  const int split_rows = !strcmp(split, "train") ? info.n_train
                         : !strcmp(split, "val") ? info.n_val
                                                 : info.n_test;
  if (!rc && split_rows == 0) rc = err_set(e, CT_ERR_USAGE, "%s: split '%s' is empty", data, split);
  if (!rc) {
    struct model_spec spec;
    int batch;
    rc = spec_rank_batch(cfg, c->size, 0, &batch, e);
    if (!rc) rc = model_spec_from_config(cfg, &info, batch, &spec, e);
    if (!rc)
      rc = session_load(&s, ops, &spec, session_threads(cfg->run.threads, c), cfg->train.seed, ckpt,
                        e);
    built = !rc;
  }
  if (!rc) {
    struct loader_cfg lc = {.batch = s.spec.batch, .normalize = cfg->data.normalize};
    memcpy(lc.mean, info.mean, sizeof lc.mean);
    memcpy(lc.std, info.std, sizeof lc.std);
    rc = loader_create(&l, &rows, &lc, e);
  }
  if (!rc) rc = session_evaluate(&s, l, c, &r, e);
  if (!rc && c->rank == 0) {
    print_report(stdout, &info, split, &r);
    FILE *f = json_path ? fopen(json_path, "w") : stdout;
    if (!f)
      rc =
          err_set(e, CT_ERR_RUNTIME, "%s: cannot open for writing: %s", json_path, strerror(errno));
    else {
      print_json(f, ckpt, &info, split, &r);
      if (json_path && fclose(f) != 0)
        rc = err_set(e, CT_ERR_RUNTIME, "%s: write failed: %s", json_path, strerror(errno));
    }
  }
  loader_free(l);
  if (built) session_free(&s);
  image_split_free(&rows);
  free(k);
  return rc;
}
