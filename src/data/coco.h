/* coco.h — the ctrain captioning layout (docs/coco.md): /{train,val}/captions
 * int32 (N,T), /{train,val}/image_idxs int32 (N), /{train,val}/features
 * float32 (N_img,D), /idx_to_word strings (V), root attributes vocab_size,
 * feature_dim, max_length and the special token ids. Readers validate all
 * they touch, so a malformed file is a one-line ct_err naming the file, the
 * dataset and the row. */
#ifndef CTRAIN_COCO_H
#define CTRAIN_COCO_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "models/tokens.h"

/* The special tokens' words, as idx_to_word must hold them. */
extern const char *const coco_special_words[COCO_SPECIALS]; /* "<NULL>", ... by id */

struct coco_info {
  int vocab_size;                    /* V: token ids lie in [0, V) */
  int feature_dim;                   /* D */
  int max_length;                    /* T: the width of a caption row, special tokens included */
  long n_train, n_val;               /* caption rows */
  long n_train_images, n_val_images; /* feature rows */
};

/* Reads the root attributes and checks every dataset's dtype and shape
 * (not the values: coco_read_shard checks those it reads). */
int coco_read_info(const char *path, struct coco_info *info, struct ct_err *e);

/* 1 when path is an HDF5 file whose root has the attribute vocab_size (a
 * `ctrain prepare coco` file), else 0 (also when it cannot be opened). */
int coco_is_caption_file(const char *path);

struct coco_vocab {
  int n;
  char **words; /* idx_to_word, n UTF-8 strings */
};

int coco_read_vocab(const char *path, struct coco_vocab *v, struct ct_err *e);
void coco_vocab_free(struct coco_vocab *v);

/* The words of n tokens joined by spaces (every token, the special ones
 * too: the caller picks the span). Truncates to len - 1 bytes. */
void coco_decode(const struct coco_vocab *v, const int32_t *tokens, int n, char *buf, size_t len);

/* One rank's part of a split: caption rows rank, rank + world, ... of the
 * file (local row i is file row rank + i * world) and only the feature rows
 * they reference, as a local table that image_idxs index. */
struct coco_shard {
  long n;              /* caption rows */
  int t;               /* T */
  int d;               /* D */
  long n_images;       /* rows of the local feature table */
  int32_t *captions;   /* (n, t) */
  int32_t *image_idxs; /* (n): rows of `features` */
  float *features;     /* (n_images, d) */
  long *image_rows;    /* (n_images): the file row of each local feature row, ascending */
};

/* split is "train" or "val"; 0 <= rank < world. The caption rows are one
 * strided hyperslab; the referenced feature rows are read in runs of
 * consecutive rows, so a rank reads only its own bytes. Checks token ids
 * against vocab_size and image indices against the split's feature rows.
 * Allocates (release with coco_shard_free); on error *s is empty. */
int coco_read_shard(const char *path, const char *split, int rank, int world, struct coco_shard *s,
                    struct ct_err *e);
void coco_shard_free(struct coco_shard *s);

/* One rank's block of a split's IMAGES, for evaluation and sampling, where an
 * image's captions must be together (they are its BLEU references): feature
 * rows [N_img * rank / world, N_img * (rank + 1) / world) as one hyperslab,
 * and every caption row that describes one of them, in file order. To find
 * those, every rank reads the split's image_idxs whole and scans its captions
 * in blocks of rows (13 MB for the release's val), keeping its own. Checks
 * as coco_read_shard; image_rows[k] is the file row lo + k. */
int coco_read_images(const char *path, const char *split, int rank, int world, struct coco_shard *s,
                     struct ct_err *e);

/* The order of an epoch over n rows: a Fisher–Yates permutation drawn from
 * the counter stream (f(seed), epoch), so a pure function of (n, seed, epoch). */
void coco_permutation(long *perm, long n, uint64_t seed, long epoch);

/* Fills the batch of epoch positions pos .. pos + batch - 1, position p being
 * shard row perm[p] (row p when perm is NULL): captions_in = caption[:-1],
 * captions_out = caption[1:] (each batch x (T-1)) and features (batch x D).
 * Positions at or past s->n are padding: <NULL> tokens, which the loss masks,
 * and zero features. Returns the number of real rows. */
int coco_batch(const struct coco_shard *s, const long *perm, long pos, int batch,
               int32_t *captions_in, int32_t *captions_out, float *features);

#endif
