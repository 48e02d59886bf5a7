#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_rank;

void log_set_rank(int rank) { log_rank = rank; }


void log_info(const char *fmt, ...) {
  if (log_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
}

void log_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (log_rank > 0)
    fprintf(stderr, "ctrain[rank %d]: ", log_rank);
  else
    fputs("ctrain: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}
