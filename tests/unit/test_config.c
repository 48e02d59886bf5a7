/* test_config — the INI configuration: parsing a sample file, every kind of error
 * (with file, line and suggestion in the message), --set overrides, booleans and
 * augment lists, the write -> load round trip, and config_validate. */
#include "config/config.h"
#include "core/error.h"
#include "tests/testutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/ctrain_test_config_XXXXXX";

/* Writes `text` to tmp_dir/name and returns the path (valid until the next call). */
static const char *write_file(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
  return path;
}

static int contains(const char *haystack, const char *needle) {
  if (strstr(haystack, needle)) return 1;
  fprintf(stderr, "  message '%s'\n  lacks '%s'\n", haystack, needle);
  return 0;
}

/* Loads `text` as file `name` into a default config and expects an error whose message
 * holds each of the NULL-terminated fragments. */
static void expect_load_error(const char *name, const char *text, ...) {
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  const char *path = write_file(name, text);
  TU_CHECK(config_load_file(&c, path, &e) == CT_ERR_USAGE);
  TU_CHECK(e.code == CT_ERR_USAGE);
  TU_CHECK(!strchr(e.msg, '\n'));
  TU_CHECK(contains(e.msg, path));
  va_list ap;
  va_start(ap, text);
  for (const char *frag; (frag = va_arg(ap, const char *));)
    TU_CHECK(contains(e.msg, frag));
  va_end(ap);
}

static void expect_set_error(const char *assignment, const char *frag1, const char *frag2) {
  struct config c, before;
  struct ct_err e = {0};
  config_defaults(&c);
  before = c;
  TU_CHECK(config_set(&c, assignment, &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, "--set"));
  TU_CHECK(contains(e.msg, frag1));
  if (frag2) TU_CHECK(contains(e.msg, frag2));
  TU_CHECK(config_diff(&c, &before, NULL, 0) == 0);
}

static void test_defaults(void) {
  struct config c;
  config_defaults(&c);
  TU_CHECK(strcmp(c.model.name, "") == 0);
  TU_CHECK(c.model.num_classes == 10 && c.model.sync_bn == 1 && c.model.batchnorm == 0);
  TU_CHECK(c.model.patch == 8 && c.model.dim == 128 && c.model.depth == 6);
  TU_CHECK(c.model.heads == 4 && c.model.ffn_dim == 256 && c.model.max_length == 17);
  TU_CHECK(c.model.dropout == 0.1);
  TU_CHECK(strcmp(c.data.path, "") == 0 && c.data.val_size == 5000 && c.data.shuffle == 1);
  TU_CHECK(c.data.augment == 0 && c.data.normalize == 1 && c.data.crop_pad == 4);
  TU_CHECK(c.data.rotate_deg == 5 && c.data.cutout_size == 16 && c.data.cutout_p == 0.5);
  TU_CHECK(c.train.epochs == 1 && c.train.batch_size == 128);
  TU_CHECK(strcmp(c.train.optimizer, "adam") == 0 && c.train.lr == 1e-3);
  TU_CHECK(c.train.weight_decay == 0 && c.train.momentum == 0.9);
  TU_CHECK(c.train.beta1 == 0.9 && c.train.beta2 == 0.999 && c.train.eps == 1e-8);
  TU_CHECK(strcmp(c.train.schedule, "constant") == 0 && c.train.max_lr == 0);
  TU_CHECK(c.train.pct_start == 0.3 && c.train.div_factor == 25);
  TU_CHECK(c.train.final_div_factor == 1e4 && strcmp(c.train.anneal, "cos") == 0);
  TU_CHECK(c.train.base_momentum == 0.85 && c.train.max_momentum == 0.95);
  TU_CHECK(c.train.cycle_momentum == 1 && c.train.eta_min == 0 && c.train.warmup_steps == 0);
  TU_CHECK(c.train.max_steps == -1 && c.train.seed == 42);
  TU_CHECK(c.train.label_smoothing == 0 && c.train.grad_clip == 0);
  TU_CHECK(strcmp(c.run.dir, "runs/default") == 0 && strcmp(c.run.device, "auto") == 0);
  TU_CHECK(c.run.threads == 0 && c.run.log_every == 50 && c.run.checkpoint_every == 0);
  TU_CHECK(c.run.keep == 3 && strcmp(c.run.resume, "none") == 0);
  TU_CHECK(c.run.eval_every_epoch == 1 && strcmp(c.source, "") == 0);
}

static void test_sample_file(void) {
  const char *text = "\xEF\xBB\xBF# ctrain sample\n"
                     "; another comment style\n"
                     "\n"
                     "[model]\n"
                     "name = resnet20   # trailing comment\n"
                     "  num_classes=100\n"
                     "batchnorm = yes\r\n"
                     "sync_bn = Off ; trailing comment\n"
                     "dropout = 0.25\n"
                     "\n"
                     "[ data ]  # header comment\n"
                     "path = \"/data/my set/cifar#10.h5\"  # spaces and # need quotes\n"
                     "augment = crop, flip,cutout\n"
                     "shuffle = 0\n"
                     "rotate_deg = 12.5\n"
                     "\n"
                     "[train]\n"
                     "lr = 3e-4\n"
                     "optimizer = 'sgd'\n"
                     "schedule = onecycle\n"
                     "max_steps = 0\n"
                     "seed = 18446744073709551615\n"
                     "\t\n"
                     "[run]\n"
                     "dir = runs/a#b;c\n"
                     "resume = auto\n";
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  const char *path = write_file("sample.ini", text);
  TU_CHECK(config_load_file(&c, path, &e) == CT_OK);
  if (e.code) fprintf(stderr, "  %s\n", e.msg);
  TU_CHECK(strcmp(c.model.name, "resnet20") == 0);
  TU_CHECK(c.model.num_classes == 100 && c.model.batchnorm == 1 && c.model.sync_bn == 0);
  TU_CHECK(c.model.dropout == 0.25);
  TU_CHECK(strcmp(c.data.path, "/data/my set/cifar#10.h5") == 0);
  TU_CHECK(c.data.augment == (CFG_AUGMENT_CROP | CFG_AUGMENT_FLIP | CFG_AUGMENT_CUTOUT));
  TU_CHECK(c.data.shuffle == 0 && c.data.rotate_deg == 12.5);
  TU_CHECK(c.train.lr == 3e-4 && strcmp(c.train.optimizer, "sgd") == 0);
  TU_CHECK(strcmp(c.train.schedule, "onecycle") == 0 && c.train.max_steps == 0);
  TU_CHECK(c.train.seed == 18446744073709551615ull);
  TU_CHECK(strcmp(c.run.dir, "runs/a#b;c") == 0 && strcmp(c.run.resume, "auto") == 0);
  TU_CHECK(strcmp(c.source, path) == 0);
  /* untouched keys keep their defaults */
  TU_CHECK(c.train.batch_size == 128 && c.model.dim == 128 && c.run.keep == 3);

  /* quoting keeps what trimming would drop */
  config_defaults(&c);
  path = write_file("quotes.ini", "[data]\npath = \"  a \\\"b\\\" \\\\ c ; d  \"\n"
                                  "[run]\ndir = ' x # y '\nresume = \"\"\n"
                                  "[model]\nname =; a bare comment leaves it empty\n");
  TU_CHECK(config_load_file(&c, path, &e) == CT_OK);
  TU_CHECK(strcmp(c.data.path, "  a \"b\" \\ c ; d  ") == 0);
  TU_CHECK(strcmp(c.run.dir, " x # y ") == 0 && strcmp(c.run.resume, "") == 0);
  TU_CHECK(strcmp(c.model.name, "") == 0);
}

static void test_file_errors(void) {
  expect_load_error("typo.ini", "[train]\nepochs = 2\n\n# comment\nlr = 0.1\n\nlrr = 0.1\n",
                    ":7:", "unknown key 'train.lrr'", "did you mean 'train.lr'?", NULL);
  expect_load_error("typo2.ini", "[train]\nmomentm = 0.5\n", ":2:", "'train.momentm'",
                    "did you mean 'train.momentum'?", NULL);
  /* the right key under the wrong header */
  expect_load_error("wrongsec.ini", "[data]\nlr = 0.1\n", ":2:", "'data.lr'",
                    "did you mean 'train.lr'?", NULL);
  expect_load_error("section.ini", "[model]\nname = vit\n[trian]\nlr = 1\n",
                    ":3:", "unknown section 'trian'", "did you mean 'train'?", NULL);
  expect_load_error("section2.ini", "[runs]\n", ":1:", "did you mean 'run'?", NULL);

  expect_load_error("noeq.ini", "[train]\nlr 0.1\n", ":2:", "malformed line", NULL);
  expect_load_error("header.ini", "[train\nlr = 1\n", ":1:", "malformed section header", NULL);
  expect_load_error("header2.ini", "[train] lr = 1\n", ":1:", "malformed section header", NULL);
  expect_load_error("header3.ini", "[]\n", ":1:", "malformed section name", NULL);
  expect_load_error("key.ini", "[train]\nlearning rate = 1\n", ":2:", "malformed key", NULL);
  expect_load_error("nosec.ini", "# top\nlr = 1\n", ":2:", "before any [section]", NULL);
  expect_load_error("quote.ini", "[data]\npath = \"abc\n", ":2:", "data.path", "unterminated quote",
                    NULL);
  expect_load_error("quote2.ini", "[data]\npath = \"abc\" def\n", ":2:", "after the closing quote",
                    NULL);
  expect_load_error("escape.ini", "[data]\npath = \"C:\\data\"\n", ":2:", "unknown escape", NULL);

  expect_load_error("nan.ini", "[train]\nlr = fast\n", ":2:", "train.lr", "'fast'", "not a number",
                    NULL);
  expect_load_error("trail.ini", "[train]\n\nlr = 1e-3x\n", ":3:", "'1e-3x'", "not a number",
                    "trailing 'x'", NULL);
  expect_load_error("inf.ini", "[train]\nlr = 1e999\n", ":2:", "not a finite number", NULL);
  expect_load_error("empty.ini", "[train]\nlr =\n", ":2:", "train.lr", "not a number", NULL);
  expect_load_error("int.ini", "[train]\nepochs = 2.5\n", ":2:", "train.epochs", "not an integer",
                    NULL);
  expect_load_error("overflow.ini", "[train]\nbatch_size = 99999999999\n",
                    ":2:", "train.batch_size", "out of range", NULL);
  expect_load_error("overflow2.ini", "[train]\nmax_steps = 99999999999999999999\n",
                    ":2:", "out of range", NULL);
  expect_load_error("seed.ini", "[train]\nseed = -1\n", ":2:", "train.seed",
                    "not a non-negative integer", NULL);
  expect_load_error("seed2.ini", "[train]\nseed = 18446744073709551616\n", ":2:", "out of range",
                    NULL);
  expect_load_error("bool.ini", "[data]\nshuffle = maybe\n", ":2:", "data.shuffle", "not a boolean",
                    NULL);
  expect_load_error("enum.ini", "[train]\noptimizer = adan\n", ":2:", "train.optimizer", "'adan'",
                    "adam, adamw, sgd", NULL);
  expect_load_error("device.ini", "[run]\ndevice = gpu\n", ":2:", "cpu, cuda, auto", NULL);
  expect_load_error("aug.ini", "[data]\naugment = crop,mixup\n", ":2:", "data.augment", "'mixup'",
                    "crop, flip, rotate, cutout", NULL);
  expect_load_error("aug2.ini", "[data]\naugment = none,flip\n", ":2:", "'none'", NULL);
  expect_load_error("aug3.ini", "[data]\naugment = crop,,flip\n", ":2:", "data.augment", NULL);

  char long_text[5000] = "[model]\nname = ";
  memset(long_text + strlen(long_text), 'x', 32);
  strcat(long_text, "\n");
  expect_load_error("long.ini", long_text, ":2:", "model.name", "longer than the limit of 31",
                    NULL);
  strcpy(long_text, "[data]\npath = /");
  memset(long_text + strlen(long_text), 'p', 4095);
  strcat(long_text, "\n");
  expect_load_error("long2.ini", long_text, ":2:", "data.path", "limit of 4095", NULL);

  expect_load_error("dup.ini", "[train]\nlr = 0.1\nepochs = 3\n[run]\n[train]\nlr = 0.2\n",
                    ":6:", "duplicate key 'train.lr'", "line 2", NULL);

  /* a missing file, and a directory, are named with the system's reason */
  struct config c, before;
  struct ct_err e = {0};
  config_defaults(&c);
  char missing[256];
  snprintf(missing, sizeof missing, "%s/missing.ini", tmp_dir);
  TU_CHECK(config_load_file(&c, missing, &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, missing) && contains(e.msg, "No such file or directory"));
  TU_CHECK(config_load_file(&c, tmp_dir, &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, tmp_dir) && contains(e.msg, "Is a directory"));

  /* a file failing on its last line applies none of its earlier lines */
  config_defaults(&c);
  before = c;
  const char *path = write_file("partial.ini", "[train]\nepochs = 7\nlr = oops\n");
  TU_CHECK(config_load_file(&c, path, &e) == CT_ERR_USAGE);
  TU_CHECK(config_diff(&c, &before, NULL, 0) == 0 && strcmp(c.source, "") == 0);
}

static void test_set(void) {
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  const char *path = write_file("base.ini", "[train]\nlr = 0.1\nepochs = 3\n");
  TU_CHECK(config_load_file(&c, path, &e) == CT_OK);
  /* overrides apply after the file, and may repeat: the last one wins */
  TU_CHECK(config_set(&c, "train.lr=0.5", &e) == CT_OK);
  TU_CHECK(config_set(&c, " train.epochs = 9 ", &e) == CT_OK);
  TU_CHECK(config_set(&c, "train.epochs=10", &e) == CT_OK);
  TU_CHECK(config_set(&c, "data.path=/x/a=b # c", &e) == CT_OK);
  TU_CHECK(config_set(&c, "data.augment=rotate", &e) == CT_OK);
  TU_CHECK(config_set(&c, "model.name=vit", &e) == CT_OK);
  TU_CHECK(c.train.lr == 0.5 && c.train.epochs == 10);
  TU_CHECK(strcmp(c.data.path, "/x/a=b # c") == 0);
  TU_CHECK(c.data.augment == CFG_AUGMENT_ROTATE && strcmp(c.model.name, "vit") == 0);
  TU_CHECK(config_set_value(&c, "run", "device", "cuda", "test", &e) == CT_OK);
  TU_CHECK(strcmp(c.run.device, "cuda") == 0);

  expect_set_error("train.lrr=1", "unknown key 'train.lrr'", "did you mean 'train.lr'?");
  expect_set_error("trian.lr=1", "unknown section 'trian'", "did you mean 'train'?");
  expect_set_error("lr=1", "expected section.key=value", "'lr=1'");
  expect_set_error("train.lr", "expected section.key=value", NULL);
  expect_set_error("train.lr=1e-3x", "train.lr", "trailing 'x'");
  expect_set_error("train.schedule=linear", "constant, cosine, onecycle", NULL);
  expect_set_error("run.dir=a\tb", "run.dir", "control character");

  TU_CHECK(config_set_value(&c, "train", "lr", "x", "somewhere.ini:3", &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, "somewhere.ini:3: train.lr: 'x' is not a number"));
}

static void test_booleans_and_augment(void) {
  static const char *const truths[] = {"true", "yes", "on", "1", "TRUE", "Yes", "ON"};
  static const char *const lies[] = {"false", "no", "off", "0", "False", "NO", "Off"};
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  for (size_t i = 0; i < sizeof truths / sizeof *truths; i++) {
    c.data.shuffle = 0;
    TU_CHECK(config_set_value(&c, "data", "shuffle", truths[i], "t", &e) == CT_OK);
    TU_CHECK(c.data.shuffle == 1);
    TU_CHECK(config_set_value(&c, "data", "shuffle", lies[i], "t", &e) == CT_OK);
    TU_CHECK(c.data.shuffle == 0);
  }
  static const char *const bad[] = {"2", "", "tru", "y", "-1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    TU_CHECK(config_set_value(&c, "data", "shuffle", bad[i], "t", &e) == CT_ERR_USAGE);

  static const struct {
    const char *text;
    unsigned bits;
  } lists[] = {
      {"none", 0},
      {"crop", CFG_AUGMENT_CROP},
      {"flip", CFG_AUGMENT_FLIP},
      {"rotate", CFG_AUGMENT_ROTATE},
      {"cutout", CFG_AUGMENT_CUTOUT},
      {"cutout,crop", CFG_AUGMENT_CROP | CFG_AUGMENT_CUTOUT},
      {" flip , rotate ", CFG_AUGMENT_FLIP | CFG_AUGMENT_ROTATE},
      {"crop,flip,rotate,cutout", 15},
      {"flip,flip", CFG_AUGMENT_FLIP},
  };
  for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
    c.data.augment = 99;
    TU_CHECK(config_set_value(&c, "data", "augment", lists[i].text, "t", &e) == CT_OK);
    TU_CHECK(c.data.augment == lists[i].bits);
  }
  static const char *const bad_lists[] = {"", "Crop", "crop,", ",crop", "crop;flip", "none,"};
  for (size_t i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
    c.data.augment = 3;
    TU_CHECK(config_set_value(&c, "data", "augment", bad_lists[i], "t", &e) == CT_ERR_USAGE);
    TU_CHECK(c.data.augment == 3);
  }
}

static void round_trip(const struct config *c, const char *name) {
  int n = config_write(c, NULL, 0);
  TU_CHECK(n > 0);
  char *text = malloc((size_t)n + 1);
  TU_CHECK(config_write(c, text, (size_t)n + 1) == n && strlen(text) == (size_t)n);
  struct config back;
  struct ct_err e = {0};
  config_defaults(&back);
  TU_CHECK(config_load_file(&back, write_file(name, text), &e) == CT_OK);
  if (e.code) fprintf(stderr, "  %s\n", e.msg);
  char diff[512];
  int changed = config_diff(c, &back, diff, sizeof diff);
  TU_CHECK(changed == 0);
  if (changed) fprintf(stderr, "  round trip changed %s; text:\n%s", diff, text);

  /* a short buffer gets a NUL-terminated prefix and the same length */
  char small[10];
  TU_CHECK(config_write(c, small, sizeof small) == n);
  TU_CHECK(strlen(small) == sizeof small - 1 && strncmp(small, text, sizeof small - 1) == 0);
  free(text);
}

static void test_round_trip(void) {
  struct config c;
  config_defaults(&c);
  round_trip(&c, "rt_defaults.ini");

  char text[8192];
  config_write(&c, text, sizeof text);
  TU_CHECK(contains(text, "[model]\nname = \"\"\nnum_classes = 10\n"));
  TU_CHECK(contains(text, "\n\n[train]\nepochs = 1\n"));
  TU_CHECK(contains(text, "lr = 0.001\n") && contains(text, "eps = 1e-8\n"));
  TU_CHECK(contains(text, "augment = none\n") && contains(text, "dropout = 0.1\n"));
  TU_CHECK(contains(text, "final_div_factor = 10000\n"));
  TU_CHECK(contains(text, "sync_bn = true\n") && contains(text, "batchnorm = false\n"));

  struct ct_err e = {0};
  static const char *const sets[] = {
      "model.name=caption_transformer",
      "model.dropout=0.30000000000000004",
      "data.path=  lead and trail  ",
      "data.augment=flip,cutout",
      "train.lr=1e-300",
      "train.max_lr=1e20",
      "train.eta_min=-0",
      "train.final_div_factor=123456789012345678",
      "train.weight_decay=5e-324",
      "train.eps=0.1",
      "train.momentum=0.123456789012345678",
      "train.max_steps=-1",
      "train.seed=18446744073709551615",
      "train.optimizer=adamw",
      "run.dir=runs/x #y ;z",
      "run.resume=\"quoted\" and 'single' \\ back",
      "run.device=cpu",
      "run.threads=1024",
      "data.val_size=2147483647",
  };
  for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
    TU_CHECK(config_set(&c, sets[i], &e) == CT_OK);
    if (e.code) fprintf(stderr, "  %s\n", e.msg);
  }
  /* --set trims, so only the API can set a value with leading spaces */
  TU_CHECK(config_set_value(&c, "data", "path", "  lead and trail  ", "t", &e) == CT_OK);
  TU_CHECK(config_set_value(&c, "model", "name", "#hash", "t", &e) == CT_OK);
  round_trip(&c, "rt_custom.ini");
  config_write(&c, text, sizeof text);
  TU_CHECK(contains(text, "augment = flip,cutout\n") && contains(text, "lr = 1e-300\n"));
  TU_CHECK(contains(text, "max_lr = 1e20\n") && contains(text, "eta_min = -0\n"));

  struct config other = c;
  other.train.grad_clip = 1;
  char keys[64];
  TU_CHECK(config_diff(&c, &other, keys, sizeof keys) == 1 && strcmp(keys, "train.grad_clip") == 0);
  other.train.epochs = c.train.epochs + 1;
  TU_CHECK(config_diff(&c, &other, keys, sizeof keys) == 2 && contains(keys, "train.grad_clip") &&
           contains(keys, "train.epochs") && contains(keys, ", "));
  TU_CHECK(config_diff(&c, &other, keys, 8) == 2 && strlen(keys) == 7); /* truncated, counted */
}

static void expect_invalid(const char *assignment, const char *frag) {
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  TU_CHECK(config_set(&c, "model.name=resnet20", &e) == CT_OK);
  TU_CHECK(config_set(&c, assignment, &e) == CT_OK);
  TU_CHECK(config_validate(&c, &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, frag));
}

/* A value outside the key's range fails at parse time, naming the key and the range. */
static void expect_out_of_range(const char *assignment, const char *key, const char *range) {
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  TU_CHECK(config_set(&c, assignment, &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, key) && contains(e.msg, "out of range") && contains(e.msg, range));
}

static void test_validate(void) {
  struct config c;
  struct ct_err e = {0};
  config_defaults(&c);
  TU_CHECK(config_validate(&c, &e) == CT_ERR_USAGE);
  TU_CHECK(contains(e.msg, "model.name"));
  TU_CHECK(config_set(&c, "model.name=resnet20", &e) == CT_OK);
  TU_CHECK(config_validate(&c, &e) == CT_OK);
  TU_CHECK(config_set(&c, "train.epochs=0", &e) == CT_OK);
  TU_CHECK(config_set(&c, "train.max_steps=0", &e) == CT_OK);
  TU_CHECK(config_validate(&c, &e) == CT_OK);

  expect_out_of_range("train.batch_size=0", "train.batch_size", "");
  expect_out_of_range("train.lr=0", "train.lr", "(0, inf)");
  expect_out_of_range("train.lr=-1", "train.lr", "");
  expect_out_of_range("train.epochs=-1", "train.epochs", "");
  expect_out_of_range("train.label_smoothing=1", "train.label_smoothing", "");
  expect_out_of_range("train.label_smoothing=-0.1", "train.label_smoothing", "");
  expect_out_of_range("train.pct_start=0", "train.pct_start", "");
  expect_out_of_range("train.pct_start=1", "train.pct_start", "");
  expect_out_of_range("train.max_steps=-2", "train.max_steps", "");
  expect_out_of_range("train.beta2=1", "train.beta2", "");
  expect_out_of_range("train.eps=0", "train.eps", "");
  expect_out_of_range("train.grad_clip=-1", "train.grad_clip", "");
  expect_invalid("train.base_momentum=0.99", "train.base_momentum");
  expect_invalid("train.eta_min=1", "train.eta_min");
  expect_invalid("model.heads=3", "not divisible by model.heads");
  expect_out_of_range("model.dropout=1", "model.dropout", "[0, 1)");
  expect_out_of_range("data.cutout_p=1.5", "data.cutout_p", "");
  expect_out_of_range("run.keep=0", "run.keep", "");
  expect_out_of_range("run.log_every=0", "run.log_every", "");
  expect_out_of_range("run.threads=-1", "run.threads", "[0, 1024]");
  expect_out_of_range("run.threads=100000", "run.threads", "[0, 1024]");
}

static void test_print_keys(void) {
  FILE *f = tmpfile();
  config_print_keys(f);
  long n = ftell(f);
  rewind(f);
  char *text = calloc((size_t)n + 1, 1);
  TU_CHECK(fread(text, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  /* every key written by config_write is listed */
  struct config c;
  config_defaults(&c);
  char ini[8192];
  config_write(&c, ini, sizeof ini);
  char section[32] = "";
  for (char *line = strtok(ini, "\n"); line; line = strtok(NULL, "\n")) {
    if (*line == '[') {
      snprintf(section, sizeof section, "%.*s", (int)(strlen(line) - 2), line + 1);
      continue;
    }
    char name[96];
    snprintf(name, sizeof name, "  %s.%.*s ", section, (int)strcspn(line, " "), line);
    TU_CHECK(contains(text, name));
  }
  TU_CHECK(contains(text, "[adam, adamw, sgd]"));
  free(text);
}

int main(void) {
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_defaults();
  test_sample_file();
  test_file_errors();
  test_set();
  test_booleans_and_augment();
  test_round_trip();
  test_validate();
  test_print_keys();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
  TU_DONE();
}
