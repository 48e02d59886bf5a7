/* prepare_coco.c — the CS231n COCO-captioning files into the ctrain layout
 * (coco.h), and the synthetic stand-in in the CS231n layout (docs/coco.md). */
#include "data/prepare_coco.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/coco.h"
#include "data/coco_h5.h"
#include "data/dataset.h"
#include "h5/h5io.h"
#include "kernels/ops_shared.h"

/* The names of the CS231n release (assignment 3, datasets/coco_captioning). */
static const char CAPTIONS_FILE[] = "coco2014_captions.h5", VOCAB_FILE[] = "coco2014_vocab.json";
static const char *const FEATURE_FILES[2][2] = {
    {"train2014_vgg16_fc7_pca.h5", "val2014_vgg16_fc7_pca.h5"},
    {"train2014_vgg16_fc7.h5", "val2014_vgg16_fc7.h5"}};
static const char *const URL_FILES[2] = {"train2014_urls.txt", "val2014_urls.txt"};
static const char *const SPLITS[2] = {"train", "val"};

static const struct h5io_want
    CAPTIONS = {.cls = H5T_INTEGER, .dtype = "int32", .rank = 2, .shape = "(N,17)"},
    IMAGE_IDXS = {.cls = H5T_INTEGER, .dtype = "int32", .rank = 1, .shape = "(N)"},
    FEATURES = {.cls = H5T_FLOAT, .dtype = "float32", .rank = 2, .shape = "(N_img,D)"};

/* Copying features this many floats at a time bounds memory for the 4096-d files. */
enum { COPY_FLOATS = 1 << 22 };

static int join(char *buf, size_t len, const char *dir, const char *name, struct ct_err *e) {
  if (snprintf(buf, len, "%s/%s", dir, name) >= (int)len)
    return err_set(e, CT_ERR_USAGE, "%s/%s: path too long", dir, name);
  return CT_OK;
}

/* An output written to PATH.tmp-XXXXXX and renamed into place on success. */
struct out_file {
  char path[PATH_MAX], tmp[PATH_MAX + 16];
};

static int out_begin(struct out_file *o, const char *path, int *fd, struct ct_err *e) {
  if (snprintf(o->path, sizeof o->path, "%s", path) >= (int)sizeof o->path)
    return err_set(e, CT_ERR_USAGE, "%s: path too long", path);
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp-XXXXXX", path);
  if ((*fd = mkstemp(o->tmp)) < 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot create output: %s", path, strerror(errno));
  /* mkstemp creates 0600; these are ordinary shared data files. */
  fchmod(*fd, 0644);
  return CT_OK;
}

static int out_commit(struct out_file *o, struct ct_err *e) {
  if (rename(o->tmp, o->path) == 0) return CT_OK;
  int rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot rename %s into place: %s", o->path, o->tmp,
                   strerror(errno));
  unlink(o->tmp);
  return rc;
}

static hid_t h5_begin(struct out_file *o, const char *path, struct ct_err *e) {
  int fd;
  if (out_begin(o, path, &fd, e)) return -1;
  close(fd);
  hid_t f = h5io_create_file(o->tmp, e);
  if (f < 0) unlink(o->tmp);
  return f;
}

/* Closes f and renames on rc == CT_OK; otherwise removes the temporary. */
static int h5_end(struct out_file *o, hid_t f, int rc, struct ct_err *e) {
  if ((rc = h5io_close_file(f, rc, o->path, e))) {
    unlink(o->tmp);
    return rc;
  }
  return out_commit(o, e);
}

/* --- the vocabulary JSON -------------------------------------------------- */

/* Reads idx_to_word and checks that word_to_idx is its exact inverse and that
 * the special tokens hold ids 0..3, as CS231n's captions assume. */
static int vocab_load(const char *path, struct coco_vocab *v, struct ct_err *e) {
  memset(v, 0, sizeof *v);
  if (access(path, R_OK) != 0) return err_set(e, CT_ERR_RUNTIME, "%s: %s", path, strerror(errno));
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return err_set(e, CT_ERR_RUNTIME, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column,
                   je.text);
  json_t *itw = json_object_get(root, "idx_to_word"), *wti = json_object_get(root, "word_to_idx");
  size_t n = json_array_size(itw);
  int rc = CT_ERR_RUNTIME;
  if (!json_is_object(root)) {
    err_set(e, rc, "%s: the top level is not a JSON object", path);
    goto done;
  }
  if (!json_is_array(itw) || !json_is_object(wti)) {
    err_set(e, rc, "%s: want keys 'idx_to_word' (a list) and 'word_to_idx' (an object)", path);
    goto done;
  }
  if (n < COCO_SPECIALS || n > INT32_MAX) {
    err_set(e, rc, "%s: idx_to_word has %zu words, want at least the %d special tokens", path, n,
            COCO_SPECIALS);
    goto done;
  }
  if (json_object_size(wti) != n) {
    err_set(e, rc, "%s: idx_to_word has %zu words but word_to_idx has %zu", path, n,
            json_object_size(wti));
    goto done;
  }
  if (!(v->words = calloc(n, sizeof *v->words))) {
    err_set(e, rc, "%s: out of memory", path);
    goto done;
  }
  v->n = (int)n;
  for (size_t i = 0; i < n; i++) {
    json_t *w = json_array_get(itw, i);
    const char *s = json_string_value(w);
    size_t len = json_string_length(w);
    if (!s || len == 0) {
      err_set(e, rc, "%s: idx_to_word[%zu] is not a non-empty string", path, i);
      goto done;
    }
    /* A blank or control character would break decoding and one-line messages. */
    for (size_t k = 0; k < len; k++)
      if ((unsigned char)s[k] <= ' ') {
        err_set(e, rc, "%s: idx_to_word[%zu] contains whitespace or a control character", path, i);
        goto done;
      }
    if (i < COCO_SPECIALS && strcmp(s, coco_special_words[i])) {
      err_set(e, rc,
              "%s: idx_to_word[%zu] is '%s', want '%s' (special tokens <NULL> <START> "
              "<END> <UNK> at 0..3)",
              path, i, s, coco_special_words[i]);
      goto done;
    }
    json_t *id = json_object_get(wti, s);
    if (!json_is_integer(id) || json_integer_value(id) != (json_int_t)i) {
      err_set(e, rc, "%s: word_to_idx['%s'] is not %zu, but idx_to_word[%zu] is '%s'", path, s, i,
              i, s);
      goto done;
    }
    if (!(v->words[i] = strdup(s))) {
      err_set(e, rc, "%s: out of memory", path);
      goto done;
    }
  }
  rc = CT_OK;
done:
  if (rc) coco_vocab_free(v);
  json_decref(root);
  return rc;
}

/* --- importing the CS231n files -------------------------------------------- */

struct src_split {
  long n, n_images;
  int32_t *captions, *image_idxs;
  hid_t file, features;
  char path[PATH_MAX]; /* the feature file */
};

static void src_free(struct src_split *s) {
  free(s->captions);
  free(s->image_idxs);
  h5io_close(&s->features);
  h5io_close(&s->file);
}

/* Opens the split's feature file and reads its captions and image indices
 * from the captions file cf; *t and *d are the caption width and feature
 * dimension, set by the first split and checked against by the second. */
static int src_read(hid_t cf, const char *cpath, const char *src_dir, int split, int full,
                    struct src_split *s, int *t, int *d, struct ct_err *e) {
  char cn[32], in[32];
  snprintf(cn, sizeof cn, "%s_captions", SPLITS[split]);
  snprintf(in, sizeof in, "%s_image_idxs", SPLITS[split]);
  hsize_t cd[2], id[1], fd[2];
  if (join(s->path, sizeof s->path, src_dir, FEATURE_FILES[full][split], e)) return e->code;
  if ((s->file = h5io_open(s->path, e)) < 0 ||
      (s->features = h5io_dataset(s->file, s->path, "features", &FEATURES, fd, e)) < 0)
    return CT_ERR_RUNTIME;
  if (fd[1] < 1 || fd[1] > COCO_MAX_FEATURE_DIM || (*d && fd[1] != (hsize_t)*d))
    return err_set(e, CT_ERR_RUNTIME, "%s: features has width %llu, want %s%d", s->path,
                   (unsigned long long)fd[1], *d ? "the train width " : "1..",
                   *d ? *d : COCO_MAX_FEATURE_DIM);
  hid_t c = h5io_dataset(cf, cpath, cn, &CAPTIONS, cd, e);
  hid_t x = c < 0 ? -1 : h5io_dataset(cf, cpath, in, &IMAGE_IDXS, id, e);
  int rc = x < 0 ? CT_ERR_RUNTIME : CT_OK;
  if (!rc && (cd[1] < 2 || cd[1] > COCO_MAX_LENGTH || (*t && cd[1] != (hsize_t)*t)))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: %s has width %llu, want %s%d", cpath, cn,
                 (unsigned long long)cd[1], *t ? "the train width " : "2..",
                 *t ? *t : COCO_MAX_LENGTH);
  if (!rc && id[0] != cd[0])
    rc = err_set(e, CT_ERR_RUNTIME, "%s: %s has %llu rows but %s has %llu", cpath, in,
                 (unsigned long long)id[0], cn, (unsigned long long)cd[0]);
  if (!rc) {
    s->n = (long)cd[0];
    s->n_images = (long)fd[0];
    *t = (int)cd[1];
    *d = (int)fd[1];
    s->captions = malloc((size_t)(s->n > 0 ? s->n : 1) * (size_t)*t * sizeof *s->captions);
    s->image_idxs = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *s->image_idxs);
    if (!s->captions || !s->image_idxs)
      rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory for %ld captions", cpath, s->n);
  }
  if (!rc && (h5io_read_rows(c, H5T_NATIVE_INT32, 0, 1, s->n, s->captions) ||
              h5io_read_rows(x, H5T_NATIVE_INT32, 0, 1, s->n, s->image_idxs)))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(%s or %s) failed", cpath, cn, in);
  h5io_close(&c);
  h5io_close(&x);
  return rc;
}

/* Copies the source features in blocks, refusing non-finite values. */
static int copy_features(hid_t f, const char *name, const char *out, const struct src_split *s,
                         int d, struct ct_err *e) {
  hsize_t dims[2] = {(hsize_t)s->n_images, (hsize_t)d};
  hid_t dst = h5io_create(f, name, H5T_IEEE_F32LE, 2, dims, out, e);
  if (dst < 0) return CT_ERR_RUNTIME;
  long block = COPY_FLOATS / d > 0 ? COPY_FLOATS / d : 1;
  float *buf = malloc((size_t)block * (size_t)d * sizeof *buf);
  int rc = buf ? CT_OK : err_set(e, CT_ERR_RUNTIME, "%s: out of memory copying features", out);
  for (long r = 0; !rc && r < s->n_images; r += block) {
    long cnt = s->n_images - r < block ? s->n_images - r : block;
    if (h5io_read_rows(s->features, H5T_NATIVE_FLOAT, r, 1, cnt, buf)) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dread(features rows %ld..%ld) failed", s->path, r,
                   r + cnt - 1);
      break;
    }
    for (long k = 0; k < cnt * d; k++)
      if (!isfinite(buf[k])) {
        rc = err_set(e, CT_ERR_RUNTIME, "%s: features row %ld has a non-finite value", s->path,
                     r + k / d);
        break;
      }
    if (!rc && h5io_write_rows(dst, H5T_NATIVE_FLOAT, r, cnt, buf))
      rc = err_set(e, CT_ERR_RUNTIME, "%s: H5Dwrite(%s) failed", out, name);
  }
  free(buf);
  h5io_close(&dst);
  return rc;
}

/* The root attributes and /idx_to_word of the ctrain layout. */
static int write_header(hid_t f, const char *out, const struct coco_vocab *v, int t, int d,
                        int full, struct ct_err *e) {
  static const char *const ids[COCO_SPECIALS] = {"null_id", "start_id", "end_id", "unk_id"};
  int rc = h5io_attr_write_long(f, "vocab_size", v->n, out, e);
  if (!rc) rc = h5io_attr_write_long(f, "feature_dim", d, out, e);
  if (!rc) rc = h5io_attr_write_long(f, "max_length", t, out, e);
  for (int i = 0; !rc && i < COCO_SPECIALS; i++)
    rc = h5io_attr_write_long(f, ids[i], i, out, e);
  if (!rc)
    rc = h5io_attr_write_str(f, "features_source", full ? "vgg16_fc7" : "vgg16_fc7_pca", out, e);
  if (!rc) rc = h5io_write_utf8(f, "/idx_to_word", v->words, (size_t)v->n, out, e);
  return rc;
}

static int write_layout(const char *out, const struct coco_vocab *v, struct src_split *sp, int t,
                        int d, int full, struct ct_err *e) {
  struct out_file o;
  hid_t f = h5_begin(&o, out, e);
  if (f < 0) return CT_ERR_RUNTIME;
  int rc = write_header(f, out, v, t, d, full, e);
  for (int s = 0; s < 2 && !rc; s++) {
    char name[32];
    hsize_t cd[2] = {(hsize_t)sp[s].n, (hsize_t)t};
    snprintf(name, sizeof name, "/%s/captions", SPLITS[s]);
    rc = h5io_write_plain(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, cd, sp[s].captions, out, e);
    snprintf(name, sizeof name, "/%s/image_idxs", SPLITS[s]);
    if (!rc)
      rc = h5io_write_plain(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, cd, sp[s].image_idxs, out,
                            e);
    snprintf(name, sizeof name, "/%s/features", SPLITS[s]);
    if (!rc) rc = copy_features(f, name, out, &sp[s], d, e);
  }
  return h5_end(&o, f, rc, e);
}

int prepare_coco(const char *src_dir, const char *out, int full, struct ct_err *e) {
  char cpath[PATH_MAX], vpath[PATH_MAX];
  struct coco_vocab v = {0};
  struct src_split sp[2] = {{.file = -1, .features = -1}, {.file = -1, .features = -1}};
  int t = 0, d = 0;
  full = full != 0;
  if (join(cpath, sizeof cpath, src_dir, CAPTIONS_FILE, e) ||
      join(vpath, sizeof vpath, src_dir, VOCAB_FILE, e))
    return e->code;
  hid_t cf = h5io_open(cpath, e);
  if (cf < 0) return CT_ERR_RUNTIME;
  int rc = vocab_load(vpath, &v, e);
  for (int s = 0; s < 2 && !rc; s++)
    rc = src_read(cf, cpath, src_dir, s, full, &sp[s], &t, &d, e);
  for (int s = 0; s < 2 && !rc; s++) {
    char cn[32], in[32];
    snprintf(cn, sizeof cn, "%s_captions", SPLITS[s]);
    snprintf(in, sizeof in, "%s_image_idxs", SPLITS[s]);
    rc = coco_check_tokens(sp[s].captions, sp[s].n, t, v.n, 0, 1, cpath, cn, e);
    if (!rc)
      rc = coco_check_image_idxs(sp[s].image_idxs, sp[s].n, sp[s].n_images, 0, 1, cpath, in,
                                 FEATURE_FILES[full][s], e);
  }
  if (!rc) rc = write_layout(out, &v, sp, t, d, full, e);
  src_free(&sp[0]);
  src_free(&sp[1]);
  coco_vocab_free(&v);
  h5io_close(&cf);
  return rc;
}

/* --- the synthetic stand-in ------------------------------------------------- */

enum { N_COUNTS = 2, N_COLOURS = 8, N_OBJECTS = 8, N_PLACES = 6, N_TEMPLATES = 3 };
enum { N_NUISANCE = 8, N_LATENT = N_COUNTS + N_COLOURS + N_OBJECTS + N_PLACES + N_NUISANCE };
enum { SYN_DIM = 512, SYN_LENGTH = 17 };

static const char *const colours[N_COLOURS] = {"red",   "blue",  "green", "yellow",
                                               "black", "white", "brown", "grey"};
static const char *const objects[N_OBJECTS][2] = {
    {"dog", "dogs"}, {"cat", "cats"},  {"horse", "horses"}, {"bird", "birds"},
    {"car", "cars"}, {"bus", "buses"}, {"boat", "boats"},   {"train", "trains"}};
static const char *const places[N_PLACES] = {"on the grass", "on the street", "near the water",
                                             "in a field",   "on the beach",  "in the snow"};
static const char *const function_words[] = {"a",     "two", "there", "is",    "are",    "photo",
                                             "of",    "on",  "the",   "grass", "street", "near",
                                             "water", "in",  "field", "beach", "snow"};
enum { N_FUNCTION = sizeof function_words / sizeof *function_words };
enum { SYN_VOCAB = COCO_SPECIALS + N_FUNCTION + N_COLOURS + 2 * N_OBJECTS };

/* Draw indices of one image: attributes and templates as raw bits, the
 * Gaussians (two raw draws each) far above them. */
enum { R_COUNT, R_COLOUR, R_OBJECT, R_PLACE, R_TEMPLATE = 16 };
enum { G_NUISANCE = 1 << 20, G_NOISE = G_NUISANCE + N_NUISANCE };

/* Signal and noise scales: each attribute moves the 512-d feature by about
 * 0.35 * sqrt(2 * 512) ~ 11 noise standard deviations, so a linear read-out
 * recovers it, yet no single feature reveals it. */
static const float PROJ_SCALE = 0.35f, NOISE_SCALE = 1.0f;

static float gauss(uint64_t key, uint64_t ctr, uint64_t i) {
  double u1 = ((double)(ops_rng_bits(key, ctr, 2 * i) >> 11) + 0.5) * 0x1p-53;
  double u2 = (double)(ops_rng_bits(key, ctr, 2 * i + 1) >> 11) * 0x1p-53;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void syn_vocab(const char **words) {
  int k = 0;
  for (int i = 0; i < COCO_SPECIALS; i++)
    words[k++] = coco_special_words[i];
  for (int i = 0; i < N_FUNCTION; i++)
    words[k++] = function_words[i];
  for (int i = 0; i < N_COLOURS; i++)
    words[k++] = colours[i];
  for (int i = 0; i < N_OBJECTS; i++) {
    words[k++] = objects[i][0];
    words[k++] = objects[i][1];
  }
}

static int32_t word_id(const char *const *words, const char *w, size_t len) {
  for (int32_t i = 0; i < SYN_VOCAB; i++)
    if (strlen(words[i]) == len && !strncmp(words[i], w, len)) return i;
  ct_panic(__FILE__, __LINE__, "synthetic caption word outside the vocabulary");
}

struct syn_image {
  int count, colour, object, place;
};

static struct syn_image syn_attrs(uint64_t key, uint64_t ctr) {
  return (struct syn_image){(int)(ops_rng_bits(key, ctr, R_COUNT) % N_COUNTS),
                            (int)(ops_rng_bits(key, ctr, R_COLOUR) % N_COLOURS),
                            (int)(ops_rng_bits(key, ctr, R_OBJECT) % N_OBJECTS),
                            (int)(ops_rng_bits(key, ctr, R_PLACE) % N_PLACES)};
}

/* features = P z + noise, z the one-hot attributes and Gaussian nuisance factors. */
static void syn_features(uint64_t key, uint64_t ctr, const float *proj, float *feat) {
  struct syn_image a = syn_attrs(key, ctr);
  float z[N_LATENT] = {0};
  z[a.count] = z[N_COUNTS + a.colour] = z[N_COUNTS + N_COLOURS + a.object] = 1.0f;
  z[N_COUNTS + N_COLOURS + N_OBJECTS + a.place] = 1.0f;
  for (int k = 0; k < N_NUISANCE; k++)
    z[N_LATENT - N_NUISANCE + k] = gauss(key, ctr, G_NUISANCE + (uint64_t)k);
  for (int j = 0; j < SYN_DIM; j++) {
    float v = NOISE_SCALE * gauss(key, ctr, G_NOISE + (uint64_t)j);
    for (int k = 0; k < N_LATENT; k++)
      v += proj[j * N_LATENT + k] * z[k];
    feat[j] = v;
  }
}

/* Caption k of an image: its attributes in one of three templates. */
static void syn_caption(uint64_t key, uint64_t ctr, int k, const char *const *words, int32_t *row) {
  struct syn_image a = syn_attrs(key, ctr);
  int tmpl = (int)(ops_rng_bits(key, ctr, R_TEMPLATE + (uint64_t)k) % N_TEMPLATES);
  static const char *const lead[N_TEMPLATES][N_COUNTS] = {
      {"a", "two"}, {"there is a", "there are two"}, {"a photo of a", "a photo of two"}};
  char text[128];
  snprintf(text, sizeof text, "%s %s %s %s", lead[tmpl][a.count], colours[a.colour],
           objects[a.object][a.count], places[a.place]);
  int n = 0;
  row[n++] = COCO_START;
  for (const char *s = text; *s;) {
    size_t len = strcspn(s, " ");
    row[n++] = word_id(words, s, len);
    s += len + (s[len] == ' ');
  }
  row[n++] = COCO_END;
  CT_CHECK(n <= SYN_LENGTH);
  while (n < SYN_LENGTH)
    row[n++] = COCO_NULL;
}

struct syn_split {
  long n_images, n;
  float *features;
  int32_t *captions, *image_idxs;
};

static void syn_free(struct syn_split *s) {
  free(s->features);
  free(s->captions);
  free(s->image_idxs);
}

/* Images of split s use counters s * 2^40 + i; the captions are stored in a
 * seeded shuffled order, as in the real files, so image_idxs matter. */
static int syn_generate(uint64_t key, int split, long n_images, int per, const float *proj,
                        const char *const *words, struct syn_split *s, struct ct_err *e) {
  s->n_images = n_images;
  s->n = n_images * per;
  s->features = malloc((size_t)n_images * SYN_DIM * sizeof *s->features);
  s->captions = malloc((size_t)s->n * SYN_LENGTH * sizeof *s->captions);
  s->image_idxs = malloc((size_t)s->n * sizeof *s->image_idxs);
  long *order = malloc((size_t)s->n * sizeof *order);
  if (!s->features || !s->captions || !s->image_idxs || !order) {
    free(order);
    return err_set(e, CT_ERR_RUNTIME, "out of memory generating %ld synthetic images", n_images);
  }
  uint64_t base = (uint64_t)split << 40;
  for (long i = 0; i < n_images; i++)
    syn_features(key, base + (uint64_t)i, proj, s->features + (size_t)i * SYN_DIM);
  dataset_permutation(order, s->n, ops_mix64(key ^ 0x4341504f52444552ULL), (uint64_t)split);
  for (long r = 0; r < s->n; r++) {
    long img = order[r] / per;
    syn_caption(key, base + (uint64_t)img, (int)(order[r] % per), words,
                s->captions + (size_t)r * SYN_LENGTH);
    s->image_idxs[r] = (int32_t)img;
  }
  free(order);
  return CT_OK;
}

static int write_features_file(const char *path, const struct syn_split *s, struct ct_err *e) {
  struct out_file o;
  hid_t f = h5_begin(&o, path, e);
  if (f < 0) return CT_ERR_RUNTIME;
  hsize_t dims[2] = {(hsize_t)s->n_images, SYN_DIM};
  int rc = h5io_write_plain(f, "features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, s->features,
                            path, e);
  return h5_end(&o, f, rc, e);
}

static int write_captions_file(const char *path, const struct syn_split *sp, struct ct_err *e) {
  struct out_file o;
  hid_t f = h5_begin(&o, path, e);
  if (f < 0) return CT_ERR_RUNTIME;
  int rc = CT_OK;
  for (int s = 0; s < 2 && !rc; s++) {
    char name[32];
    hsize_t dims[2] = {(hsize_t)sp[s].n, SYN_LENGTH};
    snprintf(name, sizeof name, "%s_captions", SPLITS[s]);
    rc = h5io_write_plain(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, dims, sp[s].captions, path,
                          e);
    snprintf(name, sizeof name, "%s_image_idxs", SPLITS[s]);
    if (!rc)
      rc = h5io_write_plain(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, sp[s].image_idxs,
                            path, e);
  }
  return h5_end(&o, f, rc, e);
}

static int write_vocab_file(const char *path, const char *const *words, struct ct_err *e) {
  json_t *root = json_object(), *itw = json_array(), *wti = json_object();
  int rc = root && itw && wti ? CT_OK : err_set(e, CT_ERR_RUNTIME, "%s: out of memory", path);
  for (int i = 0; !rc && i < SYN_VOCAB; i++)
    if (json_array_append_new(itw, json_string(words[i])) ||
        json_object_set_new(wti, words[i], json_integer(i)))
      rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory", path);
  if (!rc &&
      (json_object_set(root, "idx_to_word", itw) || json_object_set(root, "word_to_idx", wti)))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory", path);
  struct out_file o;
  int fd;
  if (!rc && !(rc = out_begin(&o, path, &fd, e))) {
    FILE *fp = fdopen(fd, "w");
    int bad = !fp || json_dumpf(root, fp, 0) || fputc('\n', fp) == EOF;
    if ((fp ? fclose(fp) : close(fd)) || bad) {
      unlink(o.tmp);
      rc = err_set(e, CT_ERR_RUNTIME, "%s: write failed: %s", path, strerror(errno));
    } else {
      rc = out_commit(&o, e);
    }
  }
  json_decref(itw);
  json_decref(wti);
  json_decref(root);
  return rc;
}

/* One line per image as load_coco_data reads them; the .invalid domain is
 * reserved, so nothing ever tries to fetch these. */
static int write_urls_file(const char *path, int split, long n_images, struct ct_err *e) {
  struct out_file o;
  int fd;
  if (out_begin(&o, path, &fd, e)) return e->code;
  FILE *fp = fdopen(fd, "w");
  int bad = !fp;
  for (long i = 0; !bad && i < n_images; i++)
    bad = fprintf(fp, "http://synthetic.invalid/%s2014/COCO_%s2014_%012ld.jpg\n", SPLITS[split],
                  SPLITS[split], i) < 0;
  if ((fp ? fclose(fp) : close(fd)) || bad) {
    unlink(o.tmp);
    return err_set(e, CT_ERR_RUNTIME, "%s: write failed: %s", path, strerror(errno));
  }
  return out_commit(&o, e);
}

int prepare_synthetic_coco(const char *out_dir, int n_train_img, int n_val_img,
                           int captions_per_img, uint64_t seed, struct ct_err *e) {
  if (n_train_img < 1 || n_val_img < 1 || captions_per_img < 1 ||
      captions_per_img > COCO_SYN_MAX_CAPTIONS ||
      (long)n_train_img * captions_per_img > INT32_MAX ||
      (long)n_val_img * captions_per_img > INT32_MAX)
    return err_set(e, CT_ERR_USAGE,
                   "%s: synthetic-coco sizes train=%d val=%d captions=%d: images must be "
                   "positive and captions per image in 1..%d",
                   out_dir, n_train_img, n_val_img, captions_per_img, COCO_SYN_MAX_CAPTIONS);
  struct stat st;
  if (mkdir(out_dir, 0755) != 0 && (errno != EEXIST || stat(out_dir, &st) || !S_ISDIR(st.st_mode)))
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot create directory: %s", out_dir,
                   errno == EEXIST ? "not a directory" : strerror(errno));
  const uint64_t key = ops_mix64(seed ^ 0x53594e434f434f31ULL); /* "SYNCOCO1" */
  const char *words[SYN_VOCAB];
  syn_vocab(words);
  float *proj = malloc((size_t)SYN_DIM * N_LATENT * sizeof *proj);
  struct syn_split sp[2] = {{0}, {0}};
  int rc = proj ? CT_OK : err_set(e, CT_ERR_RUNTIME, "out of memory");
  /* The projection comes from its own counter, above both splits' images. */
  for (int k = 0; !rc && k < SYN_DIM * N_LATENT; k++)
    proj[k] = PROJ_SCALE * gauss(key, (uint64_t)1 << 42, (uint64_t)k);
  const long n_img[2] = {n_train_img, n_val_img};
  for (int s = 0; s < 2 && !rc; s++)
    rc = syn_generate(key, s, n_img[s], captions_per_img, proj, words, &sp[s], e);
  char path[PATH_MAX];
  for (int s = 0; s < 2 && !rc; s++) {
    rc = join(path, sizeof path, out_dir, FEATURE_FILES[0][s], e);
    if (!rc) rc = write_features_file(path, &sp[s], e);
    if (!rc) rc = join(path, sizeof path, out_dir, URL_FILES[s], e);
    if (!rc) rc = write_urls_file(path, s, n_img[s], e);
  }
  if (!rc) rc = join(path, sizeof path, out_dir, CAPTIONS_FILE, e);
  if (!rc) rc = write_captions_file(path, sp, e);
  if (!rc) rc = join(path, sizeof path, out_dir, VOCAB_FILE, e);
  if (!rc) rc = write_vocab_file(path, words, e);
  syn_free(&sp[0]);
  syn_free(&sp[1]);
  free(proj);
  return rc;
}
