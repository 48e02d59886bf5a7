/* captioning.c — greedy decoding, the captioning evaluation pass and the
 * captioning training task (captioning.h). */
#include "train/captioning.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "train/spec.h"

static int argmax(const float *row, int k) {
  int best = 0;
  for (int j = 1; j < k; j++)
    if (row[j] > row[best]) best = j;
  return best;
}

/* Scores of positions with a target that is not <NULL>: logits (n, V), labels (n). */
static void token_accuracy(const float *logits, const int32_t *labels, long n, int v,
                           double *correct, double *counted) {
  for (long i = 0; i < n; i++) {
    if (labels[i] == COCO_NULL) continue;
    *correct += argmax(logits + (size_t)i * (size_t)v, v) == labels[i];
    *counted += 1;
  }
}

void caption_eval_close(struct caption_eval_set *v) {
  coco_shard_free(&v->sh);
  free(v->start);
  free(v->rows);
  free(v->decoded);
  free(v->refs);
  free(v->ref_lens);
  memset(v, 0, sizeof *v);
}

int caption_eval_open(const char *path, const char *split, const struct comm *c,
                      struct caption_eval_set *v, struct ct_err *e) {
  memset(v, 0, sizeof *v);
  if (coco_read_images(path, split, c->rank, c->size, &v->sh, e)) return e->code;
  const struct coco_shard *sh = &v->sh;
  const long ni = sh->n_images, n = sh->n;
  v->start = calloc((size_t)ni + 1, sizeof *v->start);
  v->rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->rows);
  v->decoded = malloc((size_t)(ni > 0 ? ni : 1) * (size_t)(sh->t - 1) * sizeof *v->decoded);
  if (!v->start || !v->rows || !v->decoded) goto oom;
  /* counting sort of the caption rows by image, file order within an image */
  long most = 0;
  for (long i = 0; i < n; i++)
    v->start[sh->image_idxs[i] + 1]++;
  for (long k = 0; k < ni; k++) {
    most = v->start[k + 1] > most ? v->start[k + 1] : most;
    v->start[k + 1] += v->start[k];
  }
  for (long i = 0; i < n; i++)
    v->rows[v->start[sh->image_idxs[i]]++] = i;
  for (long k = ni; k > 0; k--)
    v->start[k] = v->start[k - 1];
  v->start[0] = 0;
  v->refs = malloc((size_t)(most > 0 ? most : 1) * sizeof *v->refs);
  v->ref_lens = malloc((size_t)(most > 0 ? most : 1) * sizeof *v->ref_lens);
  if (!v->refs || !v->ref_lens) goto oom;
  return CT_OK;
oom:
  caption_eval_close(v);
  return err_set(e, CT_ERR_RUNTIME, "%s: out of memory for the /%s images of rank %d", path, split,
                 c->rank);
}

/* Whether out[0 .. j-1] holds <END>. */
static int said_end(const int32_t *out, int j) {
  for (int i = 0; i < j; i++)
    if (out[i] == COCO_END) return 1;
  return 0;
}

void caption_greedy(struct session *s, const float *features, int n, int32_t *out) {
  const int b = s->spec.batch, t = s->spec.max_length - 1, d = s->spec.feature_dim;
  const int v = s->spec.vocab_size;
  float *x = s->x.host;          /* (B,D) */
  int32_t *tok = s->tokens.host; /* (B,T) */
  int32_t *lab = s->y.host;      /* (B*T), unused by decoding: all <NULL> */
  CT_CHECK(n >= 0 && n <= b);
  memcpy(x, features, (size_t)n * (size_t)d * sizeof *x);
  memset(x + (size_t)n * d, 0, (size_t)(b - n) * (size_t)d * sizeof *x);
  for (long i = 0; i < (long)b * t; i++)
    tok[i] = lab[i] = COCO_NULL;
  for (int r = 0; r < b; r++)
    tok[(size_t)r * t] = COCO_START;
  for (long i = 0; i < (long)n * t; i++)
    out[i] = COCO_NULL;
  s->g.training = 0;
  for (int j = 0; j < t; j++) {
    session_upload_batch(s);
    graph_forward(&s->g);
    const float *logits = session_logits(s); /* (B*T,V) */
    int open = 0;
    for (int r = 0; r < n; r++) {
      int32_t *o = out + (size_t)r * t;
      if (said_end(o, j)) continue;
      int w = argmax(logits + ((size_t)r * t + (size_t)j) * (size_t)v, v);
      o[j] = w;
      if (j + 1 < t) tok[(size_t)r * t + j + 1] = w;
      open += w != COCO_END;
    }
    if (!open) break;
  }
}

enum { SUM_LOSS, SUM_CORRECT, SUM_COUNTED, SUM_CAPTIONS, SUM_IMAGES, SUM_BLEU };

int caption_evaluate(struct session *s, struct caption_eval_set *v, const struct comm *c,
                     struct caption_eval *r, struct ct_err *e) {
  const struct coco_shard *sh = &v->sh;
  const int b = s->spec.batch, t = s->spec.max_length - 1, vocab = s->spec.vocab_size;
  double sums[SUM_BLEU + BLEU_STATS] = {0};
  s->g.training = 0;
  for (long pos = 0; pos < sh->n; pos += b) {
    int rows = coco_batch(sh, NULL, pos, b, s->tokens.host, s->y.host, s->x.host);
    session_upload_batch(s);
    graph_forward(&s->g);
    sums[SUM_LOSS] += (double)session_loss(s) * b * t; /* the masked sum: the loss is / (B*T) */
    token_accuracy(session_logits(s), s->y.host, (long)rows * t, vocab, &sums[SUM_CORRECT],
                   &sums[SUM_COUNTED]);
    sums[SUM_CAPTIONS] += rows;
  }
  struct bleu_stats bs = {{0}};
  for (long k = 0; k < sh->n_images; k += b) {
    int n = sh->n_images - k < b ? (int)(sh->n_images - k) : b;
    caption_greedy(s, sh->features + (size_t)k * sh->d, n, v->decoded + (size_t)k * t);
  }
  for (long k = 0; k < sh->n_images; k++) {
    int nrefs = (int)(v->start[k + 1] - v->start[k]);
    for (int i = 0; i < nrefs; i++)
      v->ref_lens[i] =
          bleu_words(sh->captions + (size_t)v->rows[v->start[k] + i] * sh->t, sh->t, &v->refs[i]);
    const int32_t *cand;
    int clen = bleu_words(v->decoded + (size_t)k * t, t, &cand);
    bleu_add(&bs, cand, clen, nrefs, v->refs, v->ref_lens);
  }
  sums[SUM_IMAGES] = (double)sh->n_images;
  memcpy(sums + SUM_BLEU, bs.v, sizeof bs.v);
  if (comm_allreduce_sum_f64(c, sums, SUM_BLEU + BLEU_STATS, e)) return e->code;
  memcpy(bs.v, sums + SUM_BLEU, sizeof bs.v);
  r->captions = (long)sums[SUM_CAPTIONS];
  r->images = (long)sums[SUM_IMAGES];
  r->loss = r->captions ? sums[SUM_LOSS] / (sums[SUM_CAPTIONS] * t) : 0;
  r->acc = sums[SUM_COUNTED] > 0 ? sums[SUM_CORRECT] / sums[SUM_COUNTED] : 0;
  bleu_scores(&bs, r->bleu);
  return CT_OK;
}

/* ---- the training task ---------------------------------------------------- */

struct caption_task {
  const struct comm *c;
  struct session *s;
  struct coco_shard train;
  struct caption_eval_set val;
  long *perm; /* the epoch's order over the train shard; NULL: file order (no shuffle) */
  uint64_t seed;
  int batch;
  long epoch, next_batch, batches;
  struct caption_eval last; /* the last evaluation (its bleu is the metrics row's) */
};

static int task_begin_epoch(void *self, long epoch, long first_batch, struct ct_err *e) {
  (void)e;
  struct caption_task *k = self;
  if (k->perm) coco_permutation(k->perm, k->train.n, k->seed, epoch);
  k->epoch = epoch;
  k->next_batch = first_batch;
  return CT_OK;
}

static int task_next(void *self) {
  struct caption_task *k = self;
  if (k->next_batch >= k->batches) return 0;
  struct session *s = k->s;
  long pos = k->next_batch++ * k->batch;
  int rows = coco_batch(&k->train, k->perm, pos, k->batch, s->tokens.host, s->y.host, s->x.host);
  session_upload_batch(s);
  return rows;
}

static void task_rng_state(const void *self, uint64_t out[LOADER_RNG_WORDS]) {
  const struct caption_task *k = self;
  out[0] = k->seed; /* the order of epoch E is coco_permutation(seed, E) */
  out[1] = 0;       /* no augmentation */
  out[2] = (uint64_t)k->epoch;
  out[3] = (uint64_t)k->next_batch;
}

static int task_evaluate(void *self, const char *split, struct metrics_row *row, struct ct_err *e) {
  struct caption_task *k = self;
  CT_CHECK(strcmp(split, "val") == 0);
  struct caption_eval *r = &k->last;
  if (caption_evaluate(k->s, &k->val, k->c, r, e)) return e->code;
  row->loss = r->loss;
  row->acc = r->acc;
  row->bleu = r->bleu;
  log_info("%s: loss %.4f token acc %.2f%% BLEU-1 %.4f BLEU-2 %.4f BLEU-3 %.4f BLEU-4 %.4f (%ld "
           "captions, %ld images)",
           split, r->loss, 100.0 * r->acc, r->bleu[0], r->bleu[1], r->bleu[2], r->bleu[3],
           r->captions, r->images);
  return CT_OK;
}

void caption_task_free(void *self) {
  struct caption_task *k = self;
  if (!k) return;
  coco_shard_free(&k->train);
  caption_eval_close(&k->val);
  free(k->perm);
  free(k);
}

int caption_task_open(struct train_task *t, const struct config *cfg, const struct comm *c,
                      int batch, struct session *s, struct model_spec *spec, struct ct_err *e) {
  const char *path = cfg->data.path;
  struct coco_info info;
  memset(t, 0, sizeof *t);
  if (!path[0]) return err_set(e, CT_ERR_USAGE, "data.path is not set");
  if (coco_read_info(path, &info, e) || model_spec_caption(cfg, &info, batch, spec, e))
    return e->code;
  const long global = cfg->train.batch_size;
  if (global > info.n_train)
    return err_set(e, CT_ERR_USAGE,
                   "train.batch_size = %ld is larger than the %ld training captions of %s", global,
                   info.n_train, path);
  struct caption_task *k = calloc(1, sizeof *k);
  if (!k) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  *k = (struct caption_task){.c = c, .s = s, .seed = cfg->train.seed, .batch = batch};
  /* n / global full global batches: every rank's shard (at least n / world
   * rows) holds its part of each, so all ranks take the same steps. */
  k->batches = info.n_train / global;
  int rc = coco_read_shard(path, "train", c->rank, c->size, &k->train, e);
  if (!rc) rc = caption_eval_open(path, "val", c, &k->val, e);
  if (!rc && cfg->data.shuffle &&
      !(k->perm = malloc((size_t)(k->train.n > 0 ? k->train.n : 1) * sizeof *k->perm)))
    rc = err_set(e, CT_ERR_RUNTIME, "out of memory for the order of %ld captions", k->train.n);
  if (rc) {
    caption_task_free(k);
    return rc;
  }
  *t = (struct train_task){.self = k,
                           .batches = k->batches,
                           .has_val = 1,
                           .has_test = 0,
                           .rate_key = "captions_per_s",
                           .rate_unit = "cap/s",
                           .begin_epoch = task_begin_epoch,
                           .next = task_next,
                           .rng_state = task_rng_state,
                           .evaluate = task_evaluate,
                           .free = caption_task_free};
  return CT_OK;
}
