/* loader.h — minibatches of one image split, shuffled and augmented, made by
 * a background thread one batch ahead of the trainer. Every batch is a pure
 * function of (split, cfg, epoch, batch index), so a run resumed mid-epoch
 * sees the same batches bit for bit.
 *
 * Data parallelism: the epoch's permutation is over the GLOBAL rows, the
 * same on every rank; global batch b is positions [b*B, (b+1)*B) of it
 * (B = batch * ranks) and rank r takes positions r, r + ranks, ... of each.
 * Augmentation draws are keyed by the global position. So N ranks together
 * see exactly the batches one rank sees, image for image, and a run resumed
 * with another world size keeps its data order. */
#ifndef CTRAIN_LOADER_H
#define CTRAIN_LOADER_H

#include <stdint.h>

#include "core/error.h"
#include "data/augment.h"
#include "data/dataset.h"

struct loader_cfg {
  int batch;
  int shuffle;   /* per-epoch permutation from (seed, epoch); else file order */
  int drop_last; /* drop the incomplete tail batch */
  struct augment_cfg aug;
  int normalize; /* apply (x - mean) / std */
  double mean[3], std[3];
  uint64_t seed;
  int rank, ranks; /* this rank of `ranks` (0 or 1: a single rank) */
  /* Sharded loaders only: no thread makes batches; the caller keeps the
   * epoch's rows (loader_shard) where its backend computes, and makes each
   * batch from them itself (loader_take, ops->augment). */
  int resident;
};

/* Reads the listed rows (global indices, any order) of the loader's split
 * into images (count * DATASET_IMAGE_BYTES) and labels, in that order. */
typedef int (*loader_fetch_fn)(void *user, const long *rows, long count, uint8_t *images,
                               int32_t *labels, struct ct_err *e);

struct loader;

/* Allocates everything the loader will use and starts its thread. The split
 * is borrowed: it must outlive the loader and stay unchanged. */
int loader_create(struct loader **out, const struct image_split *split,
                  const struct loader_cfg *cfg, struct ct_err *e);

/* A loader over a split of n rows that stays in storage: each epoch it
 * fetches only this rank's rows of the epoch's global batches (rows/ranks of
 * the split), through `fetch`, whose `user` must outlive the loader. */
int loader_create_sharded(struct loader **out, long n, const struct loader_cfg *cfg,
                          loader_fetch_fn fetch, void *user, struct ct_err *e);

/* Batches per epoch. */
long loader_batches(const struct loader *l);

/* Starts (or restarts, abandoning the current one) epoch `epoch` at batch
 * first_batch; first_batch > 0 resumes mid-epoch. A sharded loader first
 * fetches this rank's rows for batches first_batch.. of the epoch (without
 * shuffle only once, since every epoch has the same rows). */
int loader_begin_epoch(struct loader *l, long epoch, long first_batch, struct ct_err *e);

/* The random state behind the current epoch, for checkpoints: the data
 * order key, the augmentation key, the epoch and the next batch. */
enum { LOADER_RNG_WORDS = 4 };
void loader_rng_state(const struct loader *l, uint64_t out[LOADER_RNG_WORDS]);

/* Copies the next batch into x (batch,3,32,32) and y (batch); returns the
 * rows filled: cfg.batch, or the tail size for the last batch without
 * drop_last, whose remaining rows are zeros with label -1; 0 at epoch end
 * (or when this rank has no row in the last, partial, global batch). */
int loader_next(struct loader *l, float *x, int32_t *y);

/* Resident mode: this rank's rows of the epoch, batch b's at rows
 * [b * batch, (b + 1) * batch) of images (DATASET_IMAGE_BYTES each) and
 * labels; the rows fetched by the last loader_begin_epoch are
 * [*from, *from + *count), and *generation changes whenever they do. */
void loader_shard(const struct loader *l, const uint8_t **images, const int32_t **labels,
                  long *from, long *count, unsigned long *generation);

/* Resident mode: the epoch's next batch to make, and what makes it: its
 * rows start at shard row index * batch, the first `valid` of them are
 * real, and row r takes augmentation counter pos0 + r * pos_step under
 * `key` (loader_next's draws exactly). Returns 0 at the epoch's end. */
struct loader_batch {
  long index;
  int valid;
  uint64_t pos0, pos_step, key;
};
int loader_take(struct loader *l, struct loader_batch *b);

/* Stops the thread and frees the loader; NULL is fine. */
void loader_free(struct loader *l);

#endif
