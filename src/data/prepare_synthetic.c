/* The embedded default dataset: one filled or outlined shape per image, the
 * class being the shape, drawn in a random colour that contrasts with a random
 * gradient background, at a random position and size, plus pixel noise.
 * Every image is a pure function of (seed, split, index), so a larger set
 * extends a smaller one. */
#include <math.h>

#include "data/dataset.h"
#include "data/prepare.h"
#include "kernels/ops_shared.h"

enum { SIDE = DATASET_SIDE, PLANE = SIDE * SIDE, NCLASSES = 10, SUB = 4 };

static const char *const class_names[NCLASSES] = {"circle",  "square",  "triangle", "cross",
                                                  "ring",    "diamond", "frame",    "xcross",
                                                  "stripes", "checker"};

/* Streams of one image: fixed draw indices, noise after them. */
enum {
  R_LABEL,
  R_RADIUS,
  R_CX,
  R_CY,
  R_ANGLE,
  R_BG0,
  R_BG1 = R_BG0 + 3,
  R_FG = R_BG1 + 3,
  R_NOISE = 64
};

/* Membership of point (u, v), in units of the shape radius, v pointing down. */
static int inside(int cls, float u, float v) {
  float au = fabsf(u), av = fabsf(v), r2 = u * u + v * v;
  switch (cls) {
  case 0:
    return r2 <= 1.0f;
  case 1:
    return au <= 0.8f && av <= 0.8f;
  case 2:
    return v >= -0.85f && v <= 0.85f && au <= 0.95f * (v + 0.85f) / 1.7f;
  case 3:
    return (au <= 0.3f && av <= 1.0f) || (av <= 0.3f && au <= 1.0f);
  case 4:
    return r2 <= 1.0f && r2 >= 0.3f;
  case 5:
    return au + av <= 1.0f;
  case 6:
    return au <= 0.85f && av <= 0.85f && (au >= 0.45f || av >= 0.45f);
  case 7:
    return au <= 0.85f && av <= 0.85f && (fabsf(u - v) <= 0.4f || fabsf(u + v) <= 0.4f);
  case 8:
    return au <= 0.85f && av <= 0.85f && ((int)floorf((v + 0.85f) * 2.94f) % 2 == 0);
  default:
    return au <= 0.85f && av <= 0.85f &&
           (((int)floorf((u + 0.85f) * 2.35f) + (int)floorf((v + 0.85f) * 2.35f)) % 2 == 0);
  }
}

static float dist3(const float *a, const float *b) {
  return sqrtf((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
               (a[2] - b[2]) * (a[2] - b[2]));
}

static void draw(uint64_t seed, uint64_t ctr, uint8_t *chw, int32_t *label) {
  int cls = (int)(ops_rng_bits(seed, ctr, R_LABEL) % NCLASSES);
  float radius = 7.0f + 6.0f * ops_rng_uniform(seed, ctr, R_RADIUS);
  float cx = radius + (SIDE - 2 * radius) * ops_rng_uniform(seed, ctr, R_CX);
  float cy = radius + (SIDE - 2 * radius) * ops_rng_uniform(seed, ctr, R_CY);
  float ang = 6.2831853f * ops_rng_uniform(seed, ctr, R_ANGLE), ca = cosf(ang), sa = sinf(ang);
  float bg0[3], bg1[3], fg[3];
  for (int c = 0; c < 3; c++) {
    bg0[c] = 255.0f * ops_rng_uniform(seed, ctr, R_BG0 + c);
    bg1[c] = 255.0f * ops_rng_uniform(seed, ctr, R_BG1 + c);
  }
  /* Redraw the colour until it stands out from both background ends; the
   * fallback is the inverse of the background's mean. */
  int ok = 0;
  for (uint64_t t = 0; t < 16 && !ok; t++) {
    for (int c = 0; c < 3; c++)
      fg[c] = 255.0f * ops_rng_uniform(seed, ctr, R_FG + 3 * t + c);
    ok = dist3(fg, bg0) > 110.0f && dist3(fg, bg1) > 110.0f;
  }
  if (!ok)
    for (int c = 0; c < 3; c++)
      fg[c] = 255.0f - 0.5f * (bg0[c] + bg1[c]);
  for (int y = 0; y < SIDE; y++)
    for (int x = 0; x < SIDE; x++) {
      int hits = 0;
      for (int sy = 0; sy < SUB; sy++)
        for (int sx = 0; sx < SUB; sx++) {
          float px = x + (sx + 0.5f) / SUB, py = y + (sy + 0.5f) / SUB;
          hits += inside(cls, (px - cx) / radius, (py - cy) / radius);
        }
      float a = (float)hits / (SUB * SUB);
      float g = 0.5f + ((x - 15.5f) * ca + (y - 15.5f) * sa) / 45.0f; /* gradient position */
      for (int c = 0; c < 3; c++) {
        uint64_t k = R_NOISE + (uint64_t)(3 * (y * SIDE + x) + c);
        float noise = 32.0f * ops_rng_uniform(seed, ctr, k) - 16.0f;
        float bg = bg0[c] + (bg1[c] - bg0[c]) * g;
        float v = bg + (fg[c] - bg) * a + noise;
        chw[c * PLANE + y * SIDE + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrintf(v));
      }
    }
  *label = cls;
}

static int generate(struct image_split *s, long n, uint64_t seed, uint64_t base, struct ct_err *e) {
  int rc = image_split_alloc(s, n, e);
  for (long i = 0; !rc && i < n; i++)
    draw(seed, base + (uint64_t)i, s->images + (size_t)i * DATASET_IMAGE_BYTES, &s->labels[i]);
  return rc;
}

int prepare_synthetic(const char *out, int n_train, int n_test, int val, uint64_t seed,
                      struct ct_err *e) {
  if (n_train < 1 || n_test < 0)
    return err_set(e, CT_ERR_USAGE, "%s: synthetic sizes train=%d test=%d must be positive", out,
                   n_train, n_test);
  struct image_split train = {0}, test = {0};
  /* Test images come from a disjoint counter range, so they do not depend on n_train. */
  int rc = generate(&train, n_train, seed, 0, e);
  if (!rc) rc = generate(&test, n_test, seed, (uint64_t)1 << 40, e);
  if (rc) {
    image_split_free(&train);
    image_split_free(&test);
    return rc;
  }
  return prepare_finish(out, NCLASSES, class_names, &train, &test, val, seed, e);
}
