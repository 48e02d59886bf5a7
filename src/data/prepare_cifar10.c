/* The official CIFAR-10 binary release: each record is one label byte and
 * 3072 pixel bytes (R plane, G plane, B plane, row-major): already CHW. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "data/tar.h"

enum { RECORD = 1 + DATASET_IMAGE_BYTES, NFILES = 6, NCLASSES = 10 };

static const char *const file_names[NFILES] = {"data_batch_1.bin", "data_batch_2.bin",
                                               "data_batch_3.bin", "data_batch_4.bin",
                                               "data_batch_5.bin", "test_batch.bin"};

struct cifar_files {
  const char *src;
  uint8_t *data[NFILES + 1]; /* the batches, then batches.meta.txt */
  size_t size[NFILES + 1];
  char where[NFILES + 1][4200]; /* how messages name each file */
};

static int slot_of(const char *name) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  for (int i = 0; i < NFILES; i++)
    if (!strcmp(base, file_names[i])) return i;
  return strcmp(base, "batches.meta.txt") ? -1 : NFILES;
}

static int on_entry(void *ctx, const char *name, const uint8_t *data, size_t size,
                    struct ct_err *e) {
  struct cifar_files *cf = ctx;
  int i = data ? slot_of(name) : -1;
  if (i < 0 || cf->data[i]) return CT_OK;
  if (!(cf->data[i] = malloc(size ? size : 1)))
    return err_set(e, CT_ERR_RUNTIME, "%s: out of memory reading %s", cf->src, name);
  memcpy(cf->data[i], data, size);
  cf->size[i] = size;
  snprintf(cf->where[i], sizeof cf->where[i], "%s:%s", cf->src, name);
  return CT_OK;
}

static int load_dir(struct cifar_files *cf, struct ct_err *e) {
  char dir[4096], path[4200];
  struct stat st;
  snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", cf->src);
  snprintf(path, sizeof path, "%s/%s", cf->src, file_names[0]);
  if (stat(path, &st) != 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
    ; /* the extracted tarball: batches live one level down */
  else
    snprintf(dir, sizeof dir, "%s", cf->src);
  for (int i = 0; i <= NFILES; i++) {
    snprintf(cf->where[i], sizeof cf->where[i], "%s/%s", dir,
             i < NFILES ? file_names[i] : "batches.meta.txt");
    if (i == NFILES && stat(cf->where[i], &st) != 0) break; /* names are optional */
    int rc = prepare_read_file(cf->where[i], &cf->data[i], &cf->size[i], e);
    if (rc) return rc;
  }
  return CT_OK;
}

/* batches.meta.txt lists the names one per line in label order. */
static void parse_names(const struct cifar_files *cf, char names[NCLASSES][DATASET_NAME_LEN]) {
  static const char *const fallback[NCLASSES] = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  for (int c = 0; c < NCLASSES; c++)
    snprintf(names[c], DATASET_NAME_LEN, "%s", fallback[c]);
  const char *p = (const char *)cf->data[NFILES], *end = p + cf->size[NFILES];
  char found[NCLASSES][DATASET_NAME_LEN];
  int n = 0;
  while (p && p < end && n < NCLASSES) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end, *b = p;
    while (le > b && (le[-1] == '\r' || le[-1] == ' '))
      le--;
    if (le > b && le - b < DATASET_NAME_LEN)
      snprintf(found[n++], DATASET_NAME_LEN, "%.*s", (int)(le - b), b);
    p = nl ? nl + 1 : end;
  }
  if (n == NCLASSES) memcpy(names, found, sizeof found);
}

static int to_split(const struct cifar_files *cf, int first, int last, struct image_split *s,
                    struct ct_err *e) {
  long n = 0;
  for (int i = first; i <= last; i++) {
    if (cf->size[i] == 0 || cf->size[i] % RECORD)
      return err_set(e, CT_ERR_RUNTIME,
                     "%s: size %zu is not a positive multiple of %d (truncated CIFAR-10 batch?)",
                     cf->where[i], cf->size[i], RECORD);
    n += (long)(cf->size[i] / RECORD);
  }
  int rc = image_split_alloc(s, n, e);
  long k = 0;
  for (int i = first; i <= last && !rc; i++)
    for (size_t r = 0; r < cf->size[i] / RECORD; r++, k++) {
      const uint8_t *rec = cf->data[i] + r * RECORD;
      if (rec[0] >= NCLASSES) {
        image_split_free(s);
        return err_set(e, CT_ERR_RUNTIME, "%s: record %zu has label %d, outside [0, %d)",
                       cf->where[i], r, rec[0], NCLASSES);
      }
      s->labels[k] = rec[0];
      memcpy(s->images + (size_t)k * DATASET_IMAGE_BYTES, rec + 1, DATASET_IMAGE_BYTES);
    }
  return rc;
}

int prepare_cifar10(const char *src, const char *out, int val, uint64_t seed, struct ct_err *e) {
  struct cifar_files cf = {.src = src};
  struct image_split train = {0}, test = {0};
  struct stat st;
  int rc = CT_OK;
  if (stat(src, &st) != 0)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: no such file or directory (CIFAR-10 source)", src);
  else if (S_ISDIR(st.st_mode))
    rc = load_dir(&cf, e);
  else
    rc = tar_walk(src, on_entry, &cf, e);
  for (int i = 0; i < NFILES && !rc; i++)
    if (!cf.data[i]) rc = err_set(e, CT_ERR_RUNTIME, "%s: archive has no %s", src, file_names[i]);
  char names[NCLASSES][DATASET_NAME_LEN];
  const char *ptrs[NCLASSES];
  if (!rc) {
    parse_names(&cf, names);
    for (int c = 0; c < NCLASSES; c++)
      ptrs[c] = names[c];
    rc = to_split(&cf, 0, NFILES - 2, &train, e);
  }
  if (!rc) rc = to_split(&cf, NFILES - 1, NFILES - 1, &test, e);
  for (int i = 0; i <= NFILES; i++)
    free(cf.data[i]);
  if (rc) {
    image_split_free(&train);
    image_split_free(&test);
    return rc;
  }
  return prepare_finish(out, NCLASSES, ptrs, &train, &test, val, seed, e);
}
