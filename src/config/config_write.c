/* config_write.c — a configuration as INI text (the checkpoint's copy,
 * `ctrain keys`), and which key two configurations first differ in. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/keys.h"
#include "core/error.h"

static const void *field_of(const struct config *c, const struct key_spec *s) {
  return (const char *)c + s->offset;
}

int config_diff(const struct config *a, const struct config *b, char *keys, size_t len) {
  int n = 0;
  size_t at = 0;
  if (keys && len) keys[0] = '\0';
  for (size_t i = 0; i < config_nkeys; i++) {
    const struct key_spec *s = &config_keys[i];
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
    if (same) continue;
    if (keys && at < len) {
      int w = snprintf(keys + at, len - at, "%s%s", n ? ", " : "", s->name);
      at += w > 0 ? (size_t)w : 0;
    }
    n++;
  }
  return n;
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
  for (size_t i = 0; i < config_nkeys; i++) {
    const struct key_spec *s = &config_keys[i];
    size_t sl = key_section_len(s);
    if (i == 0 || sl != key_section_len(&config_keys[i - 1]) ||
        strncmp(s->name, config_keys[i - 1].name, sl))
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
  for (size_t i = 0; i < config_nkeys; i++) {
    const struct key_spec *s = &config_keys[i];
    fprintf(f, "  %-24s %-6s default %-14s %s", s->name, kind_name(s), *s->def ? s->def : "\"\"",
            s->help);
    if (s->choices) {
      char allowed[256];
      key_list_choices(s->choices, allowed, sizeof allowed);
      fprintf(f, " [%s]", allowed);
    }
    if (key_is_numeric(s)) {
      char range[80];
      key_format_range(s, range, sizeof range);
      fprintf(f, " (range %s)", range);
    }
    fputc('\n', f);
  }
}
