/* error.h — errors are values: a function that can fail on input fills a
 * `struct ct_err` with a one-line message naming the file, dataset or key,
 * and returns its code. Only src/cli decides how the process ends. */
#ifndef CTRAIN_ERROR_H
#define CTRAIN_ERROR_H

#include <stddef.h>

enum { CT_OK = 0, CT_ERR_RUNTIME = 1, CT_ERR_USAGE = 2 };

struct ct_err {
  int code;
  char msg[1024];
  /* Set (err_everywhere) when every rank failed together after a collective
   * decision: the ranks then end cleanly, rank 0 saying why, instead of
   * one aborting the others. */
  int everywhere;
};

/* Sets the error (printf-style) and returns `code`. */
int err_set(struct ct_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Marks e (already set) as failed on every rank; returns its code. */
int err_everywhere(struct ct_err *e);

/* Invariant check for programming errors (never for user input). */
#define CT_CHECK(cond)                                                                             \
  do {                                                                                             \
    if (!(cond)) ct_panic(__FILE__, __LINE__, #cond);                                              \
  } while (0)

_Noreturn void ct_panic(const char *file, int line, const char *what);

/* For the few allocations made where no error can be returned (the graph's
 * tables while layer calls build a model): says what could not be had,
 * and exits with CT_ERR_RUNTIME, not as an internal error. */
_Noreturn void ct_out_of_memory(const char *what, size_t bytes);

#endif
