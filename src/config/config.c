#include "config/config.h"

#include "config/keys.h"

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

static int section_is(const struct key_spec *s, const char *section) {
  size_t n = key_section_len(s);
  return strncmp(s->name, section, n) == 0 && section[n] == '\0';
}

static const struct key_spec *find_key(const char *section, const char *key) {
  for (size_t i = 0; i < config_nkeys; i++)
    if (section_is(&config_keys[i], section) &&
        strcmp(config_keys[i].name + key_section_len(&config_keys[i]) + 1, key) == 0)
      return &config_keys[i];
  return NULL;
}

static int section_known(const char *section) {
  for (size_t i = 0; i < config_nkeys; i++)
    if (section_is(&config_keys[i], section)) return 1;
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

/* The section of the config_keys closest to `section`, as a pointer to its first key. */
static const struct key_spec *closest_section(const char *section) {
  const struct key_spec *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < config_nkeys; i++) {
    size_t d = levenshtein(section, strlen(section), config_keys[i].name,
                           key_section_len(&config_keys[i]));
    if (d < best_d) best = &config_keys[i], best_d = d;
  }
  return best;
}

static const struct key_spec *closest_key(const char *section, const char *key) {
  /* A right key under the wrong header is the likeliest mistake, and edit distance
   * would rank it behind any same-section key of similar length. */
  for (size_t i = 0; i < config_nkeys; i++)
    if (strcmp(config_keys[i].name + key_section_len(&config_keys[i]) + 1, key) == 0)
      return &config_keys[i];
  char full[2 * LEV_MAX + 2];
  snprintf(full, sizeof full, "%s.%s", section, key);
  const struct key_spec *best = NULL;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < config_nkeys; i++) {
    size_t d = levenshtein(full, strlen(full), config_keys[i].name, strlen(config_keys[i].name));
    if (d < best_d) best = &config_keys[i], best_d = d;
  }
  return best;
}

static int unknown_name(const char *section, const char *key, const char *where, struct ct_err *e) {
  if (!section_known(section)) {
    const struct key_spec *s = closest_section(section);
    return err_set(e, CT_ERR_USAGE, "%s: unknown section '%.64s' (did you mean '%.*s'?)", where,
                   section, (int)key_section_len(s), s->name);
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

static int bad_value(const struct key_spec *s, const char *value, const char *where,
                     struct ct_err *e, const char *why) {
  return err_set(e, CT_ERR_USAGE, "%s: %s: '%.80s' %s", where, s->name, value, why);
}

static int out_of_range(const struct key_spec *s, const char *v, const char *where,
                        struct ct_err *e) {
  char range[80], why[128];
  key_format_range(s, range, sizeof range);
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
  key_list_choices(s->choices, allowed, sizeof allowed);
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
      key_list_choices(s->choices, allowed, sizeof allowed);
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
  for (size_t i = 0; i < config_nkeys; i++) {
    struct ct_err e;
    /* Catches a config_keys line whose kind does not match its field's type. */
    CT_CHECK(kind_size(config_keys[i].kind) == 0 ||
             kind_size(config_keys[i].kind) == config_keys[i].size);
    /* Every numeric key has a range, and an integer's fits its type (closed ends). */
    CT_CHECK(!key_is_numeric(&config_keys[i]) || config_keys[i].lo < config_keys[i].hi);
    CT_CHECK(config_keys[i].kind != K_INT ||
             (config_keys[i].lo >= INT_MIN && config_keys[i].hi <= INT_MAX &&
              !config_keys[i].lo_open && !config_keys[i].hi_open));
    CT_CHECK(set_key(c, &config_keys[i], config_keys[i].def, "default", &e) == CT_OK);
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
  int seen_line[CONFIG_MAX_KEYS] = {0};
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
    size_t i = (size_t)(spec - config_keys);
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
