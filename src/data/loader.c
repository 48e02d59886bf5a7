#include "data/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops_shared.h"

/* Two slots: the thread fills one batch ahead while the trainer's copy of the
 * previous one is in use. */
enum { SLOTS = 2, IMG = DATASET_IMAGE_BYTES };

static const uint64_t SHUFFLE_SALT = 0x53485546464c45ULL; /* "SHUFFLE" */
static const uint64_t AUG_SALT = 0x4155474d454e54ULL;     /* "AUGMENT" */

struct loader {
  const struct image_split *split; /* sharded: &own, this rank's rows in batch order */
  struct loader_cfg cfg;
  long n;     /* rows of the global split */
  int ranks;  /* >= 1 */
  long nb;    /* global batches per epoch */
  long *perm; /* n: the epoch's order of global rows */
  /* sharded only: rows fetched per epoch, and whence */
  struct image_split own;
  long *rows;
  loader_fetch_fn fetch;
  void *fetch_user;
  long fetched_from; /* first batch of the fetched rows, -1 none */
  long fetched_count;
  unsigned long generation; /* bumped by every fetch */
  int threaded;             /* a thread makes batches (not resident) */
  long epoch;
  float *x[SLOTS];
  int32_t *y[SLOTS];
  int filled[SLOTS];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Under mu. Batches [consume, ready) sit in slots b % SLOTS; the thread
   * makes batch `ready` while busy. perm and aug_key change only when the
   * thread is idle, so it reads them unlocked while busy. */
  long end, ready, consume;
  uint64_t aug_key;
  int busy, stop;
};

static void make_batch(struct loader *l, long b) {
  const struct loader_cfg *c = &l->cfg;
  int s = (int)(b % SLOTS), rows = 0;
  const double *mean = c->normalize ? c->mean : NULL, *std = c->normalize ? c->std : NULL;
  for (int r = 0; r < c->batch; r++) {
    /* Global position: row r of this rank's share of global batch b. */
    long pos = (b * c->batch + r) * l->ranks + c->rank;
    float *x = l->x[s] + (size_t)r * IMG;
    if (pos >= l->n) {
      memset(x, 0, IMG * sizeof *x);
      l->y[s][r] = -1;
      continue;
    }
    long idx = l->fetch ? b * c->batch + r : l->perm[pos];
    augment_image(&c->aug, l->split->images + (size_t)idx * IMG, x, mean, std, l->aug_key,
                  (uint64_t)pos);
    l->y[s][r] = l->split->labels[idx];
    rows++;
  }
  l->filled[s] = rows;
}

static void *worker(void *arg) {
  struct loader *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && !(l->ready < l->end && l->ready < l->consume + SLOTS))
      pthread_cond_wait(&l->cv, &l->mu);
    if (l->stop) break;
    long b = l->ready;
    l->busy = 1;
    pthread_mutex_unlock(&l->mu);
    make_batch(l, b);
    pthread_mutex_lock(&l->mu);
    l->busy = 0;
    l->ready = b + 1;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Frees the memory of a loader whose thread is not running. */
static void loader_release(struct loader *l) {
  for (int s = 0; s < SLOTS; s++) {
    free(l->x[s]);
    free(l->y[s]);
  }
  free(l->perm);
  free(l->rows);
  image_split_free(&l->own);
  free(l);
}

static int loader_make(struct loader **out, long n, const struct loader_cfg *cfg,
                       const struct image_split *split, loader_fetch_fn fetch, void *user,
                       struct ct_err *e) {
  *out = NULL;
  const struct augment_cfg *a = &cfg->aug;
  int ranks = cfg->ranks > 1 ? cfg->ranks : 1;
  if (cfg->batch < 1) return err_set(e, CT_ERR_USAGE, "loader: batch %d must be >= 1", cfg->batch);
  if (cfg->rank < 0 || cfg->rank >= ranks)
    return err_set(e, CT_ERR_USAGE, "loader: rank %d of %d", cfg->rank, ranks);
  if (a->crop_pad < 0 || a->crop_pad > 32 || a->cutout_size < 0 || !(a->rotate_deg >= 0.0f))
    return err_set(e, CT_ERR_USAGE,
                   "loader: bad augmentation (crop_pad %d, cutout_size %d, rotate_deg %g)",
                   a->crop_pad, a->cutout_size, (double)a->rotate_deg);
  for (int c = 0; cfg->normalize && c < 3; c++)
    if (!(cfg->std[c] > 0.0))
      return err_set(e, CT_ERR_USAGE, "loader: std[%d] = %g must be positive", c, cfg->std[c]);
  if (cfg->resident && !fetch)
    return err_set(e, CT_ERR_USAGE, "loader: a resident loader must be sharded");
  struct loader *l = calloc(1, sizeof *l);
  if (!l) return err_set(e, CT_ERR_RUNTIME, "loader: out of memory");
  l->cfg = *cfg;
  l->n = n;
  l->ranks = ranks;
  long global = (long)cfg->batch * ranks;
  l->nb = cfg->drop_last ? n / global : (n + global - 1) / global;
  l->fetch = fetch;
  l->fetch_user = user;
  l->fetched_from = -1;
  l->split = fetch ? &l->own : split;
  long mine = l->nb * cfg->batch; /* an upper bound on this rank's rows per epoch */
  int ok = (l->perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *l->perm)) != NULL;
  if (fetch) {
    ok = ok && (l->rows = malloc((size_t)(mine > 0 ? mine : 1) * sizeof *l->rows));
    ok = ok && image_split_alloc(&l->own, mine, e) == CT_OK;
  }
  for (int s = 0; s < SLOTS && !cfg->resident; s++) {
    ok = ok && (l->x[s] = malloc((size_t)cfg->batch * IMG * sizeof(float)));
    ok = ok && (l->y[s] = malloc((size_t)cfg->batch * sizeof(int32_t)));
  }
  if (!ok) {
    loader_release(l);
    return err_set(e, CT_ERR_RUNTIME, "loader: out of memory for batch %d", cfg->batch);
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  l->threaded = !cfg->resident;
  if (l->threaded && pthread_create(&l->thread, NULL, worker, l) != 0) {
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    loader_release(l);
    return err_set(e, CT_ERR_RUNTIME, "loader: cannot start the batch thread");
  }
  *out = l;
  return CT_OK;
}

int loader_create(struct loader **out, const struct image_split *split,
                  const struct loader_cfg *cfg, struct ct_err *e) {
  return loader_make(out, split->n, cfg, split, NULL, NULL, e);
}

int loader_create_sharded(struct loader **out, long n, const struct loader_cfg *cfg,
                          loader_fetch_fn fetch, void *user, struct ct_err *e) {
  return loader_make(out, n, cfg, NULL, fetch, user, e);
}

long loader_batches(const struct loader *l) { return l->nb; }

/* Waits until the thread is idle and stops it from starting another batch;
 * returns with mu held. */
static void loader_pause(struct loader *l) {
  pthread_mutex_lock(&l->mu);
  l->end = l->ready = l->consume;
  while (l->busy)
    pthread_cond_wait(&l->cv, &l->mu);
}

static void epoch_order(struct loader *l, long epoch) {
  if (l->cfg.shuffle) {
    dataset_permutation(l->perm, l->n, ops_mix64(l->cfg.seed ^ SHUFFLE_SALT), (uint64_t)epoch);
  } else {
    for (long i = 0; i < l->n; i++)
      l->perm[i] = i;
  }
  l->aug_key = ops_rng_bits(ops_mix64(l->cfg.seed ^ AUG_SALT), (uint64_t)epoch, 0);
  l->epoch = epoch;
}

/* With mu held and the thread idle: batches [first, nb) become available. */
static void epoch_go(struct loader *l, long first_batch) {
  long first = first_batch < 0 ? 0 : first_batch > l->nb ? l->nb : first_batch;
  l->end = l->nb;
  l->ready = l->consume = first;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

int loader_begin_epoch(struct loader *l, long epoch, long first_batch, struct ct_err *e) {
  loader_pause(l);
  epoch_order(l, epoch);
  long first = first_batch < 0 ? 0 : first_batch > l->nb ? l->nb : first_batch;
  int again = l->fetch && !(!l->cfg.shuffle && l->fetched_from >= 0 && l->fetched_from <= first);
  if (again) {
    /* This rank's rows of batches first.., in batch order; the valid ones
     * form a prefix (only the last global batch can be short). */
    const long per = l->cfg.batch, start = first * per;
    long count = 0;
    for (long j = start; j < l->nb * per; j++) {
      long pos = j * l->ranks + l->cfg.rank;
      if (pos >= l->n) break;
      l->rows[j] = l->perm[pos];
      count++;
    }
    l->fetched_from = -1;
    if (count > 0 && l->fetch(l->fetch_user, l->rows + start, count,
                              l->own.images + (size_t)start * IMG, l->own.labels + start, e)) {
      l->end = l->ready = l->consume;
      pthread_mutex_unlock(&l->mu);
      return e->code;
    }
    l->fetched_from = first;
    l->fetched_count = count;
    l->generation++;
  }
  epoch_go(l, first);
  return CT_OK;
}

/* Unlocked: these fields change only on the caller's thread. */
void loader_rng_state(const struct loader *l, uint64_t out[LOADER_RNG_WORDS]) {
  out[0] = ops_mix64(l->cfg.seed ^ SHUFFLE_SALT);
  out[1] = l->aug_key;
  out[2] = (uint64_t)l->epoch;
  out[3] = (uint64_t)l->consume;
}

int loader_next(struct loader *l, float *x, int32_t *y) {
  pthread_mutex_lock(&l->mu);
  if (l->consume >= l->end) {
    pthread_mutex_unlock(&l->mu);
    return 0;
  }
  while (l->ready <= l->consume)
    pthread_cond_wait(&l->cv, &l->mu);
  int s = (int)(l->consume % SLOTS);
  pthread_mutex_unlock(&l->mu);
  /* The thread never writes slot s until consume moves past it. */
  int batch = l->cfg.batch, rows = l->filled[s];
  memcpy(x, l->x[s], (size_t)batch * IMG * sizeof *x);
  memcpy(y, l->y[s], (size_t)batch * sizeof *y);
  pthread_mutex_lock(&l->mu);
  l->consume++;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return rows;
}

void loader_shard(const struct loader *l, const uint8_t **images, const int32_t **labels,
                  long *from, long *count, unsigned long *generation) {
  *images = l->own.images;
  *labels = l->own.labels;
  *from = l->fetched_from < 0 ? 0 : l->fetched_from * l->cfg.batch;
  *count = l->fetched_from < 0 ? 0 : l->fetched_count;
  *generation = l->generation;
}

int loader_take(struct loader *l, struct loader_batch *b) {
  if (l->consume >= l->end) return 0;
  const long per = l->cfg.batch, first = l->consume * per;
  int valid = 0;
  while (valid < per && (first + valid) * l->ranks + l->cfg.rank < l->n)
    valid++;
  *b = (struct loader_batch){.index = l->consume,
                             .valid = valid,
                             .pos0 = (uint64_t)(first * l->ranks + l->cfg.rank),
                             .pos_step = (uint64_t)l->ranks,
                             .key = l->aug_key};
  l->consume++; /* no thread: only the caller's thread touches it */
  return valid > 0;
}

void loader_free(struct loader *l) {
  if (!l) return;
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
  if (l->threaded) pthread_join(l->thread, NULL);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  loader_release(l);
}
