#include "data/prepare.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

int prepare_read_file(const char *path, uint8_t **data, size_t *size, struct ct_err *e) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return err_set(e, CT_ERR_RUNTIME, "%s: %s", path, strerror(errno));
  int rc = CT_OK;
  long len = -1;
  if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
  if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot determine the file size", path);
  } else if (!(*data = malloc(len > 0 ? (size_t)len : 1))) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: out of memory (%ld bytes)", path, len);
  } else if (fread(*data, 1, (size_t)len, f) != (size_t)len) {
    rc = err_set(e, CT_ERR_RUNTIME, "%s: read error", path);
    free(*data);
    *data = NULL;
  } else {
    *size = (size_t)len;
  }
  fclose(f);
  return rc;
}

int prepare_finish(const char *out, int num_classes, const char *const *classes,
                   struct image_split *train, struct image_split *test, int val, uint64_t seed,
                   struct ct_err *e) {
  struct image_split v = {0};
  int rc = CT_OK;
  if (train->n < 1)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: the source has no training images", out);
  else if (val < 0 || val >= train->n)
    rc = err_set(e, CT_ERR_USAGE, "%s: --val %d must be in [0, %d) (the training set size)", out,
                 val, train->n);
  if (!rc) rc = dataset_split_val(train, val, seed, &v, e);
  if (!rc) rc = dataset_write(out, num_classes, classes, train, &v, test, e);
  image_split_free(&v);
  image_split_free(train);
  image_split_free(test);
  return rc;
}
