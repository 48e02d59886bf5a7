/* test_viz.c — the canvas, the PNG writer (read back with libpng) and the
 * learning-curve plot on a metrics.jsonl written here. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "viz/plot.h"
#include "viz/png.h"

static char dir[] = "/tmp/test_viz_XXXXXX";

static const struct rgb white = {255, 255, 255}, red = {255, 0, 0};

static int same(const uint8_t *p, struct rgb c) {
  return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

static const uint8_t *at(const struct canvas *c, int x, int y) {
  return c->px + ((size_t)y * c->w + x) * 3;
}

/* Decodes a PNG as 8-bit RGB; NULL when libpng cannot. */
static uint8_t *read_png(const char *path, int *w, int *h) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path)) return NULL;
  img.format = PNG_FORMAT_RGB;
  uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
  if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
    png_image_free(&img);
    free(buf);
    return NULL;
  }
  *w = (int)img.width;
  *h = (int)img.height;
  return buf;
}

static void test_canvas(void) {
  struct canvas c;
  struct ct_err e = {0};
  TU_CHECK(canvas_init(&c, 0, 5, white, &e) == CT_ERR_RUNTIME);
  TU_CHECK(canvas_init(&c, 40, 30, white, &e) == CT_OK);
  TU_CHECK(same(at(&c, 39, 29), white));

  /* A diagonal from far outside to far outside: only the visible part is
   * drawn, every pixel of it, and nothing crashes. */
  canvas_line(&c, -1e9, -1e9, 1e9, 1e9, red);
  int diag = 0, other = 0;
  for (int y = 0; y < 30; y++)
    for (int x = 0; x < 40; x++)
      if (same(at(&c, x, y), red)) *(x == y ? &diag : &other) += 1;
  TU_CHECK(diag == 30 && other == 0);
  canvas_line(&c, 0, 0, INFINITY, 5, red); /* non-finite: ignored */

  canvas_fill(&c, white);
  canvas_line(&c, 5, 20, 5, 20, red); /* a point */
  TU_CHECK(same(at(&c, 5, 20), red));
  canvas_rect(&c, 10, 10, 5, 4, red);
  TU_CHECK(same(at(&c, 10, 10), red) && same(at(&c, 14, 13), red) && same(at(&c, 12, 12), white));
  canvas_fill_rect(&c, 35, 25, 100, 100, red); /* clipped at the corner */
  TU_CHECK(same(at(&c, 39, 29), red) && same(at(&c, 34, 29), white));

  /* Viridis: the map's ends, clamping and NaN. */
  struct rgb lo = colormap_viridis(0), hi = colormap_viridis(1), nan = colormap_viridis(NAN);
  TU_CHECK(lo.r == 0x44 && lo.g == 0x01 && lo.b == 0x54);
  TU_CHECK(hi.r == 0xfd && hi.g == 0xe7 && hi.b == 0x25);
  TU_CHECK(memcmp(&nan, &lo, sizeof lo) == 0);
  struct rgb over = colormap_viridis(7);
  TU_CHECK(memcmp(&over, &hi, sizeof hi) == 0);

  /* Blit: each source pixel a 3x3 block. */
  const uint8_t src[2 * 3] = {1, 2, 3, 4, 5, 6};
  canvas_fill(&c, white);
  canvas_blit(&c, 1, 1, src, 2, 1, 3);
  TU_CHECK(same(at(&c, 1, 1), (struct rgb){1, 2, 3}) && same(at(&c, 3, 3), (struct rgb){1, 2, 3}));
  TU_CHECK(same(at(&c, 4, 1), (struct rgb){4, 5, 6}) && same(at(&c, 7, 4), white));

  /* Text: widths, ink inside the cell only, unknown characters as a box. */
  TU_CHECK(text_width("", 1) == 0 && text_width("ab", 1) == 11 && text_width("ab", 2) == 22);
  canvas_fill(&c, white);
  TU_CHECK(canvas_text(&c, 0, 0, "8", red, 1) == 5);
  int ink = 0, outside = 0;
  for (int y = 0; y < 30; y++)
    for (int x = 0; x < 40; x++)
      if (same(at(&c, x, y), red)) *(x < 5 && y < 7 ? &ink : &outside) += 1;
  TU_CHECK(ink > 10 && outside == 0);
  canvas_fill(&c, white);
  canvas_text(&c, 0, 0, "\x7f", red, 1);
  TU_CHECK(same(at(&c, 0, 0), red) && same(at(&c, 4, 6), red) && same(at(&c, 2, 3), white));
  canvas_free(&c);
}

static void test_png_round_trip(void) {
  struct canvas c;
  struct ct_err e = {0};
  TU_CHECK(canvas_init(&c, 37, 23, white, &e) == CT_OK);
  for (int y = 0; y < c.h; y++)
    for (int x = 0; x < c.w; x++)
      canvas_pixel(&c, x, y, (struct rgb){(uint8_t)(7 * x), (uint8_t)(11 * y), (uint8_t)(x ^ y)});
  char path[256];
  snprintf(path, sizeof path, "%s/round.png", dir);
  TU_CHECK(png_write(path, &c, &e) == CT_OK);
  int w = 0, h = 0;
  uint8_t *back = read_png(path, &w, &h);
  TU_CHECK(back && w == 37 && h == 23);
  if (back && w == 37 && h == 23) TU_CHECK(memcmp(back, c.px, (size_t)w * h * 3) == 0);
  free(back);

  snprintf(path, sizeof path, "%s/no/such/dir.png", dir);
  TU_CHECK(png_write(path, &c, &e) == CT_ERR_RUNTIME);
  TU_CHECK(strstr(e.msg, path) != NULL);
  canvas_free(&c);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  TU_CHECK(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* Pixels of exactly this colour in the image. */
static long count(const uint8_t *img, int w, int h, struct rgb c) {
  long n = 0;
  for (long i = 0; i < (long)w * h; i++)
    n += same(img + 3 * i, c);
  return n;
}

static void test_plot(void) {
  char run[256], metrics[300], out[300];
  snprintf(run, sizeof run, "%s/run", dir);
  TU_CHECK(mkdir(run, 0777) == 0);
  snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
  snprintf(out, sizeof out, "%s/curves.png", run);

  /* Four epochs of 100 steps, a train row every 10, a val row per epoch and
   * the final test row; epoch 2 was logged twice (a resume from step 200),
   * with a diverged (null) loss in the abandoned copy. */
  FILE *f = fopen(metrics, "w");
  TU_CHECK(f != NULL);
  if (!f) return;
  for (int ep = 0; ep < 4; ep++) {
    for (int s = 10; s <= 100; s += 10) {
      int step = ep * 100 + s;
      fprintf(f,
              "{\"split\":\"train\",\"epoch\":%d,\"step\":%d,\"loss\":%.4f,\"acc\":0.5,"
              "\"lr\":0.001,\"images_per_s\":100}\n",
              ep, step, 2.3 / (1 + step / 100.0));
      if (ep == 2 && s == 50) {
        fputs("{\"split\":\"train\",\"epoch\":2,\"step\":260,\"loss\":null}\n", f);
        fputs("{\"split\":\"train\",\"epoch\":2,\"step\":210,\"loss\":0.8}\n", f);
      }
    }
    fprintf(f, "{\"split\":\"val\",\"epoch\":%d,\"step\":%d,\"loss\":%.4f,\"acc\":%.3f}\n", ep + 1,
            (ep + 1) * 100, 2.0 / (1 + ep), 0.3 + 0.15 * ep);
  }
  fputs("\n{\"split\":\"test\",\"epoch\":4,\"step\":400,\"loss\":0.6,\"acc\":0.71}\n", f);
  fclose(f);

  struct ct_err e = {0};
  TU_CHECK(viz_plot(run, NULL, &e) == CT_OK);
  if (e.code) fprintf(stderr, "%s\n", e.msg);
  int w = 0, h = 0;
  uint8_t *img = read_png(out, &w, &h);
  TU_CHECK(img && w == PLOT_W && h == PLOT_H);
  if (img) {
    /* the train line (blue), validation markers (orange), accuracy (green) */
    TU_CHECK(count(img, w, h, (struct rgb){31, 119, 180}) > 300);
    TU_CHECK(count(img, w, h, (struct rgb){255, 127, 14}) > 4 * 40);
    TU_CHECK(count(img, w, h, (struct rgb){44, 160, 44}) > 4 * 40);
  }
  free(img);

  snprintf(out, sizeof out, "%s/elsewhere.png", dir);
  TU_CHECK(viz_plot(run, out, &e) == CT_OK);
  TU_CHECK(access(out, R_OK) == 0);

  /* A malformed line: the error names the file and the line. */
  const char *bad[] = {
      "{\"split\":\"train\",\"epoch\":0,\"step\":1,\"loss\":1}\n"
      "{\"split\":\"train\",\"epoch\":0,\"step\":2,\"loss\":1}\n{\"split\":\"tr",
      "{\"split\":\"train\",\"epoch\":0,\"step\":1,\"loss\":1}\n\n"
      "{\"split\":\"train\",\"epoch\":0,\"loss\":1}\n",
      "{\"split\":\"train\",\"epoch\":0,\"step\":1,\"loss\":1}\n[1,2]\n\n",
      "{\"split\":\"val\",\"epoch\":0,\"step\":1,\"loss\":1}\n{\"split\":\"val\",\"epoch\":0,"
      "\"step\":1,\"loss\":\"high\"}\n",
  };
  const int line[] = {3, 3, 2, 2};
  for (int i = 0; i < 4; i++) {
    write_file(metrics, bad[i]);
    char where[320];
    snprintf(where, sizeof where, "%s:%d:", metrics, line[i]);
    TU_CHECK(viz_plot(run, NULL, &e) == CT_ERR_USAGE);
    TU_CHECK(strstr(e.msg, where) != NULL);
    if (!strstr(e.msg, where)) fprintf(stderr, "case %d: %s\n", i, e.msg);
  }

  write_file(metrics, "{\"split\":\"test\",\"epoch\":1,\"step\":9,\"loss\":1,\"acc\":0.5}\n");
  TU_CHECK(viz_plot(run, NULL, &e) == CT_ERR_USAGE && strstr(e.msg, "no train or val rows"));

  /* Only train rows: the accuracy panel says there is nothing to show. */
  write_file(metrics, "{\"split\":\"train\",\"epoch\":0,\"step\":5,\"loss\":2}\n");
  TU_CHECK(viz_plot(run, NULL, &e) == CT_OK);

  snprintf(run, sizeof run, "%s/missing", dir);
  TU_CHECK(viz_plot(run, NULL, &e) == CT_ERR_USAGE && strstr(e.msg, "missing/metrics.jsonl"));
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_canvas();
  test_png_round_trip();
  test_plot();
  if (!tu_failures) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TU_CHECK(system(cmd) == 0);
  } else {
    fprintf(stderr, "files kept in %s\n", dir);
  }
  TU_DONE();
}
