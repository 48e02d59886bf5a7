/* keys.h — the configuration's keys, one table, for config.c's parser and
 * config_write.c's writer; private to src/config. */
#ifndef CTRAIN_CONFIG_KEYS_H
#define CTRAIN_CONFIG_KEYS_H

#include <stddef.h>

#include "config/config.h"

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

/* A bound on the number of keys, for per-key arrays on the stack. */
enum { CONFIG_MAX_KEYS = 128 };

extern const struct key_spec config_keys[];
extern const size_t config_nkeys;

/* The length of "section" in "section.key". */
size_t key_section_len(const struct key_spec *s);
int key_is_numeric(const struct key_spec *s);
/* "[0, 1)", "(0, inf)", "[1, 1024]" */
void key_format_range(const struct key_spec *s, char *out, size_t len);
/* A '|'-separated choice list as "a, b, c". */
void key_list_choices(const char *choices, char *out, size_t len);

#endif
