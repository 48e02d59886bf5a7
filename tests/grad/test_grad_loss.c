/* test_grad_loss.c — cross-entropy (torch.nn.functional.cross_entropy with
 * ignore_index, label_smoothing and mean reduction, or a sum over a fixed
 * divisor) against a float64 reference: loss, count, probs forward, and the
 * backward against central differences of the reference loss; plus one case
 * against values computed by PyTorch itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/grad/gradcheck.h"
#include "tests/testutil.h"

struct ce_case {
  int n, classes;
  const int32_t *labels;
  int ignore_index;
  float smoothing, divisor;
};

/* logits (n, classes) -> the scalar loss */
static void ce_ref(const double *z, double *loss, void *ud) {
  const struct ce_case *c = ud;
  double total = 0;
  int count = 0;
  for (int r = 0; r < c->n; r++) {
    const int y = c->labels[r];
    if (y == c->ignore_index || y < 0 || y >= c->classes) continue;
    const double *zr = z + (size_t)r * c->classes;
    double m = -INFINITY, s = 0, smooth = 0;
    for (int k = 0; k < c->classes; k++)
      m = fmax(m, zr[k]);
    for (int k = 0; k < c->classes; k++)
      s += exp(zr[k] - m);
    const double lse = m + log(s);
    for (int k = 0; k < c->classes; k++)
      smooth += lse - zr[k];
    total += (1 - c->smoothing) * (lse - zr[y]) + c->smoothing * smooth / c->classes;
    count++;
  }
  *loss = total / (c->divisor > 0 ? c->divisor : count);
}

/* Gradients start at this value so the test sees += rather than =. */
#define GRAD_INIT 0.5f

static void run_case(const char *name, struct ce_case c, float shift, int threads, uint64_t seed,
                     int want_count) {
  fprintf(stderr, "case %s\n", name);
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = threads};
  const size_t nz = (size_t)c.n * c.classes;
  float *z = malloc(nz * sizeof *z), *probs = malloc(nz * sizeof *probs);
  float *dz = malloc(nz * sizeof *dz);
  double *zd = malloc(nz * sizeof *zd), *num = malloc(nz * sizeof *num);
  gc_fill(z, nz, seed, 4.0f);
  /* Row 0 far up: exp(1000) overflows unless the max is removed. */
  for (int k = 0; k < c.classes; k++)
    z[k] += shift;
  for (size_t i = 0; i < nz; i++)
    zd[i] = z[i];

  float loss;
  int32_t count;
  double want;
  ops->cross_entropy_fwd(&ctx, c.n, c.classes, z, c.labels, c.ignore_index, c.smoothing, c.divisor,
                         probs, &loss, &count);
  ce_ref(zd, &want, &c);
  TU_CHECK(count == want_count);
  /* The kernel works in double per row; only the final rounding to float
   * remains: 1e-6 relative. */
  TU_CLOSE(loss, want, 1e-6, 1e-7);
  /* probs: exp of a double, rounded once; rows sum to 1. */
  for (int r = 0; r < c.n; r++) {
    double s = 0;
    for (int k = 0; k < c.classes; k++)
      s += probs[(size_t)r * c.classes + k];
    TU_CLOSE(s, 1.0, 0, 1e-5);
  }

  const float dloss = 1.75f; /* the upstream gradient, not 1, so it is used */
  for (size_t i = 0; i < nz; i++)
    dz[i] = GRAD_INIT;
  ops->cross_entropy_bwd(&ctx, c.n, c.classes, probs, c.labels, c.ignore_index, c.smoothing,
                         c.divisor, &count, &dloss, dz);
  for (size_t i = 0; i < nz; i++)
    dz[i] -= GRAD_INIT;
  const double w = dloss;
  gc_numeric_grad(ce_ref, zd, nz, 1, &w, &c, 1e-5, num);
  /* No reduction in the backward (probs - target, scaled): a few float
   * roundings of values <= 1.75, well inside gradcheck.h's 1e-4/1e-5. The
   * numeric side differentiates logits near 1000 at h = 1e-5, still accurate
   * to ~1e-8 in double. Ignored rows get exactly nothing. */
  TU_CHECK(gc_compare(name, dz, num, nz, 1e-4, 1e-5) == 0);
  for (int r = 0; r < c.n; r++)
    if (c.labels[r] == c.ignore_index)
      for (int k = 0; k < c.classes; k++)
        TU_CHECK(dz[(size_t)r * c.classes + k] == 0.0f);
  free(z), free(probs), free(dz), free(zd), free(num);
}

/* The same five rows as torch_case below, through the kernel. */
static const float torch_logits[5 * 4] = {0.5f,   -1.25f, 2.0f, 0.75f, 1.5f,  0.25f,  -0.5f,
                                          3.0f,   -2.0f,  0.0f, 1.0f,  0.5f,  0.125f, 0.375f,
                                          -0.75f, 1.75f,  3.5f, -1.0f, 0.25f, -0.25f};

/* Produced with PyTorch 2 (/usr/bin/python3), in float64:
 *   z = torch.tensor(torch_logits, dtype=torch.float64).view(5, 4).requires_grad_()
 *   l = F.cross_entropy(z, torch.tensor([2, -100, 0, 3, 1]), ignore_index=-100,
 *                       label_smoothing=0.1)            # mean over the 4 counted rows
 *   l.backward()                                         # z.grad below
 * and, for the captioning form (ignore <NULL> = 0, divide by N*T = 10):
 *   l2 = F.cross_entropy(z, torch.tensor([2, 0, 0, 3, 1]), ignore_index=0,
 *                        reduction='sum') / 10; l2.backward() */
static void torch_case(void) {
  fprintf(stderr, "case torch\n");
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = 2};
  static const int32_t labels1[5] = {2, -100, 0, 3, 1}, labels2[5] = {2, 0, 0, 3, 1};
  static const double loss1 = 2.2693001197352385, loss2 = 0.543452731662202;
  static const double grad1[5 * 4] = {0.029775710324996207,
                                      1.0329748778008241e-05,
                                      -0.06979396778529934,
                                      0.04000792771152512,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.0,
                                      -0.2251010105235619,
                                      0.03918522819313539,
                                      0.11725575516929003,
                                      0.06866002716113646,
                                      0.025886540815062288,
                                      0.03501413521096298,
                                      0.0071465033096476845,
                                      -0.06804717933567297,
                                      0.22665458234396918,
                                      -0.2286626638010001,
                                      0.0027806906807654724,
                                      -0.0007726092237345869};
  static const double grad2[5 * 4] = {0.014410284129998483,
                                      0.0025041318995112035,
                                      -0.035417587114119735,
                                      0.01850317108461005,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.0,
                                      0.012854616326024915,
                                      0.01650565408438519,
                                      0.005358601323859074,
                                      -0.034718871734269185,
                                      0.09316183293758767,
                                      -0.09896506552040003,
                                      0.003612276272306189,
                                      0.0021909563105061655};
  float probs[5 * 4], dz[5 * 4], loss;
  int32_t count;
  /* float32 kernel against float64 torch: the loss is rounded once (1e-6
   * relative); gradients are O(0.1) differences of float probs, ~1e-8
   * absolute error, so 1e-5 relative + 1e-7 absolute. */
  ops->cross_entropy_fwd(&ctx, 5, 4, torch_logits, labels1, -100, 0.1f, 0.0f, probs, &loss, &count);
  TU_CHECK(count == 4);
  TU_CLOSE(loss, loss1, 1e-6, 0);
  memset(dz, 0, sizeof dz);
  ops->cross_entropy_bwd(&ctx, 5, 4, probs, labels1, -100, 0.1f, 0.0f, &count, NULL, dz);
  TU_CHECK(gc_compare("torch grad", dz, grad1, 20, 1e-5, 1e-7) == 0);

  ops->cross_entropy_fwd(&ctx, 5, 4, torch_logits, labels2, 0, 0.0f, 10.0f, probs, &loss, &count);
  TU_CHECK(count == 3);
  TU_CLOSE(loss, loss2, 1e-6, 0);
  memset(dz, 0, sizeof dz);
  ops->cross_entropy_bwd(&ctx, 5, 4, probs, labels2, 0, 0.0f, 10.0f, &count, NULL, dz);
  TU_CHECK(gc_compare("torch grad divisor", dz, grad2, 20, 1e-5, 1e-7) == 0);
}

/* The training score: weight * loss, and argmax accuracy over counted rows,
 * first maximum on ties, added to what acc holds. Exact: counts. */
static void score_case(void) {
  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx ctx = {.threads = 2};
  static const float z[5 * 3] = {1, 3, 2, /* 1 */ 5, 5, 0, /* tie: 0 */ 0, 0, 9, /* 2 */
                                 7, 1, 1, /* 0 */ 2, 8, 1 /* 1 */};
  static const int32_t y[5] = {1, 1, 2, -1, 0}; /* right, wrong (tie), right, ignored, wrong */
  const float loss = 0.5f;
  double acc[3] = {1, 2, 3};
  ops->score(&ctx, 5, 3, z, y, -1, &loss, 4.0f, acc);
  TU_CHECK(acc[0] == 1 + 2.0 && acc[1] == 2 + 2.0 && acc[2] == 3 + 4.0);
}

int main(void) {
  static const int32_t plain[6] = {0, 4, 2, 2, 1, 3};
  static const int32_t ign[6] = {0, -100, 2, 2, -100, 3};
  /* captioning: <NULL> = 0 is ignored, the rest counts */
  static const int32_t cap[12] = {5, 7, 2, 0, 0, 0, 9, 2, 0, 0, 0, 0};
  /* a label out of range (7 >= classes) counts as ignored, as documented */
  static const int32_t bad[4] = {1, 7, -3, 2};
  run_case("plain", (struct ce_case){6, 5, plain, -100, 0.0f, 0.0f}, 0.0f, 1, 1, 6);
  run_case("ignore", (struct ce_case){6, 5, ign, -100, 0.0f, 0.0f}, 0.0f, 2, 2, 4);
  run_case("smoothing", (struct ce_case){6, 5, ign, -100, 0.1f, 0.0f}, 0.0f, 2, 3, 4);
  run_case("divisor", (struct ce_case){12, 11, cap, 0, 0.0f, 12.0f}, 0.0f, 2, 4, 5);
  run_case("divisor smoothing", (struct ce_case){12, 11, cap, 0, 0.1f, 12.0f}, 1000.0f, 1, 5, 5);
  run_case("shifted", (struct ce_case){6, 5, plain, -100, 0.1f, 0.0f}, 1000.0f, 2, 6, 6);
  run_case("out of range", (struct ce_case){4, 5, bad, -100, 0.0f, 0.0f}, 0.0f, 1, 7, 2);
  torch_case();

  const struct ops_backend *ops = ops_cpu();
  struct ops_ctx one = {.threads = 1}, two = {.threads = 2};

  /* Captioning vocabulary, many rows: 1 and 2 threads give the same bytes
   * (fixed row blocks, summed in order). */
  enum { N = 300, C = 1004 };
  float *z = malloc(sizeof(float) * N * C), *p1 = malloc(sizeof(float) * N * C);
  float *p2 = malloc(sizeof(float) * N * C);
  int32_t *labels = malloc(sizeof(int32_t) * N);
  gc_fill(z, (size_t)N * C, 11, 5.0f);
  for (int r = 0; r < N; r++)
    labels[r] = (r * 37) % C;
  float l1, l2;
  int32_t c1, c2;
  ops->cross_entropy_fwd(&one, N, C, z, labels, 0, 0.1f, 0.0f, p1, &l1, &c1);
  ops->cross_entropy_fwd(&two, N, C, z, labels, 0, 0.1f, 0.0f, p2, &l2, &c2);
  TU_CHECK(l1 == l2 && c1 == c2 && c1 == N - 1);
  TU_CHECK(memcmp(p1, p2, sizeof(float) * N * C) == 0);
  free(z), free(p1), free(p2), free(labels);

  /* Every row ignored: torch's mean is 0/0 = NaN and its gradient is 0; with
   * a divisor the loss is 0. */
  static const int32_t none[2] = {-100, -100};
  float zz[2 * 3] = {1, 2, 3, 4, 5, 6}, pz[2 * 3], dzz[2 * 3] = {0}, lz;
  int32_t cz;
  ops->cross_entropy_fwd(&one, 2, 3, zz, none, -100, 0.1f, 0.0f, pz, &lz, &cz);
  TU_CHECK(cz == 0 && isnan(lz));
  ops->cross_entropy_bwd(&one, 2, 3, pz, none, -100, 0.1f, 0.0f, &cz, NULL, dzz);
  for (int i = 0; i < 6; i++)
    TU_CHECK(dzz[i] == 0.0f);
  ops->cross_entropy_fwd(&one, 2, 3, zz, none, -100, 0.0f, 4.0f, pz, &lz, &cz);
  TU_CHECK(cz == 0 && lz == 0.0f);
  score_case();
  TU_DONE();
}
