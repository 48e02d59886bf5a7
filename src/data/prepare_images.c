/* Image-tree importer: SRC/{train,test}/<class>/<file>.{jpg,jpeg,png}, from a
 * directory or a .tar.gz. Entries are collected first, then sorted, so that
 * labels and row order do not depend on directory or archive order. */
#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <dirent.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "data/tar.h"

enum { SIDE = DATASET_SIDE, PLANE = DATASET_SIDE * DATASET_SIDE };

struct entry {
  int split; /* 0 train, 1 test */
  char *cls, *file;
  char *where;   /* the name errors use: a path, or archive:member */
  uint8_t *data; /* archive members are held in memory; files are read when decoded */
  size_t size;
};

struct tree {
  const char *src;
  struct entry *v;
  size_t n, cap;
  char **classes[2]; /* class directory names seen per split, with duplicates */
  size_t ncls[2], capcls[2];
  char *wrapper; /* the archive's single top-level directory, if any */
};

static int oom(const struct tree *t, struct ct_err *e) {
  return err_set(e, CT_ERR_RUNTIME, "%s: out of memory collecting images", t->src);
}

static int add_class(struct tree *t, int split, const char *name, struct ct_err *e) {
  if (t->ncls[split] == t->capcls[split]) {
    size_t cap = t->capcls[split] ? 2 * t->capcls[split] : 16;
    char **p = realloc(t->classes[split], cap * sizeof *p);
    if (!p) return oom(t, e);
    t->classes[split] = p;
    t->capcls[split] = cap;
  }
  if (!(t->classes[split][t->ncls[split]] = strdup(name))) return oom(t, e);
  t->ncls[split]++;
  return CT_OK;
}

static int is_image_name(const char *f) {
  const char *dot = strrchr(f, '.');
  return f[0] != '.' && dot &&
         (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int add_entry(struct tree *t, int split, const char *cls, const char *file,
                     const char *where, const uint8_t *data, size_t size, struct ct_err *e) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 1024;
    struct entry *p = realloc(t->v, cap * sizeof *p);
    if (!p) return oom(t, e);
    t->v = p;
    t->cap = cap;
  }
  struct entry *en = &t->v[t->n];
  memset(en, 0, sizeof *en);
  en->split = split;
  en->cls = strdup(cls);
  en->file = strdup(file);
  en->where = strdup(where);
  if (data && (en->data = malloc(size ? size : 1))) memcpy(en->data, data, size);
  en->size = size;
  t->n++;
  if (!en->cls || !en->file || !en->where || (data && !en->data)) return oom(t, e);
  return add_class(t, split, cls, e);
}

static int split_of(const char *name) {
  return !strcmp(name, "train") ? 0 : !strcmp(name, "test") ? 1 : -1;
}

/* Archive member: [wrapper/]{train,test}/<class>[/<file>]. */
static int on_member(void *ctx, const char *name, const uint8_t *data, size_t size,
                     struct ct_err *e) {
  struct tree *t = ctx;
  char buf[1024], *comp[5];
  int nc = 0;
  if (snprintf(buf, sizeof buf, "%s", name) >= (int)sizeof buf) return CT_OK;
  for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (!strcmp(c, ".")) continue;
    if (nc == 5) return CT_OK;
    comp[nc++] = c;
  }
  int off = 0;
  if (nc > 1 && split_of(comp[0]) < 0 && split_of(comp[1]) >= 0) {
    if (!t->wrapper && !(t->wrapper = strdup(comp[0]))) return oom(t, e);
    if (strcmp(t->wrapper, comp[0]))
      return err_set(e, CT_ERR_RUNTIME,
                     "%s: archive has train/test trees under both '%s/' and '%s/'", t->src,
                     t->wrapper, comp[0]);
    off = 1;
  }
  int split = nc > off + 1 ? split_of(comp[off]) : -1;
  if (split < 0 || comp[off + 1][0] == '.') return CT_OK;
  if (!data && nc - off == 2) return add_class(t, split, comp[off + 1], e);
  if (!data || nc - off != 3 || !is_image_name(comp[off + 2])) return CT_OK;
  char where[2048];
  snprintf(where, sizeof where, "%s:%s", t->src, name);
  return add_entry(t, split, comp[off + 1], comp[off + 2], where, data, size, e);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Walks <src>[/<wrap>]/{train,test}/<class>/. */
static int walk_split(struct tree *t, const char *wrap, int split, struct ct_err *e) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s%s%s/%s", t->src, wrap[0] ? "/" : "", wrap,
           split ? "test" : "train");
  DIR *d = opendir(dir);
  if (!d)
    return err_set(e, CT_ERR_RUNTIME, "%s: missing directory (want %s/{train,test}/<class>/)", dir,
                   t->src);
  int rc = CT_OK;
  for (struct dirent *de; !rc && (de = readdir(d));) {
    char cdir[4352];
    if (de->d_name[0] == '.') continue;
    snprintf(cdir, sizeof cdir, "%s/%s", dir, de->d_name);
    if (!is_dir(cdir)) continue;
    rc = add_class(t, split, de->d_name, e);
    DIR *cd = rc ? NULL : opendir(cdir);
    if (!rc && !cd) rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot open directory", cdir);
    for (struct dirent *fe; !rc && cd && (fe = readdir(cd));) {
      char path[4608];
      if (!is_image_name(fe->d_name)) continue;
      snprintf(path, sizeof path, "%s/%s", cdir, fe->d_name);
      rc = add_entry(t, split, de->d_name, fe->d_name, path, NULL, 0, e);
    }
    if (cd) closedir(cd);
  }
  closedir(d);
  return rc;
}

static int collect_dir(struct tree *t, struct ct_err *e) {
  char wrap[256] = "", probe[4400];
  snprintf(probe, sizeof probe, "%s/train", t->src);
  if (!is_dir(probe)) {
    /* Accept one wrapper directory, as for archives. */
    DIR *d = opendir(t->src);
    int subdirs = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
      snprintf(probe, sizeof probe, "%s/%s", t->src, de->d_name);
      if (de->d_name[0] != '.' && is_dir(probe) && subdirs++ == 0)
        snprintf(wrap, sizeof wrap, "%s", de->d_name);
    }
    if (d) closedir(d);
    if (subdirs != 1) wrap[0] = 0;
  }
  int rc = walk_split(t, wrap, 0, e);
  return rc ? rc : walk_split(t, wrap, 1, e);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b) {
  const struct entry *x = a, *y = b;
  if (x->split != y->split) return x->split - y->split;
  int c = strcmp(x->cls, y->cls);
  return c ? c : strcmp(x->file, y->file);
}

/* Sorts and deduplicates the class names of one split in place. */
static size_t unique_classes(char **v, size_t n) {
  qsort(v, n, sizeof *v, cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (k && !strcmp(v[k - 1], v[i])) {
      free(v[i]);
      continue;
    }
    v[k++] = v[i];
  }
  return k;
}

struct jpeg_fail {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
};

static void jpeg_on_error(j_common_ptr c) {
  struct jpeg_fail *f = (struct jpeg_fail *)c->err;
  c->err->format_message(c, f->msg);
  longjmp(f->jump, 1);
}

/* libjpeg's warnings (level -1) mean corrupt data it papered over, e.g. a
 * truncated file: keep the first one, and fail the image on it. */
static void jpeg_on_message(j_common_ptr c, int level) {
  struct jpeg_fail *f = (struct jpeg_fail *)c->err;
  if (level < 0 && c->err->num_warnings++ == 0) c->err->format_message(c, f->msg);
}

static int size_error(const char *where, unsigned w, unsigned h, struct ct_err *e) {
  return err_set(e, CT_ERR_RUNTIME, "%s: image is %ux%u, want %dx%d", where, w, h, SIDE, SIDE);
}

static int decode_jpeg(const char *where, const uint8_t *data, size_t size, uint8_t *chw,
                       struct ct_err *e) {
  struct jpeg_decompress_struct ci;
  struct jpeg_fail f;
  ci.err = jpeg_std_error(&f.mgr);
  f.mgr.error_exit = jpeg_on_error;
  f.mgr.emit_message = jpeg_on_message;
  f.msg[0] = 0;
  if (setjmp(f.jump)) {
    jpeg_destroy_decompress(&ci);
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot decode JPEG: %s", where, f.msg);
  }
  jpeg_create_decompress(&ci);
  jpeg_mem_src(&ci, data, (unsigned long)size);
  jpeg_read_header(&ci, TRUE);
  int gray = ci.num_components == 1;
  if (ci.image_width != SIDE || ci.image_height != SIDE || (!gray && ci.num_components != 3)) {
    unsigned w = ci.image_width, h = ci.image_height;
    int comps = ci.num_components;
    jpeg_destroy_decompress(&ci);
    if (w != SIDE || h != SIDE) return size_error(where, w, h, e);
    return err_set(e, CT_ERR_RUNTIME, "%s: JPEG has %d colour components, want 1 or 3", where,
                   comps);
  }
  ci.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&ci);
  JSAMPLE row[SIDE * 3];
  while (ci.output_scanline < SIDE) {
    JSAMPROW rp = row;
    int y = (int)ci.output_scanline;
    jpeg_read_scanlines(&ci, &rp, 1);
    for (int x = 0; x < SIDE; x++)
      for (int c = 0; c < 3; c++)
        chw[c * PLANE + y * SIDE + x] = row[gray ? x : 3 * x + c];
  }
  jpeg_finish_decompress(&ci);
  long warnings = ci.err->num_warnings;
  jpeg_destroy_decompress(&ci);
  if (warnings) return err_set(e, CT_ERR_RUNTIME, "%s: corrupt JPEG data: %s", where, f.msg);
  return CT_OK;
}

static int decode_png(const char *where, const uint8_t *data, size_t size, uint8_t *chw,
                      struct ct_err *e) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, size))
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot decode PNG: %s", where, img.message);
  if (img.width != SIDE || img.height != SIDE) {
    unsigned w = img.width, h = img.height;
    png_image_free(&img);
    return size_error(where, w, h, e);
  }
  /* RGB output replicates gray; alpha is composited onto the zeroed buffer. */
  uint8_t hwc[PLANE * 3] = {0};
  img.format = PNG_FORMAT_RGB;
  if (!png_image_finish_read(&img, NULL, hwc, 0, NULL))
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot decode PNG: %s", where, img.message);
  for (int p = 0; p < PLANE; p++)
    for (int c = 0; c < 3; c++)
      chw[c * PLANE + p] = hwc[3 * p + c];
  return CT_OK;
}

static int decode_entry(struct entry *en, uint8_t *chw, struct ct_err *e) {
  uint8_t *owned = NULL;
  const uint8_t *d = en->data;
  size_t n = en->size;
  if (!d) {
    int rc = prepare_read_file(en->where, &owned, &n, e);
    if (rc) return rc;
    d = owned;
  }
  int rc;
  if (n >= 8 && !png_sig_cmp(d, 0, 8))
    rc = decode_png(en->where, d, n, chw, e);
  else if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
    rc = decode_jpeg(en->where, d, n, chw, e);
  else
    rc = err_set(e, CT_ERR_RUNTIME, "%s: not a JPEG or PNG file", en->where);
  free(owned);
  return rc;
}

/* Turns the collected entries into train/test splits. */
static int build(struct tree *t, struct image_split *sp, char ***names, size_t *nnames,
                 struct ct_err *e) {
  size_t ntrain = unique_classes(t->classes[0], t->ncls[0]);
  size_t ntest = unique_classes(t->classes[1], t->ncls[1]);
  t->ncls[0] = ntrain;
  t->ncls[1] = ntest;
  *names = t->classes[0];
  *nnames = ntrain;
  if (ntrain == 0)
    return err_set(e, CT_ERR_RUNTIME, "%s: no class directories under train/", t->src);
  if (ntrain > DATASET_MAX_CLASSES)
    return err_set(e, CT_ERR_RUNTIME, "%s: %zu classes under train/, at most %d supported", t->src,
                   ntrain, DATASET_MAX_CLASSES);
  for (size_t i = 0; i < ntrain; i++)
    if (strlen(t->classes[0][i]) >= DATASET_NAME_LEN)
      return err_set(e, CT_ERR_RUNTIME, "%s: class name '%s' is longer than %d characters", t->src,
                     t->classes[0][i], DATASET_NAME_LEN - 1);
  for (size_t i = 0; i < ntest; i++)
    if (!bsearch(&t->classes[1][i], t->classes[0], ntrain, sizeof(char *), cmp_str))
      return err_set(e, CT_ERR_RUNTIME, "%s: test class '%s' has no train/ directory", t->src,
                     t->classes[1][i]);
  qsort(t->v, t->n, sizeof *t->v, cmp_entry);
  long count[2] = {0, 0};
  for (size_t i = 0; i < t->n; i++)
    count[t->v[i].split]++;
  int rc = image_split_alloc(&sp[0], count[0], e);
  if (!rc) rc = image_split_alloc(&sp[1], count[1], e);
  long k[2] = {0, 0};
  for (size_t i = 0; i < t->n && !rc; i++) {
    struct entry *en = &t->v[i];
    struct image_split *s = &sp[en->split];
    char **hit = bsearch(&en->cls, t->classes[0], ntrain, sizeof(char *), cmp_str);
    s->labels[k[en->split]] = (int32_t)(hit - t->classes[0]);
    rc = decode_entry(en, s->images + (size_t)k[en->split]++ * DATASET_IMAGE_BYTES, e);
    free(en->data);
    en->data = NULL;
  }
  return rc;
}

static void tree_free(struct tree *t) {
  for (size_t i = 0; i < t->n; i++) {
    free(t->v[i].cls);
    free(t->v[i].file);
    free(t->v[i].where);
    free(t->v[i].data);
  }
  free(t->v);
  for (int s = 0; s < 2; s++) {
    for (size_t i = 0; i < t->ncls[s]; i++)
      free(t->classes[s][i]);
    free(t->classes[s]);
  }
  free(t->wrapper);
}

int prepare_images(const char *src, const char *out, int val, uint64_t seed, struct ct_err *e) {
  struct tree t = {.src = src};
  struct image_split sp[2] = {{0}, {0}};
  char **names = NULL;
  size_t nnames = 0;
  struct stat st;
  int rc;
  if (stat(src, &st) != 0)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: no such file or directory (image source)", src);
  else
    rc = S_ISDIR(st.st_mode) ? collect_dir(&t, e) : tar_walk(src, on_member, &t, e);
  if (!rc) rc = build(&t, sp, &names, &nnames, e);
  if (!rc)
    rc = prepare_finish(out, (int)nnames, (const char *const *)names, &sp[0], &sp[1], val, seed, e);
  image_split_free(&sp[0]);
  image_split_free(&sp[1]);
  tree_free(&t);
  return rc;
}
