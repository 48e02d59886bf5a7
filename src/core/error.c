#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int err_set(struct ct_err *e, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->code = code;
  e->everywhere = 0;
  return code;
}

int err_everywhere(struct ct_err *e) {
  e->everywhere = 1;
  return e->code;
}

_Noreturn void ct_out_of_memory(const char *what, size_t bytes) {
  fprintf(stderr, "ctrain: out of memory: %zu bytes for %s\n", bytes, what);
  exit(CT_ERR_RUNTIME);
}

_Noreturn void ct_panic(const char *file, int line, const char *what) {
  fprintf(stderr, "ctrain: internal error at %s:%d: %s\n", file, line, what);
  abort();
}
