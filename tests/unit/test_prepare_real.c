/* Imports the real CIFAR-10 JPEG copy when it is at hand (CTRAIN_DATA_DIR,
 * set by tests.cmake to ../shared/data); skips with 77 otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "testutil.h"

int main(void) {
  const char *dir = getenv("CTRAIN_DATA_DIR");
  char src[1024], out[] = "/tmp/ctrain-cifar-XXXXXX";
  if (!dir || snprintf(src, sizeof src, "%s/cifar10-jpeg.tar.gz", dir) >= (int)sizeof src ||
      access(src, R_OK) != 0) {
    printf("SKIP: cifar10-jpeg.tar.gz not found (set CTRAIN_DATA_DIR)\n");
    return 77;
  }
  int fd = mkstemp(out);
  CT_CHECK(fd >= 0);
  close(fd);
  struct ct_err e = {0};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = prepare_images(src, out, 5000, 0, &e);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  printf("prepare_images(%s): %.2f s\n", src, secs);
  if (rc) fprintf(stderr, "%s\n", e.msg);
  TU_CHECK(rc == 0);
  TU_CHECK(secs < 60.0);
  struct dataset_info info;
  TU_CHECK(dataset_read_info(out, &info, &e) == 0);
  TU_CHECK(info.n_train == 45000 && info.n_val == 5000 && info.n_test == 10000);
  TU_CHECK(info.num_classes == 10 && !strcmp(info.classes[0], "airplane") &&
           !strcmp(info.classes[9], "truck"));
  /* The JPEG copy's statistics sit next to the official ones. */
  const double mean[3] = {0.4914, 0.4822, 0.4465}, std[3] = {0.2470, 0.2435, 0.2616};
  for (int c = 0; c < 3; c++) {
    TU_CLOSE(info.mean[c], mean[c], 0, 0.005);
    TU_CLOSE(info.std[c], std[c], 0, 0.005);
  }
  struct image_split te;
  TU_CHECK(dataset_read_split(out, "test", 0, 1000, -1, &te, &e) == 0);
  for (int i = 0; i < te.n; i++)
    TU_CHECK(te.labels[i] == i);
  image_split_free(&te);
  remove(out);
  TU_DONE();
}
