/* gradcheck.h — how every op's backward is checked.
 *
 * The op runs in float32; its reference is a float64 forward written in the
 * test. The scalar L = sum_i w_i y_i (w fixed random weights, so every output
 * element matters with a different weight) is differentiated by central
 * differences in float64 on the reference, which is accurate to ~1e-8 with
 * h = 1e-5. The op's float32 backward (fed dy = w) must match that within a
 * tolerance the test states: float32 rounding of O(1) values over reductions
 * of length K is ~K * 6e-8 relative, so 1e-4 relative + 1e-5 absolute covers
 * K up to ~1000 with margin. */
#ifndef CTRAIN_GRADCHECK_H
#define CTRAIN_GRADCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/ops_shared.h"

/* Higham's gamma_k = k u / (1 - k u), u = 2^-24: the float32 rounding bound
 * of a k-term sum or dot product, relative to the sum of the magnitudes. */
static inline double gc_gamma(double k) {
  double u = ldexp(1.0, -24);
  return k * u / (1.0 - k * u);
}

/* |got - want| <= gc_gamma(k) * absref element by element, where absref is
 * the float64 sum of the magnitudes of each element's terms; the first few
 * misses are printed. Returns how many miss. */
static inline int gc_cmp_bound(const char *what, const float *got, const double *want,
                               const double *absref, size_t n, double k) {
  int bad = 0;
  double g = gc_gamma(k);
  for (size_t i = 0; i < n; i++) {
    double tol = g * absref[i];
    if (!(fabs(got[i] - want[i]) <= tol)) {
      if (bad < 5)
        fprintf(stderr, "%s[%zu]: got %.9g want %.9g (tol %.3g)\n", what, i, got[i], want[i], tol);
      bad++;
    }
  }
  if (bad) fprintf(stderr, "%s: %d of %zu elements out of tolerance\n", what, bad, n);
  return bad;
}

/* Deterministic fill in [-scale, scale) from a seeded counter stream. */
static inline void gc_fill(float *x, size_t n, uint64_t seed, float scale) {
  for (size_t i = 0; i < n; i++)
    x[i] = (2.0f * ops_rng_uniform(seed, 0, i) - 1.0f) * scale;
}

/* Reference: writes y (ny doubles) from the inputs; `ud` is the test's. */
typedef void (*gc_ref_fn)(const double *x, double *y, void *ud);

/* d/dx_j sum_i w_i f(x)_i by central differences, for every j < nx. */
static inline void gc_numeric_grad(gc_ref_fn f, double *x, size_t nx, size_t ny, const double *w,
                                   void *ud, double h, double *grad) {
  double *yp = malloc(ny * sizeof *yp), *ym = malloc(ny * sizeof *ym);
  for (size_t j = 0; j < nx; j++) {
    double x0 = x[j];
    x[j] = x0 + h;
    f(x, yp, ud);
    x[j] = x0 - h;
    f(x, ym, ud);
    x[j] = x0;
    double s = 0;
    for (size_t i = 0; i < ny; i++)
      s += w[i] * (yp[i] - ym[i]);
    grad[j] = s / (2 * h);
  }
  free(yp);
  free(ym);
}

/* Counts elements outside |got - want| <= atol + rtol |want|, reporting the
 * first few with `what`. */
static inline int gc_compare(const char *what, const float *got, const double *want, size_t n,
                             double rtol, double atol) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]))) {
      if (bad < 5)
        fprintf(stderr, "%s[%zu]: got %.9g want %.9g (rtol %g atol %g)\n", what, i, got[i], want[i],
                rtol, atol);
      bad++;
    }
  }
  if (bad) fprintf(stderr, "%s: %d of %zu elements out of tolerance\n", what, bad, n);
  return bad;
}

#endif
