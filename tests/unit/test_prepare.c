/* The importers on generated sources: synthetic determinism, a fake CIFAR-10
 * binary directory and archive, PNG/JPEG trees and archives, and bad inputs
 * whose messages must name the offending file. */
#include "data/dataset.h"
#include "data/prepare.h"
#include "data_fixtures.h"
#include "testutil.h"

static int names(const struct ct_err *e, const char *what) {
  int ok = strstr(e->msg, what) != NULL && !strchr(e->msg, '\n');
  if (!ok) fprintf(stderr, "message '%s' does not name '%s'\n", e->msg, what);
  return ok;
}

static struct image_split read_all(const char *path, const char *split) {
  struct image_split s;
  struct ct_err e;
  if (dataset_read_split(path, split, 0, 1, -1, &s, &e)) fprintf(stderr, "%s\n", e.msg);
  return s;
}

static int same_split(const struct image_split *a, const struct image_split *b) {
  return a->n == b->n && !memcmp(a->images, b->images, (size_t)a->n * DATASET_IMAGE_BYTES) &&
         !memcmp(a->labels, b->labels, (size_t)a->n * sizeof(int32_t));
}

static void test_synthetic(void) {
  struct ct_err e = {0};
  const char *a = fx_path("syn_a.h5"), *b = fx_path("syn_b.h5"), *c = fx_path("syn_c.h5");
  TU_CHECK(prepare_synthetic(a, 300, 50, 40, 7, &e) == 0);
  TU_CHECK(prepare_synthetic(b, 300, 50, 40, 7, &e) == 0);
  TU_CHECK(prepare_synthetic(c, 300, 50, 40, 8, &e) == 0);
  struct dataset_info info;
  TU_CHECK(dataset_read_info(a, &info, &e) == 0);
  TU_CHECK(info.n_train == 260 && info.n_val == 40 && info.n_test == 50);
  TU_CHECK(info.num_classes == 10 && !strcmp(info.classes[0], "circle"));
  for (int ch = 0; ch < 3; ch++)
    TU_CHECK(info.mean[ch] > 0.2 && info.mean[ch] < 0.8);
  for (int ch = 0; ch < 3; ch++)
    TU_CHECK(info.std[ch] > 0.1 && info.std[ch] < 0.5);
  const char *splits[] = {"train", "val", "test"};
  for (int s = 0; s < 3; s++) {
    struct image_split x = read_all(a, splits[s]), y = read_all(b, splits[s]);
    struct image_split z = read_all(c, splits[s]);
    TU_CHECK(same_split(&x, &y));
    TU_CHECK(!same_split(&x, &z));
    int seen[10] = {0};
    for (int i = 0; i < x.n; i++)
      seen[x.labels[i]]++;
    for (int k = 0; s == 0 && k < 10; k++)
      TU_CHECK(seen[k] > 5);
    image_split_free(&x);
    image_split_free(&y);
    image_split_free(&z);
  }
  /* Images are per-index functions of the seed: a bigger set extends a smaller one. */
  TU_CHECK(prepare_synthetic(b, 100, 20, 0, 7, &e) == 0);
  TU_CHECK(prepare_synthetic(c, 150, 30, 0, 7, &e) == 0);
  struct image_split x = read_all(b, "train"), y = read_all(c, "train");
  x.n = y.n = 100;
  TU_CHECK(same_split(&x, &y));
  image_split_free(&x);
  image_split_free(&y);
  x = read_all(b, "test");
  y = read_all(c, "test");
  y.n = 20;
  TU_CHECK(same_split(&x, &y));
  image_split_free(&x);
  image_split_free(&y);
  TU_CHECK(prepare_synthetic(a, 10, 5, 10, 1, &e) == CT_ERR_USAGE && names(&e, "--val 10"));
}

/* Fake CIFAR batch: record r of file f has label (f + r) % 10, pixels from both. */
static size_t fake_batch(int f, int records, uint8_t **out) {
  size_t n = (size_t)records * 3073;
  uint8_t *p = *out = malloc(n);
  for (int r = 0; r < records; r++) {
    p[(size_t)r * 3073] = (uint8_t)((f + r) % 10);
    for (int k = 0; k < 3072; k++)
      p[(size_t)r * 3073 + 1 + k] = (uint8_t)(f * 41 + r * 13 + k);
  }
  return n;
}

static const char *const batch_names[6] = {"data_batch_1.bin", "data_batch_2.bin",
                                           "data_batch_3.bin", "data_batch_4.bin",
                                           "data_batch_5.bin", "test_batch.bin"};

static void check_cifar_output(const char *out, const char *first_class) {
  struct dataset_info info;
  struct ct_err e;
  TU_CHECK(dataset_read_info(out, &info, &e) == 0);
  TU_CHECK(info.n_train == 15 && info.n_val == 0 && info.n_test == 2);
  TU_CHECK(!strcmp(info.classes[0], first_class));
  struct image_split tr = read_all(out, "train"), te = read_all(out, "test");
  for (int f = 0, i = 0; f < 5; f++)
    for (int r = 0; r < 3; r++, i++) {
      TU_CHECK(tr.labels[i] == (f + r) % 10);
      TU_CHECK(tr.images[(size_t)i * 3072 + 100] == (uint8_t)(f * 41 + r * 13 + 100));
    }
  TU_CHECK(te.n == 2 && te.labels[1] == 6 && te.images[3071] == (uint8_t)(5 * 41 + 3071));
  image_split_free(&tr);
  image_split_free(&te);
}

static void test_cifar10(void) {
  struct ct_err e = {0};
  struct fx_member m[8];
  uint8_t *data[6];
  size_t size[6];
  char rel[64];
  fx_mkdirs("cifar");
  m[0] = (struct fx_member){"cifar-10-batches-bin/", NULL, 0};
  for (int f = 0; f < 6; f++) {
    size[f] = fake_batch(f, f < 5 ? 3 : 2, &data[f]);
    snprintf(rel, sizeof rel, "cifar/%s", batch_names[f]);
    fx_write(rel, data[f], size[f]);
  }
  const char *out = fx_path("cifar.h5");
  TU_CHECK(prepare_cifar10(fx_path("cifar"), out, 0, 1, &e) == 0);
  check_cifar_output(out, "airplane");

  /* The official archive layout, with the names file. */
  static char member_names[6][64];
  for (int f = 0; f < 6; f++) {
    snprintf(member_names[f], sizeof member_names[f], "cifar-10-batches-bin/%s", batch_names[f]);
    m[1 + f] = (struct fx_member){member_names[f], data[f], size[f]};
  }
  const char *meta = "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n";
  m[7] = (struct fx_member){"cifar-10-batches-bin/batches.meta.txt", (const uint8_t *)meta,
                            strlen(meta)};
  fx_targz("cifar.tar.gz", m, 8);
  TU_CHECK(prepare_cifar10(fx_path("cifar.tar.gz"), out, 0, 1, &e) == 0);
  check_cifar_output(out, "zero");
  TU_CHECK(prepare_cifar10(fx_path("cifar.tar.gz"), out, 5, 1, &e) == 0);
  struct dataset_info info;
  TU_CHECK(dataset_read_info(out, &info, &e) == 0 && info.n_train == 10 && info.n_val == 5);

  /* Bad inputs: each message names the file. */
  const char *missing = fx_path("no-such-cifar");
  TU_CHECK(prepare_cifar10(missing, out, 0, 1, &e) == CT_ERR_RUNTIME && names(&e, missing));
  fx_write("cifar/data_batch_3.bin", data[2], size[2] - 100);
  TU_CHECK(prepare_cifar10(fx_path("cifar"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "cifar/data_batch_3.bin") && names(&e, "3073"));
  data[2][3073] = 10;
  fx_write("cifar/data_batch_3.bin", data[2], size[2]);
  TU_CHECK(prepare_cifar10(fx_path("cifar"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "data_batch_3.bin: record 1 has label 10"));
  remove(fx_path("cifar/test_batch.bin"));
  TU_CHECK(prepare_cifar10(fx_path("cifar"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "cifar/test_batch.bin"));
  fx_targz("half.tar.gz", m, 3);
  TU_CHECK(prepare_cifar10(fx_path("half.tar.gz"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "half.tar.gz") && names(&e, "data_batch_3.bin"));
  fx_write("junk.tar.gz", "this is not a tar archive at all", 32);
  TU_CHECK(prepare_cifar10(fx_path("junk.tar.gz"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "junk.tar.gz"));
  data[2][3073] = 1;
  fx_write("cifar/data_batch_3.bin", data[2], size[2]);
  fx_write("cifar/test_batch.bin", data[5], size[5]);
  const char *unwritable = fx_path("missing-dir/out.h5");
  TU_CHECK(prepare_cifar10(fx_path("cifar"), unwritable, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, unwritable));
  for (int f = 0; f < 6; f++)
    free(data[f]);
}

/* A smooth, distinct pattern per file, so JPEG stays close to it. */
static void pattern(uint8_t *hwc, int comps, int seed) {
  for (int p = 0; p < 1024; p++)
    for (int c = 0; c < comps; c++)
      hwc[p * comps + c] = (uint8_t)(seed * 10 + p / 32 * 2 + p % 32 + c * 40);
}

struct tree_file {
  const char *rel; /* under the tree root */
  int kind;        /* 0 RGB PNG, 1 gray PNG, 2 RGB JPEG, 3 gray JPEG */
  int seed;
};

static const struct tree_file tree[] = {{"train/dog/b.png", 0, 1}, {"train/dog/a.jpg", 2, 2},
                                        {"train/cat/z.png", 1, 3}, {"train/cat/y.JPEG", 3, 4},
                                        {"test/dog/t.png", 0, 5},  {"test/cat/u.png", 0, 6}};
enum { TREE_FILES = sizeof tree / sizeof *tree };

static size_t encode(const struct tree_file *t, uint8_t **out) {
  uint8_t hwc[3072];
  int comps = t->kind & 1 ? 1 : 3;
  pattern(hwc, comps, t->seed);
  return t->kind < 2 ? fx_png(hwc, 32, 32, comps, out) : fx_jpeg(hwc, 32, 32, comps, 100, out);
}

/* Pixel (c, y, x) of tree file t as the importer should see it. */
static int expect(const struct tree_file *t, int c, int p) {
  uint8_t hwc[3072];
  int comps = t->kind & 1 ? 1 : 3;
  pattern(hwc, comps, t->seed);
  return hwc[p * comps + (comps == 3 ? c : 0)];
}

static void check_tree(const char *out) {
  struct dataset_info info;
  struct ct_err e;
  TU_CHECK(dataset_read_info(out, &info, &e) == 0);
  TU_CHECK(info.num_classes == 2 && !strcmp(info.classes[0], "cat"));
  TU_CHECK(info.n_train == 4 && info.n_test == 2);
  /* Sorted: cat/y.JPEG, cat/z.png, dog/a.jpg, dog/b.png; then test cat/u, dog/t. */
  const int order[6] = {3, 2, 1, 0, 5, 4}, label[6] = {0, 0, 1, 1, 0, 1};
  struct image_split tr = read_all(out, "train"), te = read_all(out, "test");
  for (int i = 0; i < 6; i++) {
    const struct image_split *s = i < 4 ? &tr : &te;
    int row = i < 4 ? i : i - 4;
    const struct tree_file *t = &tree[order[i]];
    TU_CHECK(s->labels[row] == label[i]);
    int tol = t->kind >= 2 ? 12 : 0, worst = 0;
    for (int c = 0; c < 3; c++)
      for (int p = 0; p < 1024; p++) {
        int d = abs(s->images[(size_t)row * 3072 + c * 1024 + p] - expect(t, c, p));
        worst = d > worst ? d : worst;
      }
    if (worst > tol) fprintf(stderr, "%s: max pixel error %d > %d\n", t->rel, worst, tol);
    TU_CHECK(worst <= tol);
    if (t->kind & 1)
      for (int p = 0; p < 1024; p++)
        TU_CHECK(s->images[(size_t)row * 3072 + p] == s->images[(size_t)row * 3072 + 2048 + p]);
  }
  image_split_free(&tr);
  image_split_free(&te);
}

static void test_images(void) {
  struct ct_err e = {0};
  struct fx_member m[TREE_FILES + 1];
  uint8_t *data[TREE_FILES];
  size_t size[TREE_FILES];
  static char rel[TREE_FILES][96], member[TREE_FILES][96];
  m[TREE_FILES] = (struct fx_member){"wrap/README.txt", (const uint8_t *)"hi\n", 3};
  for (int i = 0; i < TREE_FILES; i++) {
    size[i] = encode(&tree[i], &data[i]);
    snprintf(rel[i], sizeof rel[i], "tree/%s", tree[i].rel);
    char dir[96];
    memcpy(dir, rel[i], sizeof dir);
    *strrchr(dir, '/') = 0;
    fx_mkdirs(dir);
    fx_write(rel[i], data[i], size[i]);
    snprintf(member[i], sizeof member[i], "wrap/%s", tree[i].rel);
    m[i] = (struct fx_member){member[i], data[i], size[i]};
  }
  const char *out = fx_path("tree.h5");
  TU_CHECK(prepare_images(fx_path("tree"), out, 0, 1, &e) == 0);
  check_tree(out);
  fx_targz("tree.tar.gz", m, TREE_FILES + 1);
  TU_CHECK(prepare_images(fx_path("tree.tar.gz"), out, 0, 1, &e) == 0);
  check_tree(out);
  TU_CHECK(prepare_images(fx_path("tree.tar.gz"), out, 1, 1, &e) == 0);
  struct dataset_info info;
  TU_CHECK(dataset_read_info(out, &info, &e) == 0 && info.n_train == 3 && info.n_val == 1);

  /* Bad inputs. */
  const char *missing = fx_path("no-such-tree");
  TU_CHECK(prepare_images(missing, out, 0, 1, &e) == CT_ERR_RUNTIME && names(&e, missing));
  uint8_t big[48 * 48 * 3] = {0}, *enc;
  size_t n = fx_png(big, 48, 48, 3, &enc);
  fx_write("tree/train/cat/w.png", enc, n);
  free(enc);
  TU_CHECK(prepare_images(fx_path("tree"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "tree/train/cat/w.png") && names(&e, "48x48"));
  n = fx_jpeg(big, 48, 16, 3, 90, &enc);
  fx_write("tree/train/cat/w.png", enc, n);
  TU_CHECK(prepare_images(fx_path("tree"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "tree/train/cat/w.png") && names(&e, "48x16"));
  free(enc);
  fx_write("tree/train/cat/w.png", "garbage!", 8);
  TU_CHECK(prepare_images(fx_path("tree"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "tree/train/cat/w.png"));
  remove(fx_path("tree/train/cat/w.png"));
  fx_write("tree/train/dog/a.jpg", data[1], size[1] / 2);
  TU_CHECK(prepare_images(fx_path("tree"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "tree/train/dog/a.jpg"));
  fx_write("tree/train/dog/b.png", data[0], size[0] / 2);
  m[0].size = size[0] / 2;
  fx_targz("cut.tar.gz", m, TREE_FILES);
  TU_CHECK(prepare_images(fx_path("cut.tar.gz"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "cut.tar.gz:wrap/train/dog/b.png"));
  fx_write("tree/train/dog/a.jpg", data[1], size[1]);
  fx_write("tree/train/dog/b.png", data[0], size[0]);
  fx_mkdirs("tree/test/bird");
  fx_write("tree/test/bird/q.png", data[5], size[5]);
  TU_CHECK(prepare_images(fx_path("tree"), out, 0, 1, &e) == CT_ERR_RUNTIME);
  TU_CHECK(names(&e, "bird"));
  for (int i = 0; i < TREE_FILES; i++)
    free(data[i]);
}

int main(void) {
  test_synthetic();
  test_cifar10();
  test_images();
  fx_cleanup();
  TU_DONE();
}
