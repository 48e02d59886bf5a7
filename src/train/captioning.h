/* captioning.h — the caption model (MODELS.md §5) in the trainer and in
 * `ctrain sample`: greedy decoding on the session's graph, the evaluation
 * pass over a block of images (loss, token accuracy, corpus BLEU-1..4), and
 * the training task (task.h) over each rank's coco shard. */
#ifndef CTRAIN_CAPTIONING_H
#define CTRAIN_CAPTIONING_H

#include <stdint.h>

#include "comm/comm.h"
#include "config/config.h"
#include "data/coco.h"
#include "train/bleu.h"
#include "train/session.h"
#include "train/task.h"

/* A rank's block of a split's images (coco_read_images) with their captions
 * grouped by image: the references of local image k are the shard's caption
 * rows rows[start[k]] .. rows[start[k + 1] - 1]. decoded holds the last
 * greedy decoding, (n_images, T) with T = max_length - 1. */
struct caption_eval_set {
  struct coco_shard sh;
  long *start, *rows;
  int32_t *decoded;
  const int32_t **refs; /* scratch for one image's references */
  int *ref_lens;
};

int caption_eval_open(const char *path, const char *split, const struct comm *c,
                      struct caption_eval_set *v, struct ct_err *e);
void caption_eval_close(struct caption_eval_set *v);

struct caption_eval {
  double loss; /* masked token cross-entropy summed, over captions x T (the training loss) */
  double acc;  /* argmax accuracy over the tokens that are not <NULL> */
  long captions, images;
  double bleu[BLEU_N]; /* corpus BLEU-1..4 of the greedy captions (bleu.h) */
};

/* Greedy decoding of n <= batch images (features n x D): from <START>, the
 * argmax word at position j becomes the input at j + 1, for T positions or
 * until every caption has said <END>. out (n, T): the chosen words, <END>
 * included, <NULL> after it. The graph is causal, so position j's scores do
 * not depend on the (not yet chosen) inputs after it: one forward per
 * position on the fixed-shape graph is the seed's sample(). */
void caption_greedy(struct session *s, const float *features, int n, int32_t *out);

/* Loss and token accuracy over every caption of the set, greedy decoding of
 * every image and BLEU against its captions; sums are reduced over ranks, so
 * every rank gets the global result (independent of the world size: BLEU
 * exactly, the loss within rounding). */
int caption_evaluate(struct session *s, struct caption_eval_set *v, const struct comm *c,
                     struct caption_eval *r, struct ct_err *e);

/* The training task over cfg->data.path: each rank reads its coco shard of
 * the train captions (caption rows rank, rank + world, ...) and the val
 * images block; `batch` rows per rank, train.batch_size / world of them
 * batches. Fills *spec for the graph the trainer then builds into *s (which
 * the task reads and writes from its first begin_epoch on). t->free
 * releases it. */
int caption_task_open(struct train_task *t, const struct config *cfg, const struct comm *c,
                      int batch, struct session *s, struct model_spec *spec, struct ct_err *e);
void caption_task_free(void *self);

#endif
