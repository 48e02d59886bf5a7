/* task.h — what the training loop needs from a kind of data. The loop owns
 * the rest: checkpoints, resume, signals, the NaN stop, the schedule, the
 * gradient all-reduce, metrics and progress lines (the training accuracy is
 * the loss node's: images, or caption tokens that are not <NULL>). Two tasks: image
 * classification (train.c, around the image loaders) and captioning
 * (caption.c, over coco shards). */
#ifndef CTRAIN_TASK_H
#define CTRAIN_TASK_H

#include <stdint.h>

#include "core/error.h"
#include "data/loader.h"
#include "train/metrics.h"

struct train_task {
  void *self;
  long batches;          /* global batches per epoch */
  int has_val, has_test; /* the splits evaluate() takes */
  const char *rate_key;  /* metrics.jsonl key of the training rate (rows/s) */
  const char *rate_unit; /* the same on the progress line */
  /* Starts epoch `epoch` at batch first_batch (> 0 when resuming mid-epoch). */
  int (*begin_epoch)(void *self, long epoch, long first_batch, struct ct_err *e);
  /* The epoch's next batch into the graph's input tensors; the real rows in
   * it, 0 at the epoch's end. Allocates nothing. */
  int (*next)(void *self);
  /* The data-order state behind the current batch, for checkpoints. */
  void (*rng_state)(const void *self, uint64_t out[LOADER_RNG_WORDS]);
  /* One pass over `split` in eval mode on every rank; fills the row's loss,
   * acc (and bleu) with global values and logs them on rank 0. */
  int (*evaluate)(void *self, const char *split, struct metrics_row *row, struct ct_err *e);
  /* Releases what the task owns; NULL when the trainer's own fields hold it all. */
  void (*free)(void *self);
};

#endif
