/* coco.c — reading the ctrain captioning layout (coco.h, docs/coco.md) and the
 * checks it shares with prepare_coco.c (coco_h5.h). */
#include "data/coco.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/coco_h5.h"
#include "data/dataset.h"
#include "h5/h5io.h"
#include "kernels/ops_shared.h"

const char *const coco_special_words[COCO_SPECIALS] = {"<NULL>", "<START>", "<END>", "<UNK>"};

int coco_check_tokens(const int32_t *caps, long n, int t, long vocab, long row0, long stride,
                      const char *path, const char *name, struct ct_err *e) {
  for (long i = 0; i < n; i++)
    for (int j = 0; j < t; j++) {
      int32_t v = caps[i * t + j];
      if (v < 0 || v >= vocab)
        return err_set(e, CT_ERR_RUNTIME,
                       "%s: %s row %ld has token id %d at position %d, outside the vocabulary "
                       "[0, %ld)",
                       path, name, row0 + i * stride, v, j, vocab);
    }
  return CT_OK;
}

int coco_check_image_idxs(const int32_t *idx, long n, long n_images, long row0, long stride,
                          const char *path, const char *name, const char *features,
                          struct ct_err *e) {
  for (long i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= n_images)
      return err_set(e, CT_ERR_RUNTIME, "%s: %s row %ld is %d, outside [0, %ld) (the rows of %s)",
                     path, name, row0 + i * stride, idx[i], n_images, features);
  return CT_OK;
}

/* Root attributes: the sizes, and the special token ids, which must be the
 * CS231n ones because the model and the loss hard-code them. */
static int read_attrs(hid_t f, const char *path, struct coco_info *info, struct ct_err *e) {
  static const char *const ids[COCO_SPECIALS] = {"null_id", "start_id", "end_id", "unk_id"};
  long v, dim, len;
  if (!h5io_attr_exists(f, "vocab_size"))
    return err_set(e, CT_ERR_RUNTIME,
                   "%s: not a captioning file (no root attribute 'vocab_size'; `ctrain prepare "
                   "coco` makes one)",
                   path);
  if (h5io_attr_read_long(f, "vocab_size", &v, path, e) ||
      h5io_attr_read_long(f, "feature_dim", &dim, path, e) ||
      h5io_attr_read_long(f, "max_length", &len, path, e))
    return e->code;
  if (v < COCO_SPECIALS || v > INT32_MAX)
    return err_set(e, CT_ERR_RUNTIME, "%s: attribute 'vocab_size' is %ld, want 4..%d", path, v,
                   INT32_MAX);
  if (dim < 1 || dim > COCO_MAX_FEATURE_DIM)
    return err_set(e, CT_ERR_RUNTIME, "%s: attribute 'feature_dim' is %ld, want 1..%d", path, dim,
                   COCO_MAX_FEATURE_DIM);
  if (len < 2 || len > COCO_MAX_LENGTH)
    return err_set(e, CT_ERR_RUNTIME, "%s: attribute 'max_length' is %ld, want 2..%d", path, len,
                   COCO_MAX_LENGTH);
  for (int i = 0; i < COCO_SPECIALS; i++) {
    long id;
    if (h5io_attr_read_long(f, ids[i], &id, path, e)) return e->code;
    if (id != i)
      return err_set(e, CT_ERR_RUNTIME, "%s: attribute '%s' is %ld, want %d (the CS231n id of %s)",
                     path, ids[i], id, i, coco_special_words[i]);
  }
  info->vocab_size = (int)v;
  info->feature_dim = (int)dim;
  info->max_length = (int)len;
  return CT_OK;
}

static const struct h5io_want
    CAPTIONS = {.cls = H5T_INTEGER, .dtype = "int32", .rank = 2, .shape = "(N,T)"},
    IMAGE_IDXS = {.cls = H5T_INTEGER, .dtype = "int32", .rank = 1, .shape = "(N)"},
    FEATURES = {.cls = H5T_FLOAT, .dtype = "float32", .rank = 2, .shape = "(N_img,D)"},
    WORDS = {.cls = H5T_STRING, .dtype = "strings", .rank = 1, .shape = "(V)"};

struct split_sets {
  hid_t captions, image_idxs, features;
  long n, n_images;
};

static void split_close(struct split_sets *s) {
  h5io_close(&s->captions);
  h5io_close(&s->image_idxs);
  h5io_close(&s->features);
}

/* Opens /split/{captions,image_idxs,features} and checks that their shapes
 * agree with each other and with the root attributes. */
static int split_open(hid_t f, const char *path, const char *split, const struct coco_info *info,
                      struct split_sets *s, struct ct_err *e) {
  char cn[32], in[32], fn[32];
  snprintf(cn, sizeof cn, "/%s/captions", split);
  snprintf(in, sizeof in, "/%s/image_idxs", split);
  snprintf(fn, sizeof fn, "/%s/features", split);
  hsize_t cd[2], id[1], fd[2];
  s->image_idxs = s->features = -1;
  s->captions = h5io_dataset(f, path, cn, &CAPTIONS, cd, e);
  if (s->captions >= 0) s->image_idxs = h5io_dataset(f, path, in, &IMAGE_IDXS, id, e);
  if (s->image_idxs >= 0) s->features = h5io_dataset(f, path, fn, &FEATURES, fd, e);
  int rc = s->features < 0 ? CT_ERR_RUNTIME : CT_OK;
  if (!rc && cd[1] != (hsize_t)info->max_length)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: %s has width %llu, but max_length is %d", path, cn,
                 (unsigned long long)cd[1], info->max_length);
  if (!rc && id[0] != cd[0])
    rc = err_set(e, CT_ERR_RUNTIME, "%s: %s has %llu rows but %s has %llu", path, in,
                 (unsigned long long)id[0], cn, (unsigned long long)cd[0]);
  if (!rc && fd[1] != (hsize_t)info->feature_dim)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: %s has width %llu, but feature_dim is %d", path, fn,
                 (unsigned long long)fd[1], info->feature_dim);
  if (rc) {
    split_close(s);
    return rc;
  }
  s->n = (long)cd[0];
  s->n_images = (long)fd[0];
  return CT_OK;
}

/* Opens the file and reads its root attributes; *f (-1 when it could not be
 * opened) is the caller's to close whatever the result. */
static int attrs_open(const char *path, hid_t *f, struct coco_info *info, struct ct_err *e) {
  if ((*f = h5io_open(path, e)) < 0) return CT_ERR_RUNTIME;
  return read_attrs(*f, path, info, e);
}

/* attrs_open, then /idx_to_word open, which must hold exactly vocab_size
 * strings; -1 on failure. */
static hid_t vocab_open(const char *path, hid_t *f, struct coco_info *info, struct ct_err *e) {
  hsize_t n;
  if (attrs_open(path, f, info, e)) return -1;
  hid_t d = h5io_dataset(*f, path, "/idx_to_word", &WORDS, &n, e);
  if (d >= 0 && n != (hsize_t)info->vocab_size) {
    err_set(e, CT_ERR_RUNTIME, "%s: /idx_to_word has %llu words, but vocab_size is %d", path,
            (unsigned long long)n, info->vocab_size);
    h5io_close(&d);
  }
  return d;
}

int coco_read_info(const char *path, struct coco_info *info, struct ct_err *e) {
  memset(info, 0, sizeof *info);
  struct split_sets tr, va;
  hid_t f, v = vocab_open(path, &f, info, e);
  int rc = v < 0 ? CT_ERR_RUNTIME : CT_OK;
  h5io_close(&v);
  if (!rc) rc = split_open(f, path, "train", info, &tr, e);
  if (!rc) {
    info->n_train = tr.n;
    info->n_train_images = tr.n_images;
    split_close(&tr);
    rc = split_open(f, path, "val", info, &va, e);
  }
  if (!rc) {
    info->n_val = va.n;
    info->n_val_images = va.n_images;
    split_close(&va);
  }
  h5io_close(&f);
  return rc;
}

int coco_is_caption_file(const char *path) {
  struct ct_err e;
  hid_t f = h5io_open(path, &e);
  if (f < 0) return 0;
  int yes = h5io_attr_exists(f, "vocab_size");
  h5io_close(&f);
  return yes;
}

void coco_vocab_free(struct coco_vocab *v) {
  for (int i = 0; v->words && i < v->n; i++)
    free(v->words[i]);
  free(v->words);
  v->words = NULL;
  v->n = 0;
}

int coco_read_vocab(const char *path, struct coco_vocab *v, struct ct_err *e) {
  memset(v, 0, sizeof *v);
  struct coco_info info;
  hid_t f, d = vocab_open(path, &f, &info, e);
  int rc = d < 0 ? CT_ERR_RUNTIME : CT_OK;
  if (!rc && !(v->words = calloc((size_t)info.vocab_size, sizeof *v->words)))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory reading /idx_to_word", path);
  if (!rc) {
    v->n = info.vocab_size;
    rc = h5io_read_strs(d, (size_t)v->n, v->words, "/idx_to_word", path, e);
  }
  for (int i = 0; !rc && i < v->n; i++)
    if (!v->words[i][0]) rc = err_set(e, CT_ERR_RUNTIME, "%s: /idx_to_word[%d] is empty", path, i);
  for (int i = 0; !rc && i < COCO_SPECIALS; i++)
    if (strcmp(v->words[i], coco_special_words[i]))
      rc = err_set(e, CT_ERR_RUNTIME, "%s: /idx_to_word[%d] is '%s', want '%s'", path, i,
                   v->words[i], coco_special_words[i]);
  if (rc) coco_vocab_free(v);
  h5io_close(&d);
  h5io_close(&f);
  return rc;
}

void coco_decode(const struct coco_vocab *v, const int32_t *tokens, int n, char *buf, size_t len) {
  size_t off = 0;
  if (len) buf[0] = 0;
  for (int i = 0; i < n && off < len; i++) {
    CT_CHECK(tokens[i] >= 0 && tokens[i] < v->n);
    int k = snprintf(buf + off, len - off, "%s%s", i ? " " : "", v->words[tokens[i]]);
    off = k < 0 ? len : off + (size_t)k;
  }
}

void coco_shard_free(struct coco_shard *s) {
  free(s->captions);
  free(s->image_idxs);
  free(s->features);
  free(s->image_rows);
  memset(s, 0, sizeof *s);
}

/* The shard's n_images feature rows (file rows image_rows) are finite. */
static int check_features(const struct coco_shard *s, const char *path, const char *split,
                          struct ct_err *e) {
  for (long k = 0; k < s->n_images * s->d; k++)
    if (!isfinite(s->features[k]))
      return err_set(e, CT_ERR_RUNTIME, "%s: /%s/features row %ld has a non-finite value", path,
                     split, s->image_rows[k / s->d]);
  return CT_OK;
}

/* What both shard readers start with: the arguments checked, the file open
 * (*f, closed by the caller whatever the result) and the split's datasets
 * open in *ss. */
static int shard_open(const char *path, const char *split, int rank, int world,
                      struct coco_shard *s, hid_t *f, struct coco_info *info, struct split_sets *ss,
                      struct ct_err *e) {
  memset(s, 0, sizeof *s);
  *ss = (struct split_sets){-1, -1, -1, 0, 0};
  *f = -1;
  if (strcmp(split, "train") && strcmp(split, "val"))
    return err_set(e, CT_ERR_USAGE, "%s: unknown split '%s' (want train or val)", path, split);
  if (world < 1 || rank < 0 || rank >= world)
    return err_set(e, CT_ERR_USAGE, "%s: bad shard rank %d of %d", path, rank, world);
  int rc = attrs_open(path, f, info, e);
  if (!rc) rc = split_open(*f, path, split, info, ss, e);
  return rc;
}

/* Gathers the feature rows the shard's captions reference, in file order, and
 * rewrites image_idxs to index that local table. `local` (n_images entries)
 * maps a file row to its local row. */
static int gather_features(hid_t feat, const char *path, const char *split, long n_images,
                           struct coco_shard *s, struct ct_err *e) {
  int32_t *local = malloc((size_t)(n_images > 0 ? n_images : 1) * sizeof *local);
  if (!local) return err_set(e, CT_ERR_RUNTIME, "%s: out of memory sharding /%s", path, split);
  for (long r = 0; r < n_images; r++)
    local[r] = -1;
  for (long i = 0; i < s->n; i++)
    local[s->image_idxs[i]] = 0;
  long m = 0;
  for (long r = 0; r < n_images; r++)
    if (local[r] == 0) m++;
  s->image_rows = malloc((size_t)(m > 0 ? m : 1) * sizeof *s->image_rows);
  s->features = malloc((size_t)(m > 0 ? m : 1) * (size_t)s->d * sizeof *s->features);
  int rc = CT_OK;
  if (!s->image_rows || !s->features) {
    rc =
        err_set(e, CT_ERR_RUNTIME, "%s: out of memory for %ld feature rows of /%s", path, m, split);
    goto done;
  }
  s->n_images = m;
  for (long r = 0, k = 0; r < n_images; r++)
    if (local[r] == 0) {
      local[r] = (int32_t)k;
      s->image_rows[k++] = r;
    }
  for (long i = 0; i < s->n; i++)
    s->image_idxs[i] = local[s->image_idxs[i]];
  /* One read per run of consecutive file rows, straight into the table. */
  for (long i = 0; i < m;) {
    long j = i + 1;
    while (j < m && s->image_rows[j] == s->image_rows[i] + (j - i))
      j++;
    if (h5io_read_rows(feat, H5T_NATIVE_FLOAT, s->image_rows[i], 1, j - i,
                       s->features + (size_t)i * (size_t)s->d)) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(/%s/features rows %ld..%ld) failed", path, split,
                   s->image_rows[i], s->image_rows[j - 1]);
      goto done;
    }
    i = j;
  }
  rc = check_features(s, path, split, e);
done:
  free(local);
  return rc;
}

int coco_read_shard(const char *path, const char *split, int rank, int world, struct coco_shard *s,
                    struct ct_err *e) {
  hid_t f;
  struct coco_info info;
  struct split_sets ss;
  char cn[32], in[32], fn[32];
  snprintf(cn, sizeof cn, "/%s/captions", split);
  snprintf(in, sizeof in, "/%s/image_idxs", split);
  snprintf(fn, sizeof fn, "/%s/features", split);
  int rc = shard_open(path, split, rank, world, s, &f, &info, &ss, e);
  if (rc) goto done;
  long n = rank < ss.n ? (ss.n - rank + world - 1) / world : 0;
  s->t = info.max_length;
  s->d = info.feature_dim;
  s->captions = malloc((size_t)(n > 0 ? n : 1) * (size_t)s->t * sizeof *s->captions);
  s->image_idxs = malloc((size_t)(n > 0 ? n : 1) * sizeof *s->image_idxs);
  if (!s->captions || !s->image_idxs) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory for %ld captions of /%s", path, n, split);
    goto done;
  }
  s->n = n;
  if (h5io_read_rows(ss.captions, H5T_NATIVE_INT32, rank, world, n, s->captions) ||
      h5io_read_rows(ss.image_idxs, H5T_NATIVE_INT32, rank, world, n, s->image_idxs)) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(%s or %s) failed", path, cn, in);
    goto done;
  }
  rc = coco_check_tokens(s->captions, n, s->t, info.vocab_size, rank, world, path, cn, e);
  if (!rc) rc = coco_check_image_idxs(s->image_idxs, n, ss.n_images, rank, world, path, in, fn, e);
  if (!rc) rc = gather_features(ss.features, path, split, ss.n_images, s, e);
done:
  if (rc) coco_shard_free(s);
  split_close(&ss);
  h5io_close(&f);
  return rc;
}

/* Keeps the caption rows of the split that describe images [lo, hi): reads
 * image_idxs whole and the captions in blocks of rows, so memory stays at
 * one block beyond the rows kept. Fills n, captions and image_idxs (file
 * rows of features, in [lo, hi)). */
static int gather_captions(const struct split_sets *ss, const char *path, const char *split,
                           const struct coco_info *info, long lo, long hi, struct coco_shard *s,
                           struct ct_err *e) {
  enum { BLOCK = 4096 };
  char cn[32], in[32], fn[32];
  snprintf(cn, sizeof cn, "/%s/captions", split);
  snprintf(in, sizeof in, "/%s/image_idxs", split);
  snprintf(fn, sizeof fn, "/%s/features", split);
  const int t = info->max_length;
  int32_t *idx = malloc((size_t)(ss->n > 0 ? ss->n : 1) * sizeof *idx);
  int32_t *block = malloc((size_t)BLOCK * (size_t)t * sizeof *block);
  int rc = CT_OK;
  if (!idx || !block) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory scanning /%s", path, split);
    goto done;
  }
  if (h5io_read_rows(ss->image_idxs, H5T_NATIVE_INT32, 0, 1, ss->n, idx)) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(%s) failed", path, in);
    goto done;
  }
  if ((rc = coco_check_image_idxs(idx, ss->n, ss->n_images, 0, 1, path, in, fn, e))) goto done;
  long m = 0;
  for (long i = 0; i < ss->n; i++)
    m += idx[i] >= lo && idx[i] < hi;
  s->captions = malloc((size_t)(m > 0 ? m : 1) * (size_t)t * sizeof *s->captions);
  s->image_idxs = malloc((size_t)(m > 0 ? m : 1) * sizeof *s->image_idxs);
  if (!s->captions || !s->image_idxs) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory for %ld captions of /%s", path, m, split);
    goto done;
  }
  for (long start = 0; start < ss->n; start += BLOCK) {
    long count = ss->n - start < BLOCK ? ss->n - start : BLOCK;
    if (h5io_read_rows(ss->captions, H5T_NATIVE_INT32, start, 1, count, block)) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(%s rows %ld..%ld) failed", path, cn, start,
                   start + count - 1);
      goto done;
    }
    if ((rc = coco_check_tokens(block, count, t, info->vocab_size, start, 1, path, cn, e)))
      goto done;
    for (long i = 0; i < count; i++) {
      int32_t im = idx[start + i];
      if (im < lo || im >= hi) continue;
      memcpy(s->captions + (size_t)s->n * (size_t)t, block + (size_t)i * (size_t)t,
             (size_t)t * sizeof *block);
      s->image_idxs[s->n++] = im;
    }
  }
done:
  free(idx);
  free(block);
  return rc;
}

int coco_read_images(const char *path, const char *split, int rank, int world, struct coco_shard *s,
                     struct ct_err *e) {
  hid_t f;
  struct coco_info info;
  struct split_sets ss;
  int rc = shard_open(path, split, rank, world, s, &f, &info, &ss, e);
  if (rc) goto done;
  const long lo = (long)((long long)ss.n_images * rank / world);
  const long hi = (long)((long long)ss.n_images * (rank + 1) / world);
  s->t = info.max_length;
  s->d = info.feature_dim;
  if ((rc = gather_captions(&ss, path, split, &info, lo, hi, s, e))) goto done;
  s->n_images = hi - lo;
  s->image_rows = malloc((size_t)(hi > lo ? hi - lo : 1) * sizeof *s->image_rows);
  s->features = malloc((size_t)(hi > lo ? hi - lo : 1) * (size_t)s->d * sizeof *s->features);
  if (!s->image_rows || !s->features) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory for %ld feature rows of /%s", path, hi - lo,
                 split);
    goto done;
  }
  for (long k = 0; k < hi - lo; k++)
    s->image_rows[k] = lo + k;
  for (long i = 0; i < s->n; i++)
    s->image_idxs[i] -= (int32_t)lo;
  if (h5io_read_rows(ss.features, H5T_NATIVE_FLOAT, lo, 1, hi - lo, s->features)) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(/%s/features rows %ld..%ld) failed", path, split,
                 lo, hi - 1);
    goto done;
  }
  rc = check_features(s, path, split, e);
done:
  if (rc) coco_shard_free(s);
  split_close(&ss);
  h5io_close(&f);
  return rc;
}

void coco_permutation(long *perm, long n, uint64_t seed, long epoch) {
  dataset_permutation(perm, n, ops_mix64(seed ^ 0x434150534855464cULL),
                      (uint64_t)epoch); /* "CAPSHUFL" */
}

int coco_batch(const struct coco_shard *s, const long *perm, long pos, int batch,
               int32_t *captions_in, int32_t *captions_out, float *features) {
  const int w = s->t - 1;
  int real = 0;
  for (int b = 0; b < batch; b++) {
    int32_t *in = captions_in + (size_t)b * w, *out = captions_out + (size_t)b * w;
    float *feat = features + (size_t)b * s->d;
    long p = pos + b;
    if (p < 0 || p >= s->n) {
      for (int j = 0; j < w; j++)
        in[j] = out[j] = COCO_NULL;
      memset(feat, 0, (size_t)s->d * sizeof *feat);
      continue;
    }
    long row = perm ? perm[p] : p;
    const int32_t *cap = s->captions + (size_t)row * s->t;
    memcpy(in, cap, (size_t)w * sizeof *in);
    memcpy(out, cap + 1, (size_t)w * sizeof *out);
    memcpy(feat, s->features + (size_t)s->image_idxs[row] * s->d, (size_t)s->d * sizeof *feat);
    real++;
  }
  return real;
}
