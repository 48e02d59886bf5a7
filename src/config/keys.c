/* keys.c — every configuration key: section, name, type, default, range
 * and help, in the order config_write prints them. */
#include "config/keys.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define FIELD(sec, key) offsetof(struct config, sec.key), sizeof(((struct config *)0)->sec.key)
#define KEY(sec, key, kind, def, help)                                                             \
  { #sec "." #key, kind, FIELD(sec, key), def, NULL, help, 0, 0, 0, 0 }
#define CHOICE(sec, key, kind, def, choices, help)                                                 \
  { #sec "." #key, kind, FIELD(sec, key), def, choices, help, 0, 0, 0, 0 }
/* Numeric key with the range [lo, hi]; NUMO's ends are open where lo_open/hi_open. */
#define NUM(sec, key, kind, def, lo, hi, help)                                                     \
  { #sec "." #key, kind, FIELD(sec, key), def, NULL, help, lo, hi, 0, 0 }
#define NUMO(sec, key, kind, def, lo, lo_open, hi, hi_open, help)                                  \
  { #sec "." #key, kind, FIELD(sec, key), def, NULL, help, lo, hi, lo_open, hi_open }

/* Keys of a section must be contiguous: config_write emits a header when the section
 * changes. */
const struct key_spec config_keys[] = {
    KEY(model, name, K_STR, "",
        "architecture: attn_cnn, ultimus, cnn_vanilla, cnn_early, cnn_late, cnn_double, resnet10, "
        "resnet10_attn, vit, conv_vit"),
    NUM(model, num_classes, K_INT, "10", 1, 1 << 24, "number of output classes"),
    KEY(model, sync_bn, K_BOOL, "true", "average batch-norm statistics across ranks"),
    KEY(model, batchnorm, K_BOOL, "false", "batch norm in resnet (off, as in the reference seed)"),
    NUM(model, patch, K_INT, "8", 1, 1024, "transformer: patch side in pixels"),
    NUM(model, dim, K_INT, "128", 1, 1 << 16, "transformer: embedding width"),
    NUM(model, depth, K_INT, "6", 1, 1024, "transformer: number of blocks"),
    NUM(model, heads, K_INT, "4", 1, 1024, "transformer: attention heads (must divide dim)"),
    NUM(model, ffn_dim, K_INT, "256", 1, 1 << 20, "transformer: feed-forward hidden width"),
    NUMO(model, dropout, K_DOUBLE, "0.1", 0, 0, 1, 1, "transformer: dropout probability"),
    NUM(model, max_length, K_INT, "17", 1, 4096, "caption_transformer: longest caption in tokens"),

    KEY(data, path, K_STR, "", "dataset file or directory"),
    NUM(data, val_size, K_INT, "5000", 0, INT_MAX, "examples held out for validation"),
    KEY(data, shuffle, K_BOOL, "true", "reshuffle the training set every epoch"),
    CHOICE(data, augment, K_FLAGS, "none", "crop|flip|rotate|cutout",
           "comma list of augmentations, or none"),
    KEY(data, normalize, K_BOOL, "true", "normalize inputs with per-channel mean and std"),
    NUM(data, crop_pad, K_INT, "4", 0, 1024, "crop: zero padding before the random crop"),
    NUM(data, rotate_deg, K_DOUBLE, "5", 0, 180, "rotate: maximum angle in degrees"),
    NUM(data, cutout_size, K_INT, "16", 1, 4096, "cutout: side of the erased square"),
    NUM(data, cutout_p, K_DOUBLE, "0.5", 0, 1, "cutout: probability per image"),

    NUM(train, epochs, K_INT, "1", 0, 1000000, "passes over the training set"),
    NUM(train, batch_size, K_INT, "128", 1, 1 << 24, "global batch size, split across ranks"),
    CHOICE(train, optimizer, K_ENUM, "adam", "adam|adamw|sgd", "optimizer"),
    NUMO(train, lr, K_DOUBLE, "0.001", 0, 1, INFINITY, 1,
         "learning rate (the base rate for schedules)"),
    NUMO(train, weight_decay, K_DOUBLE, "0", 0, 0, INFINITY, 1, "L2 penalty (decoupled for adamw)"),
    NUMO(train, momentum, K_DOUBLE, "0.9", 0, 0, 1, 1, "sgd: momentum"),
    NUMO(train, beta1, K_DOUBLE, "0.9", 0, 0, 1, 1, "adam: first-moment decay"),
    NUMO(train, beta2, K_DOUBLE, "0.999", 0, 0, 1, 1, "adam: second-moment decay"),
    NUMO(train, eps, K_DOUBLE, "1e-8", 0, 1, INFINITY, 1, "adam: denominator epsilon"),
    CHOICE(train, schedule, K_ENUM, "constant", "constant|cosine|onecycle",
           "learning-rate schedule"),
    NUMO(train, max_lr, K_DOUBLE, "0", 0, 0, INFINITY, 1, "onecycle: peak rate (0 = train.lr)"),
    NUMO(train, pct_start, K_DOUBLE, "0.3", 0, 1, 1, 1, "onecycle: fraction of steps spent rising"),
    NUMO(train, div_factor, K_DOUBLE, "25", 0, 1, INFINITY, 1,
         "onecycle: initial rate = max_lr / div_factor"),
    NUMO(train, final_div_factor, K_DOUBLE, "10000", 0, 1, INFINITY, 1,
         "onecycle: final rate = initial rate / final_div_factor"),
    CHOICE(train, anneal, K_ENUM, "cos", "cos|linear", "onecycle: annealing shape"),
    NUMO(train, base_momentum, K_DOUBLE, "0.85", 0, 0, 1, 1,
         "onecycle: lowest momentum (or beta1)"),
    NUMO(train, max_momentum, K_DOUBLE, "0.95", 0, 0, 1, 1,
         "onecycle: highest momentum (or beta1)"),
    KEY(train, cycle_momentum, K_BOOL, "true", "onecycle: cycle momentum against the rate"),
    NUMO(train, eta_min, K_DOUBLE, "0", 0, 0, INFINITY, 1, "cosine: final learning rate"),
    NUM(train, warmup_steps, K_INT, "0", 0, INT_MAX, "linear warm-up steps before the schedule"),
    NUM(train, max_steps, K_LONG, "-1", -1, 1e15, "stop after this many steps (-1 = no limit)"),
    KEY(train, seed, K_U64, "42", "seed for initialization, shuffling and augmentation"),
    NUMO(train, label_smoothing, K_DOUBLE, "0", 0, 0, 1, 1, "cross-entropy label smoothing"),
    NUMO(train, grad_clip, K_DOUBLE, "0", 0, 0, INFINITY, 1,
         "clip the global gradient norm (0 = off)"),

    KEY(run, dir, K_STR, "runs/default", "directory for logs and checkpoints"),
    CHOICE(run, device, K_ENUM, "auto", "cpu|cuda|auto", "where to compute"),
    KEY(run, tf32, K_BOOL, "false",
        "cuda: matrix products in TF32 tensor-core math (10-bit mantissa; faster)"),
    KEY(run, cuda_graph, K_BOOL, "true",
        "cuda: capture the training step as a CUDA Graph and replay it (one launch a step); "
        "off by itself with dropout or collectives over MPI"),
    NUM(run, threads, K_INT, "0", 0, 1024, "CPU threads per rank (0 = auto)"),
    NUM(run, log_every, K_INT, "50", 1, INT_MAX, "steps between progress lines"),
    NUM(run, checkpoint_every, K_INT, "0", 0, INT_MAX,
        "steps between checkpoints (0 = only at the end)"),
    NUM(run, keep, K_INT, "3", 1, 1000000, "checkpoints kept in run.dir"),
    KEY(run, resume, K_STR, "none", "none, auto (latest in run.dir) or a checkpoint path"),
    KEY(run, eval_every_epoch, K_BOOL, "true", "evaluate on the validation set after each epoch"),
    CHOICE(run, allreduce, K_ENUM, "blocking", "blocking|bucketed",
           "gradient all-reduce: one call after backward, or buckets overlapping backward"),
    NUM(run, bucket_kib, K_INT, "1024", 1, 1 << 22, "bucketed all-reduce: bucket size in KiB"),
    CHOICE(run, collectives, K_ENUM, "auto", "auto|nccl|mpi",
           "how ranks exchange: auto (NCCL for cuda when built with it, else MPI), nccl, or mpi "
           "(through host memory)"),
    NUM(run, comm_timeout_s, K_DOUBLE, "300", 1, 86400,
        "seconds a collective may wait for the other ranks before the job is ended"),
};

const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];
_Static_assert(sizeof config_keys / sizeof config_keys[0] <= CONFIG_MAX_KEYS,
               "raise CONFIG_MAX_KEYS");

size_t key_section_len(const struct key_spec *s) {
  return (size_t)(strchr(s->name, '.') - s->name);
}

int key_is_numeric(const struct key_spec *s) {
  return s->kind == K_INT || s->kind == K_LONG || s->kind == K_DOUBLE;
}

/* "[0, 1)", "(0, inf)", "[1, 1024]" */
void key_format_range(const struct key_spec *s, char *out, size_t len) {
  char hi[32];
  if (isinf(s->hi))
    snprintf(hi, sizeof hi, "inf");
  else
    snprintf(hi, sizeof hi, "%.15g", s->hi);
  snprintf(out, len, "%c%.15g, %s%c", s->lo_open ? '(' : '[', s->lo, hi, s->hi_open ? ')' : ']');
}

/* "a|b|c" -> "a, b, c" for error messages. */
void key_list_choices(const char *choices, char *out, size_t len) {
  size_t o = 0;
  for (const char *p = choices; *p && o + 3 < len; p++) {
    if (*p == '|') {
      out[o++] = ',';
      out[o++] = ' ';
    } else {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
}
