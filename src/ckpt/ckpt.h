/* ckpt.h — HDF5 checkpoints: `/model/<state_dict name>` for every parameter
 * and buffer (so h5py + load_state_dict reads them), `/optim/exp_avg/<name>`
 * and `/optim/exp_avg_sq/<name>` (Adam; SGD keeps its momentum buffer in
 * exp_avg), `/rng/state` (world_size, 4): every rank's data-order key,
 * augmentation key, epoch and next batch, and root attributes for the
 * position (step, epoch, epoch_batch, optimizer_step, schedule_step, lr) and
 * provenance (config, world_size, ctrain_version, format_version). Every
 * dataset carries a crc32 attribute, the root attributes one over them all
 * (meta_crc32, format 3). Written atomically: temporary file,
 * fsync, rename. */
#ifndef CTRAIN_CKPT_H
#define CTRAIN_CKPT_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "graph/graph.h"
#include "optim/optim.h"

#define CKPT_FORMAT_VERSION 3

struct ckpt_meta {
  char model[32];   /* model.name */
  long num_classes; /* the head's width */
  long step;        /* optimizer steps taken */
  long epoch;       /* epochs completed */
  long epoch_batch; /* batches of the current epoch done */
  double lr;        /* the rate of the last step (the schedule is a function of step) */
  long world_size;
  char config[16384]; /* the resolved configuration, INI text */
};

/* rng: LOADER_RNG_WORDS values per rank, meta->world_size ranks (or NULL). */
int ckpt_save(const char *path, const struct graph *g, const struct optimizer *o,
              const struct ckpt_meta *meta, const uint64_t *rng, int rng_words, struct ct_err *e);
/* Reads the metadata and every dataset, checking checksums: a truncated or
 * corrupted file fails here with one line naming it. */
int ckpt_verify(const char *path, struct ct_err *e);
/* `ctrain inspect`: what a checkpoint or a dataset file holds. */
int ckpt_inspect(const char *path, FILE *out, struct ct_err *e);
/* Reads only the metadata (to rebuild the model before loading). */
int ckpt_read_meta(const char *path, struct ckpt_meta *meta, struct ct_err *e);
/* Reads `/rng/state`: `words` values for each of `ranks` ranks (the
 * checkpoint's world_size). */
int ckpt_read_rng(const char *path, uint64_t *rng, long ranks, int words, struct ct_err *e);
/* Loads parameters and buffers by name (every one must be present with the
 * same shape); optimizer state too when `o` is not NULL. */
int ckpt_load(const char *path, struct graph *g, struct optimizer *o, struct ct_err *e);

#endif
