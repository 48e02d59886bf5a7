/* ckpt_dir.h — a run directory's checkpoints/: step_XXXXXXXX.h5 files
 * (names sort by step), `latest` naming the newest, rotation beyond
 * run.keep, setting earlier runs' checkpoints aside, and picking the one to
 * resume from. Rank 0 only; none of these is collective. */
#ifndef CTRAIN_CKPT_DIR_H
#define CTRAIN_CKPT_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "graph/graph.h"
#include "optim/optim.h"

enum { CKPT_RNG_MAX_WORDS = 8 };

/* What a resume loaded (step 0 and path "" on a fresh start). */
struct ckpt_resume {
  long step;
  long world_size; /* of the run that saved it */
  char path[4300];
  uint64_t rng[CKPT_RNG_MAX_WORDS]; /* its /rng/state, equal on every saved rank */
};

/* run_dir/checkpoints/step_XXXXXXXX.h5 */
void ckpt_dir_step_path(char *out, size_t len, const char *run_dir, long step);
/* Removes the `*.h5.tmp` left in run_dir/checkpoints by killed writes. */
int ckpt_dir_clean_tmp(const char *run_dir, struct ct_err *e);
/* After step's checkpoint is written: `latest` names it (atomically), and
 * checkpoints beyond the newest `keep` are removed. */
int ckpt_dir_commit(const char *run_dir, long step, int keep, struct ct_err *e);
/* run.resume = none into a directory that holds checkpoints: they move,
 * with `latest`, into checkpoints/previous_N/ (the first free N), where
 * rotation never looks. *moved: how many checkpoints moved (0: none there). */
int ckpt_dir_set_aside(const char *run_dir, char *aside, size_t len, int *moved, struct ct_err *e);
/* how: "none" (fresh start, earlier checkpoints set aside), a path (must
 * load), or "auto" (the newest valid checkpoint, falling back past damaged
 * ones; none valid is a fresh start). A checkpoint of another model or
 * shape fails with CT_ERR_USAGE and leaves the directory untouched. The
 * model, its buffers and `o` are loaded only from a verified file.
 * rng_words: values per rank in /rng/state (at most CKPT_RNG_MAX_WORDS). */
int ckpt_dir_resume(const char *run_dir, const char *how, const char *model, struct graph *g,
                    struct optimizer *o, int rng_words, struct ckpt_resume *r, struct ct_err *e);

#endif
