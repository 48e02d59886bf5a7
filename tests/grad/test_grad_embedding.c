/* test_grad_embedding.c — embedding lookup (exact copy) and its backward
 * with repeated indices against central differences of a float64 lookup,
 * bitwise the same for 1 and 2 threads; the positional encoding against the
 * MODELS.md §4 formula evaluated independently in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

enum { VOCAB = 7, D = 40, N = 23 };

/* ids 0..5 with repeats (3 six times); id 6 never used */
static const int32_t idx[N] = {3, 1, 3, 0, 5, 5, 2, 3, 4, 1, 0, 5, 3, 2, 4, 4, 1, 0, 3, 5, 2, 3, 1};

/* table (VOCAB, D) -> y (N, D) */
static void emb_ref(const double *table, double *y, void *ud) {
  (void)ud;
  for (int i = 0; i < N; i++)
    memcpy(y + i * D, table + idx[i] * D, D * sizeof *y);
}

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

static void check_embedding(void) {
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx one = {.threads = 1}, two = {.threads = 2};
  float table[VOCAB * D], w[N * D], y[N * D], g1[VOCAB * D], g2[VOCAB * D];
  double td[VOCAB * D], wd[N * D], num[VOCAB * D];
  gc_fill(table, VOCAB * D, 1, 1.0f);
  gc_fill(w, N * D, 2, 1.0f);
  for (int i = 0; i < VOCAB * D; i++)
    td[i] = table[i], g1[i] = g2[i] = GRAD_INIT;
  for (int i = 0; i < N * D; i++)
    wd[i] = w[i];

  ops->embedding_fwd(&two, N, D, idx, table, y);
  for (int i = 0; i < N; i++)
    TU_CHECK(memcmp(y + i * D, table + idx[i] * D, sizeof *y * D) == 0);

  ops->embedding_bwd(&one, N, D, idx, w, g1);
  ops->embedding_bwd(&two, N, D, idx, w, g2);
  /* Each row is summed in index order by one thread whatever the count. */
  TU_CHECK(memcmp(g1, g2, sizeof g1) == 0);
  for (int i = 0; i < VOCAB * D; i++)
    g1[i] -= GRAD_INIT;
  gc_numeric_grad(emb_ref, td, VOCAB * D, N * D, wd, NULL, 1e-5, num);
  /* Sums of at most N float terms: gradcheck.h's 1e-4/1e-5 budget. */
  TU_CHECK(gc_compare("dtable", g1, num, VOCAB * D, 1e-4, 1e-5) == 0);
  /* The unused row receives nothing. */
  for (int j = 0; j < D; j++)
    TU_CHECK(g1[6 * D + j] == 0.0f);
}

/* MODELS.md §4: P[i, j] = sin(i 10000^(-j/D)) for even j,
 * cos(i 10000^(-(j-1)/D)) for odd j. */
static double posenc_formula(int i, int j, int d) {
  return j % 2 == 0 ? sin(i * pow(10000.0, -(double)j / d))
                    : cos(i * pow(10000.0, -(double)(j - 1) / d));
}

static void check_posenc(int b, int t, int d, int threads) {
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = threads};
  const size_t n = (size_t)b * t * d;
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  double *want = malloc(n * sizeof *want);
  gc_fill(x, n, (uint64_t)d * 31 + t, 1.0f);
  for (int bb = 0; bb < b; bb++)
    for (int i = 0; i < t; i++)
      for (int j = 0; j < d; j++) {
        const size_t at = ((size_t)bb * t + i) * d + j;
        want[at] = x[at] + posenc_formula(i, j, d);
      }
  ops->posenc_fwd(&ctx, b, t, d, x, y);
  /* P rounded once to float, then x + P rounded once, |x + P| <= 2:
   * 2 * 6e-8 each, so 1e-6 absolute has margin; angles reach t - 1 rad,
   * where double sin/cos are exact to ~1e-15. */
  TU_CHECK(gc_compare("posenc", y, want, n, 0, 1e-6) == 0);
  /* In place gives the same bytes. */
  ops->posenc_fwd(&ctx, b, t, d, x, x);
  TU_CHECK(memcmp(x, y, n * sizeof *x) == 0);
  free(x), free(y), free(want);
}

int main(void) {
  check_embedding();
  check_posenc(2, 17, 12, 1);
  check_posenc(3, 16, 7, 2);   /* odd width: the last column is a sine */
  check_posenc(2, 16, 128, 2); /* ViT: 16 patches, D = 128 */
  check_posenc(4, 64, 256, 2); /* captioning: T = 16, but longer to reach big angles */
  TU_DONE();
}
