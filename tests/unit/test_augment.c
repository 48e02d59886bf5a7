/* Augmentation properties: conversion, flip involution, crop offsets within
 * the padding, identity rotation, rotation fill, cutout, normalisation, and
 * purity in (key, counter). */
#include <stdint.h>
#include <string.h>

#include "data/augment.h"
#include "testutil.h"

enum { N = 3 * 32 * 32 };

static uint8_t img[N];

/* A pattern with no repeated 32-pixel rows or columns, so shifts are unique. */
static void make_image(void) {
  uint64_t s = 12345;
  for (int i = 0; i < N; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    img[i] = (uint8_t)(s >> 56);
  }
}

static struct augment_cfg only(unsigned flags) {
  struct augment_cfg c = augment_defaults();
  c.flags = flags;
  return c;
}

static void test_convert_and_normalise(void) {
  float out[N];
  struct augment_cfg c = only(0);
  augment_image(&c, img, out, NULL, NULL, 1, 2);
  int exact = 1;
  for (int i = 0; i < N; i++)
    exact &= out[i] == img[i] / 255.0f;
  TU_CHECK(exact);
  double mean[3] = {0.4914, 0.4822, 0.4465}, std[3] = {0.2023, 0.1994, 0.2010};
  augment_image(&c, img, out, mean, std, 1, 2);
  for (int i = 0; i < N; i += 97)
    TU_CLOSE(out[i], (img[i] / 255.0 - mean[i / 1024]) / std[i / 1024], 1e-5, 1e-5);
}

static void test_flip(void) {
  float out[N], back[N];
  uint8_t q[N];
  struct augment_cfg c = only(AUG_FLIP);
  int flipped = 0, kept = 0;
  for (uint64_t k = 0; k < 64; k++) {
    augment_image(&c, img, out, NULL, NULL, 9, k);
    int is_id = 1, is_flip = 1;
    for (int i = 0; i < N; i++) {
      int x = i % 32, m = i - x + 31 - x;
      is_id &= out[i] == img[i] / 255.0f;
      is_flip &= out[i] == img[m] / 255.0f;
    }
    TU_CHECK(is_id || is_flip);
    kept += is_id;
    if (!is_flip) continue;
    /* Flipping the flipped image with the same draw restores it. */
    for (int i = 0; i < N; i++)
      q[i] = (uint8_t)lrintf(out[i] * 255.0f);
    augment_image(&c, q, back, NULL, NULL, 9, k);
    int same = 1;
    for (int i = 0; i < N; i++)
      same &= back[i] == img[i] / 255.0f;
    TU_CHECK(same);
    flipped++;
  }
  TU_CHECK(flipped > 16 && kept > 16);
}

static void test_crop(void) {
  float out[N];
  struct augment_cfg c = only(AUG_CROP);
  int seen_min = 0, seen_max = 0;
  for (uint64_t k = 0; k < 300; k++) {
    augment_image(&c, img, out, NULL, NULL, 3, k);
    int found = 0;
    for (int dy = -c.crop_pad; dy <= c.crop_pad && !found; dy++)
      for (int dx = -c.crop_pad; dx <= c.crop_pad && !found; dx++) {
        int ok = 1;
        for (int i = 0; i < N && ok; i++) {
          int ch = i / 1024, y = i / 32 % 32 + dy, x = i % 32 + dx;
          float want =
              y >= 0 && y < 32 && x >= 0 && x < 32 ? img[ch * 1024 + y * 32 + x] / 255.0f : 0.0f;
          ok = out[i] == want;
        }
        if (ok) {
          found = 1;
          seen_min |= dx == -c.crop_pad;
          seen_max |= dy == c.crop_pad;
        }
      }
    TU_CHECK(found);
  }
  TU_CHECK(seen_min && seen_max);
}

static void test_rotate(void) {
  float out[N];
  struct augment_cfg c = only(AUG_ROTATE);
  c.rotate_deg = 0.0f;
  augment_image(&c, img, out, NULL, NULL, 5, 6);
  int exact = 1;
  for (int i = 0; i < N; i++)
    exact &= out[i] == img[i] / 255.0f;
  TU_CHECK(exact);
  /* A white image keeps its inside white and gets zero-filled corners. */
  uint8_t white[N];
  memset(white, 255, sizeof white);
  c.rotate_deg = 30.0f;
  int corners = 0;
  for (uint64_t k = 0; k < 20; k++) {
    augment_image(&c, white, out, NULL, NULL, 5, k);
    for (int ch = 0; ch < 3; ch++)
      TU_CLOSE(out[ch * 1024 + 16 * 32 + 16], 1.0, 1e-6, 1e-6);
    corners += out[0] < 0.5f;
    for (int i = 0; i < N; i++)
      TU_CHECK(out[i] >= 0.0f && out[i] <= 1.0f + 1e-6f);
  }
  TU_CHECK(corners > 10);
}

static void test_cutout(void) {
  float out[N];
  double mean[3] = {0.25, 0.5, 0.75}, std[3] = {0.5, 0.5, 0.5};
  struct augment_cfg c = only(AUG_CUTOUT);
  c.cutout_p = 1.0f;
  int full = 0;
  for (uint64_t k = 0; k < 50; k++) {
    augment_image(&c, img, out, mean, std, 7, k);
    /* After normalisation the hole is exactly 0 in every channel. */
    int y0 = 32, y1 = -1, x0 = 32, x1 = -1, count = 0;
    for (int p = 0; p < 1024; p++)
      if (out[p] == 0.0f && out[1024 + p] == 0.0f && out[2048 + p] == 0.0f) {
        int y = p / 32, x = p % 32;
        y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1, x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
        count++;
      }
    int h = y1 - y0 + 1, w = x1 - x0 + 1;
    TU_CHECK(count == h * w && h >= 8 && h <= 16 && w >= 8 && w <= 16);
    full += h == 16 && w == 16;
  }
  TU_CHECK(full > 5);
  /* Without normalisation the hole is black. */
  augment_image(&c, img, out, NULL, NULL, 7, 0);
  int holes = 0;
  for (int p = 0; p < 1024; p++)
    holes += out[p] == 0.0f && out[1024 + p] == 0.0f && out[2048 + p] == 0.0f;
  TU_CHECK(holes >= 64);
  c.cutout_p = 0.0f;
  augment_image(&c, img, out, NULL, NULL, 7, 0);
  int exact = 1;
  for (int i = 0; i < N; i++)
    exact &= out[i] == img[i] / 255.0f;
  TU_CHECK(exact);
}

static void test_pure(void) {
  float a[N], b[N];
  struct augment_cfg c = only(AUG_CROP | AUG_FLIP | AUG_ROTATE | AUG_CUTOUT);
  augment_image(&c, img, a, NULL, NULL, 11, 12);
  augment_image(&c, img, b, NULL, NULL, 11, 12);
  TU_CHECK(!memcmp(a, b, sizeof a));
  int differ = 0;
  for (uint64_t k = 13; k < 20; k++) {
    augment_image(&c, img, b, NULL, NULL, 11, k);
    differ += memcmp(a, b, sizeof a) != 0;
  }
  TU_CHECK(differ >= 6);
}

int main(void) {
  make_image();
  test_convert_and_normalise();
  test_flip();
  test_crop();
  test_rotate();
  test_cutout();
  test_pure();
  TU_DONE();
}
