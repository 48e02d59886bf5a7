/* sample.c — `ctrain sample` (sample.h). */
#include "train/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "comm/device.h"
#include "config/config.h"
#include "data/coco.h"
#include "train/captioning.h"
#include "train/spec.h"

/* The words of a token row as text (bleu_words: after <START>, before <END>). */
static void row_text(const struct coco_vocab *v, const int32_t *row, int t, char *buf, size_t len) {
  const int32_t *w;
  int n = bleu_words(row, t, &w);
  coco_decode(v, w, n, buf, len);
}

/* Sampled caption | ground truth, one reference a line, for the first
 * `show` images of the block. */
static void print_samples(const struct caption_eval_set *v, const struct coco_vocab *vocab, int t,
                          long show) {
  char sampled[2048], truth[2048];
  int width = (int)strlen("sampled caption");
  for (long k = 0; k < show; k++) {
    row_text(vocab, v->decoded + (size_t)k * t, t, sampled, sizeof sampled);
    width = (int)strlen(sampled) > width ? (int)strlen(sampled) : width;
  }
  printf("%6s  %-*s | %s\n", "image", width, "sampled caption", "ground truth");
  for (long k = 0; k < show; k++) {
    row_text(vocab, v->decoded + (size_t)k * t, t, sampled, sizeof sampled);
    if (v->start[k] == v->start[k + 1])
      printf("%6ld  %-*s | (no captions)\n", v->sh.image_rows[k], width, sampled);
    for (long i = v->start[k]; i < v->start[k + 1]; i++) {
      row_text(vocab, v->sh.captions + (size_t)v->rows[i] * v->sh.t, v->sh.t, truth, sizeof truth);
      if (i == v->start[k])
        printf("%6ld  %-*s | %s\n", v->sh.image_rows[k], width, sampled, truth);
      else
        printf("%6s  %-*s | %s\n", "", width, "", truth);
    }
  }
}

int sample_checkpoint(const char *ckpt, const char *data, const char *split, long show,
                      const char *device, const struct comm *c, struct ct_err *e) {
  if (strcmp(split, "train") && strcmp(split, "val"))
    return err_set(e, CT_ERR_USAGE, "--split must be train or val (got '%s')", split);
  const struct ops_backend *ops;
  if (device_choose(device, 0, c, &ops, e)) return e->code;
  struct coco_info info;
  struct coco_vocab vocab = {0};
  struct caption_eval_set v = {0};
  struct session s = {0};
  struct caption_eval r;
  int built = 0, rc;
  struct session_ckpt *k = NULL;
  rc = session_ckpt_read(ckpt, &k, e);
  struct ckpt_meta *meta = k ? &k->meta : NULL;
  struct config *cfg = k ? &k->cfg : NULL;
  if (!rc && model_task_of(meta->model) != TASK_CAPTIONS)
    rc = err_set(e, CT_ERR_USAGE,
                 "%s holds a '%s' model, which classifies images; sample decodes captioning "
                 "models (caption_transformer)",
                 ckpt, meta->model);
  if (!rc) {
    snprintf(cfg->data.path, sizeof cfg->data.path, "%s", data);
    rc = coco_read_info(data, &info, e);
  }
  if (!rc) rc = coco_read_vocab(data, &vocab, e);
  if (!rc) {
    struct model_spec spec;
    int batch;
    rc = spec_rank_batch(cfg, c->size, 0, &batch, e);
    if (!rc) rc = model_spec_caption(cfg, &info, batch, &spec, e);
    if (!rc)
      rc = session_load(&s, ops, &spec, session_threads(cfg->run.threads, c), cfg->train.seed, ckpt,
                        e);
    built = !rc;
  }
  if (!rc) rc = caption_eval_open(data, split, c, &v, e);
  if (!rc) rc = caption_evaluate(&s, &v, c, &r, e);
  if (!rc && c->rank == 0) {
    printf("%s (step %ld) on /%s of %s: %ld images, %ld captions, greedy decoding\n\n", meta->model,
           meta->step, split, data, r.images, r.captions);
    print_samples(&v, &vocab, s.spec.max_length - 1, show < v.sh.n_images ? show : v.sh.n_images);
    printf("\n%s: loss %.4f token accuracy %.2f%%\n", split, r.loss, 100.0 * r.acc);
    printf("BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  (corpus BLEU over %ld images)\n",
           r.bleu[0], r.bleu[1], r.bleu[2], r.bleu[3], r.images);
  }
  caption_eval_close(&v);
  if (built) session_free(&s);
  coco_vocab_free(&vocab);
  free(k);
  device_release(ops);
  return rc;
}
