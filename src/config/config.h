/* config.h — the training configuration: an INI file plus `--set section.key=value`
 * overrides, filling one typed struct. Every key is one line of the schema table in
 * config.c (type, default, help, allowed values), so parsing, defaults, the written
 * form and the help listing cannot disagree.
 *
 * File syntax: `[section]` headers, `key = value` lines, blank lines, and comments
 * starting with `#` or `;` either on their own line or after whitespace following a
 * value. A value may be quoted: '...' is literal, "..." understands \" and \\. Quote a
 * value to keep surrounding spaces or a ` #` inside it. A key set twice in one file is
 * an error. Booleans: true/false/yes/no/on/off/1/0. data.augment: a comma list of
 * crop, flip, rotate, cutout, or `none`.
 *
 * Errors are one line with CT_ERR_USAGE, prefixed by "FILE:LINE" or "--set", and an
 * unknown section or key names the closest valid one. */
#ifndef CTRAIN_CONFIG_H
#define CTRAIN_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct ct_err;

enum {
  CFG_AUGMENT_CROP = 1,
  CFG_AUGMENT_FLIP = 2,
  CFG_AUGMENT_ROTATE = 4,
  CFG_AUGMENT_CUTOUT = 8,
};

struct cfg_model {
  char name[32]; /* required: config_validate rejects an empty name */
  int num_classes;
  int sync_bn;
  int batchnorm;
  /* transformer keys (vit, caption_transformer) */
  int patch;
  int dim;
  int depth;
  int heads;
  int ffn_dim;
  double dropout;
  int max_length;
};

struct cfg_data {
  char path[4096];
  int val_size;
  int shuffle;
  unsigned augment; /* CFG_AUGMENT_* bits */
  int normalize;
  int crop_pad;
  double rotate_deg;
  int cutout_size;
  double cutout_p;
};

struct cfg_train {
  int epochs;
  int batch_size;
  char optimizer[16]; /* adam|adamw|sgd */
  double lr;
  double weight_decay;
  double momentum; /* sgd */
  double beta1, beta2, eps;
  char schedule[16]; /* constant|cosine|onecycle */
  double max_lr;     /* 0 => lr */
  double pct_start;
  double div_factor;
  double final_div_factor;
  char anneal[8]; /* cos|linear */
  double base_momentum, max_momentum;
  int cycle_momentum;
  double eta_min;
  int warmup_steps;
  long max_steps; /* -1 = no limit; 0 = stop before the first step */
  unsigned long long seed;
  double label_smoothing;
  double grad_clip; /* 0 = off */
};

struct cfg_run {
  char dir[4096];
  char device[8]; /* cpu|cuda|auto */
  int tf32;       /* cuda: TF32 tensor-core matrix products */
  int cuda_graph; /* cuda: the training step captured once and replayed */
  int threads;    /* 0 = auto */
  int log_every;
  int checkpoint_every; /* 0 = only at the end */
  int keep;
  char resume[4096]; /* none|auto|PATH */
  int eval_every_epoch;
  char allreduce[16]; /* blocking|bucketed */
  int bucket_kib;
  char collectives[8];   /* auto|nccl|mpi */
  double comm_timeout_s; /* a collective's longest wait before the job ends */
};

struct config {
  struct cfg_model model;
  struct cfg_data data;
  struct cfg_train train;
  struct cfg_run run;
  char source[4096]; /* the file last loaded, "" if none; not a key */
};

void config_defaults(struct config *c);

/* Values from the file override those already in `c` (so call config_defaults first).
 * On error `c` is left unchanged. Sets c->source to `path`. */
int config_load_file(struct config *c, const char *path, struct ct_err *e);

/* As config_load_file, from INI text (a checkpoint's stored configuration);
 * `origin` names it in errors. */
int config_load_string(struct config *c, const char *text, const char *origin, struct ct_err *e);

/* "section.key=value"; the value is taken literally after trimming (no quotes or
 * comments: the shell has already done its quoting). Errors are prefixed "--set". */
int config_set(struct config *c, const char *assignment, struct ct_err *e);

/* Parses `value` (already unquoted) into the key; `where` prefixes error messages.
 * On error `c` is left unchanged. */
int config_set_value(struct config *c, const char *section, const char *key, const char *value,
                     const char *where, struct ct_err *e);

/* Range and cross-key checks that a single value cannot make on its own. */
int config_validate(const struct config *c, struct ct_err *e);

/* Every key as INI text in canonical form (schema order, shortest round-tripping
 * numbers) that config_load_file reads back to an equal config. snprintf semantics:
 * returns the length of the full text, writes at most len-1 bytes plus a NUL. */
int config_write(const struct config *c, char *buf, size_t len);

/* The number of keys whose values differ between a and b (c->source is
 * not compared); their "section.key" names, comma-separated in table
 * order, in keys (len bytes, truncated; keys may be NULL). */
int config_diff(const struct config *a, const struct config *b, char *keys, size_t len);

/* Help listing: every section.key with its type, default and help text. */
void config_print_keys(FILE *f);

#endif
