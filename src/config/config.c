#include "config/config.h"

#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind { K_INT, K_LONG, K_U64, K_DOUBLE, K_BOOL, K_STR, K_ENUM, K_FLAGS };

struct key_spec {
  const char *name; /* "section.key" */
  enum kind kind;
  size_t offset, size;
  const char *def;     /* parsed by config_defaults, so the help listing shows the truth */
  const char *choices; /* K_ENUM: allowed values; K_FLAGS: bit i is choice i; '|'-separated */
  const char *help;
  /* Numeric keys: the allowed range, checked at parse time; an open end excludes itself. */
  double lo, hi;
  int lo_open, hi_open;
};

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
static const struct key_spec schema[] = {
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
};

enum { NUM_KEYS = sizeof schema / sizeof schema[0] };

static size_t section_len(const struct key_spec *s) {
  return (size_t)(strchr(s->name, '.') - s->name);
}

static int section_is(const struct key_spec *s, const char *section) {
  size_t n = section_len(s);
  return strncmp(s->name, section, n) == 0 && section[n] == '\0';
}

static const struct key_spec *find_key(const char *section, const char *key) {
  for (size_t i = 0; i < NUM_KEYS; i++)
    if (section_is(&schema[i], section) &&
        strcmp(schema[i].name + section_len(&schema[i]) + 1, key) == 0)
      return &schema[i];
  return NULL;
}

static int section_known(const char *section) {
  for (size_t i = 0; i < NUM_KEYS; i++)
    if (section_is(&schema[i], section)) return 1;
  return 0;
}

enum { LEV_MAX = 64 };

/* Names longer than LEV_MAX are compared by their prefix: a typo that long gets a poor
 * suggestion, not a wrong answer about validity. */
static size_t levenshtein(const char *a, size_t na, const char *b, size_t nb) {
  size_t row[LEV_MAX + 1];
  if (na > LEV_MAX) na = LEV_MAX;
  if (nb > LEV_MAX) nb = LEV_MAX;
  for (size_t j = 0; j <= nb; j++)
    row[j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[nb];
}

/* The section of the schema closest to `section`, as a pointer to its first key. */
static const struct key_spec *closest_section(const char *section) {
  const struct key_spec *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < NUM_KEYS; i++) {
    size_t d = levenshtein(section, strlen(section), schema[i].name, section_len(&schema[i]));
    if (d < best_d) best = &schema[i], best_d = d;
  }
  return best;
}

static const struct key_spec *closest_key(const char *section, const char *key) {
  /* A right key under the wrong header is the likeliest mistake, and edit distance
   * would rank it behind any same-section key of similar length. */
  for (size_t i = 0; i < NUM_KEYS; i++)
    if (strcmp(schema[i].name + section_len(&schema[i]) + 1, key) == 0) return &schema[i];
  char full[2 * LEV_MAX + 2];
  snprintf(full, sizeof full, "%s.%s", section, key);
  const struct key_spec *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < NUM_KEYS; i++) {
    size_t d = levenshtein(full, strlen(full), schema[i].name, strlen(schema[i].name));
    if (d < best_d) best = &schema[i], best_d = d;
  }
  return best;
}

static int unknown_name(const char *section, const char *key, const char *where, struct ct_err *e) {
  if (!section_known(section)) {
    const struct key_spec *s = closest_section(section);
    return err_set(e, CT_ERR_USAGE, "%s: unknown section '%.64s' (did you mean '%.*s'?)", where,
                   section, (int)section_len(s), s->name);
  }
  return err_set(e, CT_ERR_USAGE, "%s: unknown key '%.64s.%.64s' (did you mean '%s'?)", where,
                 section, key, closest_key(section, key)->name);
}

/* Index of `value` in the '|'-separated `choices`, or -1. */
static int choice_index(const char *choices, const char *value, size_t value_len) {
  int i = 0;
  for (const char *p = choices;; i++) {
    size_t n = strcspn(p, "|");
    if (n == value_len && strncmp(p, value, n) == 0) return i;
    if (!p[n]) return -1;
    p += n + 1;
  }
}

/* "a|b|c" -> "a, b, c" for error messages. */
static void list_choices(const char *choices, char *out, size_t len) {
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

static int bad_value(const struct key_spec *s, const char *value, const char *where,
                     struct ct_err *e, const char *why) {
  return err_set(e, CT_ERR_USAGE, "%s: %s: '%.80s' %s", where, s->name, value, why);
}

static int is_numeric(const struct key_spec *s) {
  return s->kind == K_INT || s->kind == K_LONG || s->kind == K_DOUBLE;
}

/* "[0, 1)", "(0, inf)", "[1, 1024]" */
static void format_range(const struct key_spec *s, char *out, size_t len) {
  char hi[32];
  if (isinf(s->hi))
    snprintf(hi, sizeof hi, "inf");
  else
    snprintf(hi, sizeof hi, "%.15g", s->hi);
  snprintf(out, len, "%c%.15g, %s%c", s->lo_open ? '(' : '[', s->lo, hi, s->hi_open ? ')' : ']');
}

static int out_of_range(const struct key_spec *s, const char *v, const char *where,
                        struct ct_err *e) {
  char range[80], why[128];
  format_range(s, range, sizeof range);
  snprintf(why, sizeof why, "is out of range %s", range);
  return bad_value(s, v, where, e, why);
}

static int parse_bool(const char *v, int *out) {
  static const char *const truths[] = {"true", "yes", "on", "1"};
  static const char *const lies[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(v, truths[i]) == 0) return *out = 1, 1;
    if (strcasecmp(v, lies[i]) == 0) return *out = 0, 1;
  }
  return 0;
}

/* Integers go through long long so one range check serves every width. */
static int parse_integer(const struct key_spec *s, const char *v, long long *out, const char *where,
                         struct ct_err *e) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (end == v || isspace((unsigned char)*v)) return bad_value(s, v, where, e, "is not an integer");
  if (*end) {
    char why[160];
    snprintf(why, sizeof why, "is not an integer (trailing '%.32s')", end);
    return bad_value(s, v, where, e, why);
  }
  if (errno == ERANGE || x < (long long)s->lo || x > (long long)s->hi)
    return out_of_range(s, v, where, e);
  *out = x;
  return CT_OK;
}

static int parse_u64(const struct key_spec *s, const char *v, unsigned long long *out,
                     const char *where, struct ct_err *e) {
  char *end;
  errno = 0;
  /* strtoull negates "-1" into a huge value instead of failing. */
  if (!isdigit((unsigned char)*v) && *v != '+')
    return bad_value(s, v, where, e, "is not a non-negative integer");
  unsigned long long x = strtoull(v, &end, 10);
  if (end == v) return bad_value(s, v, where, e, "is not a non-negative integer");
  if (*end) {
    char why[160];
    snprintf(why, sizeof why, "is not a non-negative integer (trailing '%.32s')", end);
    return bad_value(s, v, where, e, why);
  }
  if (errno == ERANGE) return bad_value(s, v, where, e, "is out of range for a 64-bit integer");
  *out = x;
  return CT_OK;
}

static int parse_double(const struct key_spec *s, const char *v, double *out, const char *where,
                        struct ct_err *e) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (end == v || isspace((unsigned char)*v)) return bad_value(s, v, where, e, "is not a number");
  if (*end) {
    char why[160];
    snprintf(why, sizeof why, "is not a number (trailing '%.32s')", end);
    return bad_value(s, v, where, e, why);
  }
  if (!isfinite(x)) return bad_value(s, v, where, e, "is not a finite number");
  *out = x;
  return CT_OK;
}

static int parse_flags(const struct key_spec *s, const char *v, unsigned *out, const char *where,
                       struct ct_err *e) {
  char allowed[256];
  list_choices(s->choices, allowed, sizeof allowed);
  if (strcmp(v, "none") == 0) return *out = 0, CT_OK;
  unsigned bits = 0;
  for (const char *p = v;;) {
    while (isspace((unsigned char)*p))
      p++;
    size_t n = strcspn(p, ",");
    size_t trimmed = n;
    while (trimmed && isspace((unsigned char)p[trimmed - 1]))
      trimmed--;
    int i = choice_index(s->choices, p, trimmed);
    if (i < 0)
      return err_set(e, CT_ERR_USAGE, "%s: %s: '%.*s' is not one of %s (or none on its own)", where,
                     s->name, (int)(trimmed < 64 ? trimmed : 64), p, allowed);
    bits |= 1u << i;
    if (!p[n]) break;
    p += n + 1;
  }
  *out = bits;
  return CT_OK;
}

static int set_key(struct config *c, const struct key_spec *s, const char *v, const char *where,
                   struct ct_err *e) {
  char *field = (char *)c + s->offset;
  long long x;
  int rc;
  switch (s->kind) {
  case K_INT:
    if ((rc = parse_integer(s, v, &x, where, e))) return rc;
    *(int *)field = (int)x;
    return CT_OK;
  case K_LONG:
    if ((rc = parse_integer(s, v, &x, where, e))) return rc;
    *(long *)field = (long)x;
    return CT_OK;
  case K_U64:
    return parse_u64(s, v, (unsigned long long *)field, where, e);
  case K_DOUBLE: {
    double d = 0;
    if ((rc = parse_double(s, v, &d, where, e))) return rc;
    if (d < s->lo || d > s->hi || (s->lo_open && d == s->lo) || (s->hi_open && d == s->hi))
      return out_of_range(s, v, where, e);
    *(double *)field = d;
    return CT_OK;
  }
  case K_BOOL:
    if (!parse_bool(v, (int *)field))
      return bad_value(s, v, where, e, "is not a boolean (true/false, yes/no, on/off, 1/0)");
    return CT_OK;
  case K_FLAGS:
    return parse_flags(s, v, (unsigned *)field, where, e);
  case K_ENUM:
    if (choice_index(s->choices, v, strlen(v)) < 0) {
      char allowed[256], why[300];
      list_choices(s->choices, allowed, sizeof allowed);
      snprintf(why, sizeof why, "is not one of %s", allowed);
      return bad_value(s, v, where, e, why);
    }
    break;
  case K_STR:
    for (const char *p = v; *p; p++)
      if (iscntrl((unsigned char)*p))
        return err_set(e, CT_ERR_USAGE, "%s: %s: value contains a control character", where,
                       s->name);
    break;
  }
  size_t n = strlen(v);
  if (n >= s->size)
    return err_set(e, CT_ERR_USAGE, "%s: %s: value is %zu characters, longer than the limit of %zu",
                   where, s->name, n, s->size - 1);
  memset(field, 0, s->size);
  memcpy(field, v, n);
  return CT_OK;
}

/* The C type each kind stores into; 0 for character arrays of any size. */
static size_t kind_size(enum kind k) {
  switch (k) {
  case K_INT:
  case K_BOOL:
    return sizeof(int);
  case K_LONG:
    return sizeof(long);
  case K_U64:
    return sizeof(unsigned long long);
  case K_DOUBLE:
    return sizeof(double);
  case K_FLAGS:
    return sizeof(unsigned);
  case K_STR:
  case K_ENUM:
    break;
  }
  return 0;
}

void config_defaults(struct config *c) {
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < NUM_KEYS; i++) {
    struct ct_err e;
    /* Catches a schema line whose kind does not match its field's type. */
    CT_CHECK(kind_size(schema[i].kind) == 0 || kind_size(schema[i].kind) == schema[i].size);
    /* Every numeric key has a range, and an integer's fits its type (closed ends). */
    CT_CHECK(!is_numeric(&schema[i]) || schema[i].lo < schema[i].hi);
    CT_CHECK(schema[i].kind != K_INT || (schema[i].lo >= INT_MIN && schema[i].hi <= INT_MAX &&
                                         !schema[i].lo_open && !schema[i].hi_open));
    CT_CHECK(set_key(c, &schema[i], schema[i].def, "default", &e) == CT_OK);
  }
}

int config_set_value(struct config *c, const char *section, const char *key, const char *value,
                     const char *where, struct ct_err *e) {
  const struct key_spec *s = find_key(section, key);
  if (!s) return unknown_name(section, key, where, e);
  return set_key(c, s, value, where, e);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

int config_set(struct config *c, const char *assignment, struct ct_err *e) {
  char buf[8192];
  if (strlen(assignment) >= sizeof buf)
    return err_set(e, CT_ERR_USAGE, "--set: assignment longer than %zu characters", sizeof buf - 1);
  strcpy(buf, assignment);
  char *eq = strchr(buf, '=');
  char *dot = eq ? memchr(buf, '.', (size_t)(eq - buf)) : NULL;
  if (!dot)
    return err_set(e, CT_ERR_USAGE, "--set: expected section.key=value, got '%.80s'", assignment);
  *eq = *dot = '\0';
  return config_set_value(c, trim(buf), trim(dot + 1), trim(eq + 1), "--set", e);
}

/* True if `s` is only whitespace, possibly followed by a comment. */
static int blank_or_comment(const char *s) {
  while (isspace((unsigned char)*s))
    s++;
  return !*s || *s == '#' || *s == ';';
}

/* Unquotes/uncomments the value starting at `v` in place; NULL plus `*why` on error. */
static char *parse_value(char *v, const char **why) {
  v = trim(v);
  char q = *v;
  if (q == '"' || q == '\'') {
    char *out = v, *p = v + 1;
    for (; *p && *p != q; p++) {
      if (q == '"' && *p == '\\') {
        p++;
        if (*p != '"' && *p != '\\')
          return *why = "unknown escape in \"...\" (only \\\" and \\\\)", NULL;
      }
      *out++ = *p;
    }
    if (!*p) return *why = "unterminated quote", NULL;
    if (!blank_or_comment(p + 1)) return *why = "unexpected text after the closing quote", NULL;
    *out = '\0';
    return v;
  }
  for (char *p = v; *p; p++)
    if ((*p == '#' || *p == ';') && (p == v || isspace((unsigned char)p[-1]))) {
      *p = '\0';
      break;
    }
  return trim(v);
}

static int valid_name(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return 0;
  return 1;
}

static int load_stream(struct config *c, FILE *f, const char *path, struct ct_err *e) {
  int seen_line[NUM_KEYS] = {0};
  char section[64] = "";
  char *line = NULL;
  size_t cap = 0;
  int rc = CT_OK;
  for (int lineno = 1; rc == CT_OK && getline(&line, &cap, f) >= 0; lineno++) {
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", path, lineno);
    char *s = line;
    if (lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* editors' UTF-8 BOM */
    s = trim(s);
    if (!*s || *s == '#' || *s == ';') continue;
    if (*s == '[') {
      char *close = strchr(s, ']');
      if (!close || !blank_or_comment(close + 1)) {
        rc = err_set(e, CT_ERR_USAGE, "%s: malformed section header '%.80s'", where, s);
        continue;
      }
      *close = '\0';
      char *name = trim(s + 1);
      if (!valid_name(name) || strlen(name) >= sizeof section) {
        rc = err_set(e, CT_ERR_USAGE, "%s: malformed section name '%.80s'", where, name);
      } else if (!section_known(name)) {
        rc = unknown_name(name, "", where, e);
      } else {
        strcpy(section, name);
      }
      continue;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = err_set(e, CT_ERR_USAGE,
                   "%s: malformed line '%.80s' (expected key = value or [section])", where, s);
      continue;
    }
    *eq = '\0';
    char *key = trim(s);
    if (!valid_name(key)) {
      rc = err_set(e, CT_ERR_USAGE, "%s: malformed key '%.80s'", where, key);
      continue;
    }
    if (!*section) {
      rc = err_set(e, CT_ERR_USAGE, "%s: key '%.80s' before any [section] header", where, key);
      continue;
    }
    const char *why = NULL;
    char *value = parse_value(eq + 1, &why);
    if (!value) {
      rc = err_set(e, CT_ERR_USAGE, "%s: %s.%s: %s", where, section, key, why);
      continue;
    }
    const struct key_spec *spec = find_key(section, key);
    if (!spec) {
      rc = unknown_name(section, key, where, e);
      continue;
    }
    size_t i = (size_t)(spec - schema);
    if (seen_line[i]) {
      rc = err_set(e, CT_ERR_USAGE, "%s: duplicate key '%s' (first set on line %d)", where,
                   spec->name, seen_line[i]);
      continue;
    }
    seen_line[i] = lineno;
    rc = set_key(c, spec, value, where, e);
  }
  if (rc == CT_OK && ferror(f))
    rc = err_set(e, CT_ERR_USAGE, "%s: cannot read: %s", path, strerror(errno));
  free(line);
  return rc;
}

int config_load_file(struct config *c, const char *path, struct ct_err *e) {
  if (strlen(path) >= sizeof c->source)
    return err_set(e, CT_ERR_USAGE, "config path longer than %zu characters", sizeof c->source - 1);
  FILE *f = fopen(path, "r");
  if (!f) return err_set(e, CT_ERR_USAGE, "%s: cannot open: %s", path, strerror(errno));
  /* Parse into a copy so a bad file cannot leave a half-applied config behind. */
  struct config *tmp = malloc(sizeof *tmp);
  if (!tmp) {
    fclose(f);
    return err_set(e, CT_ERR_RUNTIME, "out of memory for the configuration");
  }
  *tmp = *c;
  int rc = load_stream(tmp, f, path, e);
  fclose(f);
  if (rc == CT_OK) {
    strcpy(tmp->source, path);
    *c = *tmp;
  }
  free(tmp);
  return rc;
}

int config_load_string(struct config *c, const char *text, const char *origin, struct ct_err *e) {
  FILE *f = fmemopen((void *)text, strlen(text), "r");
  if (!f) return err_set(e, CT_ERR_RUNTIME, "%s: cannot read the stored configuration", origin);
  struct config *tmp = malloc(sizeof *tmp);
  if (!tmp) {
    fclose(f);
    return err_set(e, CT_ERR_RUNTIME, "out of memory for the configuration");
  }
  *tmp = *c;
  int rc = load_stream(tmp, f, origin, e);
  fclose(f);
  if (rc == CT_OK) *c = *tmp;
  free(tmp);
  return rc;
}

static const void *field_of(const struct config *c, const struct key_spec *s) {
  return (const char *)c + s->offset;
}

const char *config_diff(const struct config *a, const struct config *b) {
  for (size_t i = 0; i < NUM_KEYS; i++) {
    const struct key_spec *s = &schema[i];
    const void *x = field_of(a, s), *y = field_of(b, s);
    int same;
    switch (s->kind) {
    case K_DOUBLE:
      same = *(const double *)x == *(const double *)y;
      break;
    case K_STR:
    case K_ENUM:
      same = strcmp(x, y) == 0;
      break;
    default: /* integers of s->size bytes */
      same = memcmp(x, y, s->size) == 0;
      break;
    }
    if (!same) return s->name;
  }
  return NULL;
}

/* snprintf-style appender: counts the full length even once the buffer is full. */
struct out {
  char *buf;
  size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->n < o->len ? o->len - o->n : 0;
  int k = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
  va_end(ap);
  CT_CHECK(k >= 0);
  o->n += (size_t)k;
}

/* The shortest text that reads back to the same double, so 0.1 stays "0.1", with
 * whole numbers in plain digits (10000, not 1e+04) and exponents unpadded (1e-8). */
static void put_double(struct out *o, double x) {
  char tmp[40];
  if (x > -1e15 && x < 1e15 && x == (double)(long long)x) {
    snprintf(tmp, sizeof tmp, "%.0f", x);
  } else {
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(tmp, sizeof tmp, "%.*g", prec, x);
      if (strtod(tmp, NULL) == x) break;
    }
    char *exp = strchr(tmp, 'e');
    if (exp) snprintf(exp, sizeof tmp - (size_t)(exp - tmp), "e%d", atoi(exp + 1));
  }
  put(o, "%s", tmp);
}

static int needs_quotes(const char *v) {
  if (!*v || isspace((unsigned char)*v) || *v == '"' || *v == '\'') return 1;
  if (isspace((unsigned char)v[strlen(v) - 1])) return 1;
  for (const char *p = v + 1; *p; p++)
    if ((*p == '#' || *p == ';') && isspace((unsigned char)p[-1])) return 1;
  return *v == '#' || *v == ';';
}

static void put_string(struct out *o, const char *v) {
  if (!needs_quotes(v)) {
    put(o, "%s", v);
    return;
  }
  put(o, "\"");
  for (const char *p = v; *p; p++)
    put(o, "%s%c", *p == '"' || *p == '\\' ? "\\" : "", *p);
  put(o, "\"");
}

static void put_value(struct out *o, const struct config *c, const struct key_spec *s) {
  const void *x = field_of(c, s);
  switch (s->kind) {
  case K_INT:
    put(o, "%d", *(const int *)x);
    break;
  case K_LONG:
    put(o, "%ld", *(const long *)x);
    break;
  case K_U64:
    put(o, "%llu", *(const unsigned long long *)x);
    break;
  case K_DOUBLE:
    put_double(o, *(const double *)x);
    break;
  case K_BOOL:
    put(o, "%s", *(const int *)x ? "true" : "false");
    break;
  case K_FLAGS: {
    unsigned bits = *(const unsigned *)x;
    if (!bits) put(o, "none");
    const char *sep = "";
    const char *p = s->choices;
    for (unsigned i = 0; *p; i++) {
      size_t n = strcspn(p, "|");
      if (bits & (1u << i)) {
        put(o, "%s%.*s", sep, (int)n, p);
        sep = ",";
      }
      p += n + (p[n] != '\0');
    }
    break;
  }
  case K_STR:
  case K_ENUM:
    put_string(o, x);
    break;
  }
}

int config_write(const struct config *c, char *buf, size_t len) {
  struct out o = {buf, len, 0};
  if (len) buf[0] = '\0';
  for (size_t i = 0; i < NUM_KEYS; i++) {
    const struct key_spec *s = &schema[i];
    size_t sl = section_len(s);
    if (i == 0 || sl != section_len(&schema[i - 1]) || strncmp(s->name, schema[i - 1].name, sl))
      put(&o, "%s[%.*s]\n", i ? "\n" : "", (int)sl, s->name);
    put(&o, "%s = ", s->name + sl + 1);
    put_value(&o, c, s);
    put(&o, "\n");
  }
  CT_CHECK(o.n <= INT_MAX);
  return (int)o.n;
}

static const char *kind_name(const struct key_spec *s) {
  static const char *const names[] = {
      [K_INT] = "int",   [K_LONG] = "int",   [K_U64] = "uint",  [K_DOUBLE] = "float",
      [K_BOOL] = "bool", [K_STR] = "string", [K_ENUM] = "enum", [K_FLAGS] = "list",
  };
  return names[s->kind];
}

void config_print_keys(FILE *f) {
  for (size_t i = 0; i < NUM_KEYS; i++) {
    const struct key_spec *s = &schema[i];
    fprintf(f, "  %-24s %-6s default %-14s %s", s->name, kind_name(s), *s->def ? s->def : "\"\"",
            s->help);
    if (s->choices) {
      char allowed[256];
      list_choices(s->choices, allowed, sizeof allowed);
      fprintf(f, " [%s]", allowed);
    }
    if (is_numeric(s)) {
      char range[80];
      format_range(s, range, sizeof range);
      fprintf(f, " (range %s)", range);
    }
    fputc('\n', f);
  }
}

#define REQUIRE(cond, ...)                                                                         \
  do {                                                                                             \
    if (!(cond)) return err_set(e, CT_ERR_USAGE, "invalid config: " __VA_ARGS__);                  \
  } while (0)

/* Single keys' ranges are checked as they are parsed; these are the rules between keys. */
int config_validate(const struct config *c, struct ct_err *e) {
  const struct cfg_model *m = &c->model;
  REQUIRE(*m->name, "model.name is not set (e.g. attn_cnn)");
  REQUIRE(m->dim % m->heads == 0, "model.dim = %d is not divisible by model.heads = %d", m->dim,
          m->heads);
  const struct cfg_train *t = &c->train;
  REQUIRE(t->base_momentum <= t->max_momentum,
          "train.base_momentum = %g is above train.max_momentum = %g", t->base_momentum,
          t->max_momentum);
  REQUIRE(t->eta_min <= t->lr, "train.eta_min = %g, must be in [0, train.lr]", t->eta_min);
  const struct cfg_run *r = &c->run;
  REQUIRE(*r->dir, "run.dir is empty");
  REQUIRE(*r->resume, "run.resume is empty (use none, auto or a checkpoint path)");
  return CT_OK;
}
