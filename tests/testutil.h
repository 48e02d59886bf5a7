/* testutil.h — tiny assertion helpers for the C tests: a failed check prints
 * where and what, and the test exits non-zero at the end. */
#ifndef CTRAIN_TESTUTIL_H
#define CTRAIN_TESTUTIL_H

#include <math.h>
#include <stdio.h>

static int tu_failures;

#define TU_CHECK(cond)                                                                             \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                   \
      tu_failures++;                                                                               \
    }                                                                                              \
  } while (0)

/* |got - want| <= atol + rtol * |want| */
#define TU_CLOSE(got, want, rtol, atol)                                                            \
  do {                                                                                             \
    double g_ = (got), w_ = (want);                                                                \
    if (!(fabs(g_ - w_) <= (atol) + (rtol)*fabs(w_))) {                                            \
      fprintf(stderr, "%s:%d: %s = %.9g, want %.9g (rtol %g, atol %g)\n", __FILE__, __LINE__,      \
              #got, g_, w_, (double)(rtol), (double)(atol));                                       \
      tu_failures++;                                                                               \
    }                                                                                              \
  } while (0)

#define TU_DONE()                                                                                  \
  do {                                                                                             \
    if (tu_failures) fprintf(stderr, "%d check(s) failed\n", tu_failures);                        \
    return tu_failures ? 1 : 0;                                                                    \
  } while (0)

#endif
