/* main.c — the `ctrain` command: verbs, configs and `--set`; the only place
 * that prints usage and maps errors to exit codes (2 usage, 1 runtime). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "cli/env.h"
#include "comm/comm.h"
#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "data/prepare.h"
#include "data/prepare_coco.h"
#include "train/evaluate.h"
#include "train/sample.h"
#include "train/train.h"
#include "viz/attention.h"
#include "viz/plot.h"

static const char usage_text[] =
    "usage: ctrain <command> [arguments]\n"
    "\n"
    "  train CONFIG.ini [--set section.key=value ...]   train a model (mpirun/srun for ranks)\n"
    "  eval CHECKPOINT.h5 --data FILE.h5 [--split test] [--json OUT.json] [--device auto]\n"
    "  sample CHECKPOINT.h5 --data FILE.h5 [--split val] [--n K] [--device auto]\n"
    "                                                   greedy captions beside the truth, "
    "corpus BLEU-1..4\n"
    "  prepare cifar10 SRC OUT.h5 [--val N] [--seed S]   the official binary release (dir or "
    ".tar.gz)\n"
    "  prepare images SRC OUT.h5 [--val N] [--seed S]    SRC/{train,test}/<class>/*.{jpg,png} (dir "
    "or .tar.gz)\n"
    "  prepare synthetic OUT.h5 [--train N] [--test N] [--val N] [--seed S]\n"
    "  prepare coco SRC OUT.h5 [--full]                 the CS231n captioning files (512-d PCA "
    "features; --full: 4096-d)\n"
    "  prepare synthetic-coco OUT_DIR [--train N] [--val N] [--seed S]   CS231n-layout stand-in\n"
    "  inspect FILE.h5                                  what a checkpoint or dataset file holds\n"
    "  attention CHECKPOINT.h5 --data FILE.h5 [--split test] [--index 0] [--out DIR]\n"
    "                                                   attention weights of one image (HDF5 + "
    "PNG)\n"
    "  plot RUN_DIR [--out OUT.png]                     learning curves from "
    "RUN_DIR/metrics.jsonl\n"
    "  keys                                             every configuration key with its default\n"
    "  version\n";

static int usage(struct ct_err *e, const char *what) {
  return err_set(e, CT_ERR_USAGE, "%s (run 'ctrain help' for usage)", what);
}

/* Parses a non-negative integer option value. */
static int parse_count(const char *opt, const char *v, long *out, struct ct_err *e) {
  char *end;
  long x = strtol(v, &end, 10);
  if (!*v || *end || x < 0)
    return err_set(e, CT_ERR_USAGE, "%s expects a non-negative integer, got '%s'", opt, v);
  *out = x;
  return CT_OK;
}

/* What each `prepare` kind takes: positional arguments and options. */
enum { OPT_VAL = 1, OPT_SEED = 2, OPT_TRAIN = 4, OPT_TEST = 8, OPT_FULL = 16 };

struct prepare_kind {
  const char *name;
  int npos;
  unsigned opts;
  const char *needs;
};

static const struct prepare_kind prepare_kinds[] = {
    {"cifar10", 2, OPT_VAL | OPT_SEED, "SRC and OUT.h5"},
    {"images", 2, OPT_VAL | OPT_SEED, "SRC and OUT.h5"},
    {"synthetic", 1, OPT_VAL | OPT_SEED | OPT_TRAIN | OPT_TEST, "OUT.h5"},
    {"coco", 2, OPT_FULL, "SRC and OUT.h5"},
    {"synthetic-coco", 1, OPT_VAL | OPT_SEED | OPT_TRAIN, "OUT_DIR"},
};

/* Options left unset are -1 (flags 0). */
struct prepare_args {
  const char *pos[2];
  long val, seed, train, test;
  int full;
};

static int parse_prepare(int argc, char **argv, const struct prepare_kind *k,
                         struct prepare_args *a, struct ct_err *e) {
  static const struct {
    const char *name;
    unsigned bit;
    size_t offset;
  } opts[] = {{"--val", OPT_VAL, offsetof(struct prepare_args, val)},
              {"--seed", OPT_SEED, offsetof(struct prepare_args, seed)},
              {"--train", OPT_TRAIN, offsetof(struct prepare_args, train)},
              {"--test", OPT_TEST, offsetof(struct prepare_args, test)}};
  int np = 0;
  *a = (struct prepare_args){{NULL, NULL}, -1, -1, -1, -1, 0};
  for (int i = 2; i < argc; i++) {
    const char *arg = argv[i];
    if (arg[0] != '-') {
      if (np == k->npos)
        return err_set(e, CT_ERR_USAGE, "prepare %s: unexpected argument '%s'", k->name, arg);
      a->pos[np++] = arg;
      continue;
    }
    if ((k->opts & OPT_FULL) && strcmp(arg, "--full") == 0) {
      a->full = 1;
      continue;
    }
    size_t j = 0;
    while (j < sizeof opts / sizeof opts[0] &&
           !((k->opts & opts[j].bit) && !strcmp(arg, opts[j].name)))
      j++;
    if (j == sizeof opts / sizeof opts[0])
      return err_set(e, CT_ERR_USAGE, "prepare %s: unknown option '%s'", k->name, arg);
    if (i + 1 >= argc) return err_set(e, CT_ERR_USAGE, "%s needs a value", arg);
    if (parse_count(arg, argv[++i], (long *)((char *)a + opts[j].offset), e)) return e->code;
  }
  if (np != k->npos)
    return err_set(e, CT_ERR_USAGE, "prepare %s needs %s (run 'ctrain help' for usage)", k->name,
                   k->needs);
  return CT_OK;
}

static long or_default(long v, long def) { return v >= 0 ? v : def; }

static int cmd_prepare(int argc, char **argv, struct ct_err *e) {
  const char *kinds = "cifar10, images, synthetic, coco, synthetic-coco";
  if (argc < 2) return usage(e, "prepare needs a source kind");
  const struct prepare_kind *k = NULL;
  for (size_t i = 0; i < sizeof prepare_kinds / sizeof prepare_kinds[0]; i++)
    if (strcmp(argv[1], prepare_kinds[i].name) == 0) k = &prepare_kinds[i];
  if (!k) return err_set(e, CT_ERR_USAGE, "prepare: unknown source kind '%s' (%s)", argv[1], kinds);
  struct prepare_args a;
  if (parse_prepare(argc, argv, k, &a, e)) return e->code;
  int val = (int)or_default(a.val, 0);
  uint64_t seed = (uint64_t)or_default(a.seed, 0);
  if (a.train == 0 || a.test == 0 ||
      (k->opts & OPT_TRAIN && a.val == 0 && !strcmp(k->name, "synthetic-coco")))
    return err_set(e, CT_ERR_USAGE, "prepare %s: image counts must be positive", k->name);
  if (!strcmp(k->name, "cifar10")) return prepare_cifar10(a.pos[0], a.pos[1], val, seed, e);
  if (!strcmp(k->name, "images")) return prepare_images(a.pos[0], a.pos[1], val, seed, e);
  if (!strcmp(k->name, "synthetic"))
    return prepare_synthetic(a.pos[0], (int)or_default(a.train, 10000),
                             (int)or_default(a.test, 2000), val, seed, e);
  if (!strcmp(k->name, "coco")) return prepare_coco(a.pos[0], a.pos[1], a.full, e);
  return prepare_synthetic_coco(a.pos[0], (int)or_default(a.train, COCO_SYN_TRAIN),
                                (int)or_default(a.val, COCO_SYN_VAL), COCO_SYN_CAPTIONS, seed, e);
}

static int cmd_train(int argc, char **argv, const struct comm *c, struct ct_err *e) {
  if (argc < 2 || argv[1][0] == '-') return usage(e, "train needs CONFIG.ini");
  struct config *cfg = malloc(sizeof *cfg);
  if (!cfg) return err_set(e, CT_ERR_RUNTIME, "out of memory for the configuration");
  config_defaults(cfg);
  int rc = config_load_file(cfg, argv[1], e);
  for (int i = 2; !rc && i < argc; i++) {
    if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
      rc = config_set(cfg, argv[++i], e);
    else if (strncmp(argv[i], "--set=", 6) == 0)
      rc = config_set(cfg, argv[i] + 6, e);
    else
      rc = err_set(e, CT_ERR_USAGE,
                   "train: unexpected argument '%s' (overrides are --set section.key=value)",
                   argv[i]);
  }
  if (!rc) rc = config_validate(cfg, e);
  if (!rc) rc = train_run(cfg, c, e);
  free(cfg);
  return rc;
}

/* A checkpoint verb's "--option value" pair, written to *target. */
struct verb_opt {
  const char *name;
  const char **target;
};

/* Parses `VERB CHECKPOINT.h5 --opt value ...` (argv[0] is the verb): the one
 * positional argument and the options of `opts` (NULL-terminated); the
 * checkpoint and --data are required. */
static int parse_ckpt_verb(int argc, char **argv, const struct verb_opt *opts, const char **ckpt,
                           const char **data, struct ct_err *e) {
  const char *verb = argv[0];
  *ckpt = NULL;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] != '-') {
      if (*ckpt) return err_set(e, CT_ERR_USAGE, "%s: unexpected argument '%s'", verb, argv[i]);
      *ckpt = argv[i];
      continue;
    }
    const struct verb_opt *o = opts;
    while (o->name && strcmp(argv[i], o->name) != 0)
      o++;
    if (!o->name) return err_set(e, CT_ERR_USAGE, "%s: unknown option '%s'", verb, argv[i]);
    if (i + 1 >= argc) return err_set(e, CT_ERR_USAGE, "%s needs a value", argv[i]);
    *o->target = argv[++i];
  }
  if (!*ckpt || !*data)
    return err_set(e, CT_ERR_USAGE,
                   "%s needs CHECKPOINT.h5 and --data FILE.h5 (run 'ctrain help' for usage)", verb);
  return CT_OK;
}

static int cmd_eval(int argc, char **argv, const struct comm *c, struct ct_err *e) {
  const char *ckpt, *data = NULL, *split = "test", *json = NULL, *device = "auto";
  const struct verb_opt opts[] = {
      {"--data", &data}, {"--split", &split}, {"--json", &json}, {"--device", &device}, {0}};
  if (parse_ckpt_verb(argc, argv, opts, &ckpt, &data, e)) return e->code;
  return eval_checkpoint(ckpt, data, split, json, device, c, e);
}

static int cmd_sample(int argc, char **argv, const struct comm *c, struct ct_err *e) {
  const char *ckpt, *data = NULL, *split = "val", *n = "5", *device = "auto";
  const struct verb_opt opts[] = {
      {"--data", &data}, {"--split", &split}, {"--n", &n}, {"--device", &device}, {0}};
  long show = 0;
  if (parse_ckpt_verb(argc, argv, opts, &ckpt, &data, e) || parse_count("--n", n, &show, e))
    return e->code;
  return sample_checkpoint(ckpt, data, split, show, device, c, e);
}

static int cmd_attention(int argc, char **argv, struct ct_err *e) {
  const char *ckpt, *data = NULL, *split = "test", *index = "0", *out = "attention";
  const struct verb_opt opts[] = {
      {"--data", &data}, {"--split", &split}, {"--index", &index}, {"--out", &out}, {0}};
  long idx = 0;
  if (parse_ckpt_verb(argc, argv, opts, &ckpt, &data, e) || parse_count("--index", index, &idx, e))
    return e->code;
  return viz_attention(ckpt, data, split, idx, out, e);
}

static int cmd_plot(int argc, char **argv, struct ct_err *e) {
  const char *run_dir = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0) {
      if (i + 1 >= argc) return err_set(e, CT_ERR_USAGE, "--out needs a value");
      out = argv[++i];
    } else if (argv[i][0] == '-')
      return err_set(e, CT_ERR_USAGE, "plot: unknown option '%s'", argv[i]);
    else if (!run_dir)
      run_dir = argv[i];
    else
      return err_set(e, CT_ERR_USAGE, "plot: unexpected argument '%s'", argv[i]);
  }
  if (!run_dir) return usage(e, "plot needs RUN_DIR");
  return viz_plot(run_dir, out, e);
}

int main(int argc, char **argv) {
  struct ct_err e = {0};
  struct comm c;
  env_tune_and_reexec(argv);
  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? CT_ERR_USAGE : 0;
  }
  if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("ctrain %s\n", CTRAIN_VERSION);
    return 0;
  }
  if (strcmp(argv[1], "keys") == 0) {
    config_print_keys(stdout);
    return 0;
  }
  if (strcmp(argv[1], "inspect") == 0) {
    if (argc != 3) {
      log_error("inspect needs one FILE.h5 (run 'ctrain help' for usage)");
      return CT_ERR_USAGE;
    }
    if (ckpt_inspect(argv[2], stdout, &e)) {
      log_error("%s", e.msg);
      return e.code;
    }
    return 0;
  }
  /* Single-process verbs: no MPI start-up. */
  int (*local_verb)(int, char **, struct ct_err *) = NULL;
  if (strcmp(argv[1], "attention") == 0) local_verb = cmd_attention;
  if (strcmp(argv[1], "plot") == 0) local_verb = cmd_plot;
  if (local_verb) {
    if (local_verb(argc - 1, argv + 1, &e)) {
      log_error("%s", e.msg);
      return e.code;
    }
    return 0;
  }
  if (comm_init(&c, &argc, &argv, &e)) {
    log_error("%s", e.msg);
    return CT_ERR_RUNTIME;
  }
  log_set_rank(c.rank);
  int rc;
  const char *verb = argv[1];
  if (strcmp(verb, "train") == 0)
    rc = cmd_train(argc - 1, argv + 1, &c, &e);
  else if (strcmp(verb, "eval") == 0)
    rc = cmd_eval(argc - 1, argv + 1, &c, &e);
  else if (strcmp(verb, "sample") == 0)
    rc = cmd_sample(argc - 1, argv + 1, &c, &e);
  else if (strcmp(verb, "prepare") == 0)
    rc = c.rank == 0 ? cmd_prepare(argc - 1, argv + 1, &e) : CT_OK;
  else
    rc = err_set(&e, CT_ERR_USAGE, "unknown command '%s' (run 'ctrain help')", verb);
  if (rc) {
    if (!e.everywhere || c.rank == 0) log_error("%s", e.msg);
    /* One failing rank must not leave the others waiting in a collective. */
    if (c.size > 1 && !e.everywhere) comm_abort(&c, rc);
  }
  comm_finalize(&c);
  return rc;
}
