/* plot.c — learning curves from metrics.jsonl. */
#include "viz/plot.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "viz/png.h"

struct series {
  double *x, *y;
  long n, cap;
};

struct curves {
  struct series train_loss; /* (step, loss) */
  struct series val_loss;   /* (step, loss) */
  struct series val_acc;    /* (epoch, accuracy in %) */
};

/* A resumed run appends to the same file, so rows from the step (or epoch)
 * it resumed at come twice; the later ones are what the run went on from, so
 * they replace every earlier point at or after their x. */
static int series_add(struct series *s, double x, double y, const char *file, struct ct_err *e) {
  while (s->n > 0 && s->x[s->n - 1] >= x)
    s->n--;
  if (s->n == s->cap) {
    long cap = s->cap ? 2 * s->cap : 256;
    double *nx = realloc(s->x, (size_t)cap * sizeof *nx);
    if (nx) s->x = nx;
    double *ny = nx ? realloc(s->y, (size_t)cap * sizeof *ny) : NULL;
    if (!ny) return err_set(e, CT_ERR_RUNTIME, "%s: out of memory reading metrics", file);
    s->y = ny;
    s->cap = cap;
  }
  s->x[s->n] = x;
  s->y[s->n] = y;
  s->n++;
  return CT_OK;
}

static void curves_free(struct curves *cv) {
  struct series *all[] = {&cv->train_loss, &cv->val_loss, &cv->val_acc};
  for (int i = 0; i < 3; i++) {
    free(all[i]->x);
    free(all[i]->y);
  }
}

/* JSON null (what metrics.c writes for a non-finite value) reads as NaN. */
static double number_or_nan(const json_t *v) {
  return json_is_null(v) ? NAN : json_number_value(v);
}

static int add_row(const json_t *o, const char *file, long line, struct curves *cv,
                   struct ct_err *e) {
  if (!json_is_object(o)) return err_set(e, CT_ERR_USAGE, "%s:%ld: not a JSON object", file, line);
  const json_t *split = json_object_get(o, "split"), *epoch = json_object_get(o, "epoch"),
               *step = json_object_get(o, "step"), *loss = json_object_get(o, "loss"),
               *acc = json_object_get(o, "acc");
  if (!json_is_string(split))
    return err_set(e, CT_ERR_USAGE, "%s:%ld: 'split' must be a string", file, line);
  if (!json_is_integer(epoch) || !json_is_integer(step))
    return err_set(e, CT_ERR_USAGE, "%s:%ld: 'epoch' and 'step' must be integers", file, line);
  if (!json_is_number(loss) && !json_is_null(loss))
    return err_set(e, CT_ERR_USAGE, "%s:%ld: 'loss' must be a number or null", file, line);
  if (acc && !json_is_number(acc) && !json_is_null(acc))
    return err_set(e, CT_ERR_USAGE, "%s:%ld: 'acc' must be a number or null", file, line);
  const char *s = json_string_value(split);
  double x = (double)json_integer_value(step), l = number_or_nan(loss);
  if (strcmp(s, "train") == 0) return series_add(&cv->train_loss, x, l, file, e);
  if (strcmp(s, "val") != 0) return CT_OK; /* the test row is not a curve */
  if (series_add(&cv->val_loss, x, l, file, e)) return e->code;
  if (!acc) return CT_OK;
  return series_add(&cv->val_acc, (double)json_integer_value(epoch), 100.0 * number_or_nan(acc),
                    file, e);
}

static int read_metrics(const char *path, struct curves *cv, struct ct_err *e) {
  FILE *f = fopen(path, "r");
  if (!f) return err_set(e, CT_ERR_USAGE, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t cap = 0;
  long line = 0;
  int rc = CT_OK;
  while (!rc && getline(&buf, &cap, f) >= 0) {
    line++;
    if (strspn(buf, " \t\r\n") == strlen(buf)) continue; /* an empty line holds no row */
    json_error_t jerr;
    json_t *o = json_loads(buf, 0, &jerr);
    if (!o)
      rc = err_set(e, CT_ERR_USAGE, "%s:%ld: not valid JSON: %s", path, line, jerr.text);
    else
      rc = add_row(o, path, line, cv, e);
    json_decref(o);
  }
  if (!rc && ferror(f)) rc = err_set(e, CT_ERR_RUNTIME, "%s: read error", path);
  free(buf);
  fclose(f);
  if (!rc && cv->train_loss.n == 0 && cv->val_loss.n == 0)
    rc = err_set(e, CT_ERR_USAGE, "%s: no train or val rows to plot", path);
  return rc;
}

/* --- drawing -------------------------------------------------------------- */

static const struct rgb white = {255, 255, 255}, black = {0, 0, 0}, grid = {225, 225, 225},
                        frame = {90, 90, 90}, blue = {31, 119, 180}, orange = {255, 127, 14},
                        green = {44, 160, 44};

/* One axis: the data's range widened to whole multiples of a 1-2-5 tick
 * step (about five ticks), as matplotlib's default locator does. */
struct axis {
  double lo, hi, step;
  int decimals; /* for the tick labels */
};

static struct axis make_axis(double lo, double hi, int integer) {
  struct axis a;
  if (!(lo <= hi)) lo = 0, hi = 1; /* no finite data at all */
  if (hi - lo <= 1e-12 * fmax(1.0, fabs(hi))) {
    double pad = integer ? 1.0 : (lo != 0 ? 0.5 * fabs(lo) : 1.0);
    lo -= pad;
    hi += pad;
  }
  double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
  a.step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  if (integer && a.step < 1) a.step = 1; /* steps and epochs are whole numbers */
  a.lo = floor(lo / a.step) * a.step;
  a.hi = ceil(hi / a.step) * a.step;
  a.decimals = a.step >= 1 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
  return a;
}

static void range_of(const struct series *s, double *lo, double *hi, int use_x) {
  for (long i = 0; i < s->n; i++) {
    double v = use_x ? s->x[i] : s->y[i];
    if (!isfinite(v)) continue;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
  }
}

struct panel {
  int x, y, w, h; /* the plot area in pixels */
  struct axis ax, ay;
};

/* The axes' ends sit INSET pixels inside the frame, so markers on the
 * extreme points are drawn whole (matplotlib's margins). */
enum { INSET = 8 };

static double px(const struct panel *p, double v) {
  return p->x + INSET + (v - p->ax.lo) / (p->ax.hi - p->ax.lo) * (p->w - 1 - 2 * INSET);
}
static double py(const struct panel *p, double v) {
  return p->y + p->h - 1 - INSET - (v - p->ay.lo) / (p->ay.hi - p->ay.lo) * (p->h - 1 - 2 * INSET);
}

static void tick_label(char *buf, size_t len, double v, const struct axis *a) {
  if (fabs(v) < 1e-9 * a->step) v = 0; /* no "-0" */
  snprintf(buf, len, "%.*f", a->decimals, v);
}

static void draw_axes(struct canvas *c, const struct panel *p, const char *title,
                      const char *xlabel, const char *ylabel) {
  char buf[32];
  for (int k = 0;; k++) {
    double v = p->ax.lo + k * p->ax.step;
    if (v > p->ax.hi + 1e-9 * p->ax.step) break;
    int x = (int)lround(px(p, v));
    canvas_fill_rect(c, x, p->y, 1, p->h, grid);
    canvas_fill_rect(c, x, p->y + p->h, 1, 5, frame);
    tick_label(buf, sizeof buf, v, &p->ax);
    canvas_text(c, x - text_width(buf, 1) / 2, p->y + p->h + 8, buf, black, 1);
  }
  for (int k = 0;; k++) {
    double v = p->ay.lo + k * p->ay.step;
    if (v > p->ay.hi + 1e-9 * p->ay.step) break;
    int y = (int)lround(py(p, v));
    canvas_fill_rect(c, p->x, y, p->w, 1, grid);
    canvas_fill_rect(c, p->x - 5, y, 5, 1, frame);
    tick_label(buf, sizeof buf, v, &p->ay);
    canvas_text(c, p->x - 8 - text_width(buf, 1), y - 3, buf, black, 1);
  }
  canvas_rect(c, p->x - 1, p->y - 1, p->w + 2, p->h + 2, frame);
  canvas_text(c, p->x + (p->w - text_width(title, 2)) / 2, p->y - 28, title, black, 2);
  canvas_text(c, p->x + (p->w - text_width(xlabel, 1)) / 2, p->y + p->h + 24, xlabel, black, 1);
  canvas_text_up(c, p->x - 62, p->y + (p->h + text_width(ylabel, 1)) / 2, ylabel, black, 1);
}

enum marker { MARK_NONE, MARK_CIRCLE, MARK_SQUARE };

static void draw_marker(struct canvas *c, int x, int y, enum marker m, struct rgb col) {
  if (m == MARK_SQUARE) canvas_fill_rect(c, x - 3, y - 3, 7, 7, col);
  if (m == MARK_CIRCLE)
    for (int dy = -4; dy <= 4; dy++)
      for (int dx = -4; dx <= 4; dx++)
        if (dx * dx + dy * dy <= 12) canvas_pixel(c, x + dx, y + dy, col);
}

/* Consecutive finite points joined by a line `width` pixels wide; a
 * non-finite value (a diverged loss) breaks the line. */
static void draw_series(struct canvas *c, const struct panel *p, const struct series *s,
                        struct rgb col, int width, enum marker m) {
  for (long i = 0; i < s->n; i++) {
    if (!isfinite(s->y[i])) continue;
    double x1 = px(p, s->x[i]), y1 = py(p, s->y[i]);
    if (i > 0 && isfinite(s->y[i - 1])) {
      double x0 = px(p, s->x[i - 1]), y0 = py(p, s->y[i - 1]);
      for (int d = 0; d < width; d++) {
        canvas_line(c, x0, y0 + d, x1, y1 + d, col);
        canvas_line(c, x0 + d, y0, x1 + d, y1, col);
      }
    }
    draw_marker(c, (int)lround(x1), (int)lround(y1), m, col);
  }
}

static void legend_entry(struct canvas *c, int x, int y, const char *label, struct rgb col,
                         enum marker m) {
  canvas_fill_rect(c, x, y + 3, 24, 2, col);
  draw_marker(c, x + 12, y + 4, m, col);
  canvas_text(c, x + 32, y, label, black, 1);
}

static int draw(const struct curves *cv, const char *out, struct ct_err *e) {
  struct canvas c;
  if (canvas_init(&c, PLOT_W, PLOT_H, white, e)) return e->code;

  double lo = INFINITY, hi = -INFINITY, xlo = INFINITY, xhi = -INFINITY;
  range_of(&cv->train_loss, &lo, &hi, 0);
  range_of(&cv->val_loss, &lo, &hi, 0);
  range_of(&cv->train_loss, &xlo, &xhi, 1);
  range_of(&cv->val_loss, &xlo, &xhi, 1);
  struct panel loss = {90, 50, 430, 320, make_axis(xlo, xhi, 1), make_axis(lo, hi, 0)};
  draw_axes(&c, &loss, "Loss (train vs. validation)", "step", "cross-entropy loss");
  draw_series(&c, &loss, &cv->train_loss, blue, 1, MARK_NONE);
  draw_series(&c, &loss, &cv->val_loss, orange, 2, MARK_SQUARE);
  int lx = loss.x + loss.w - 130, ly = loss.y + 10;
  canvas_fill_rect(&c, lx, ly, 120, 42, white);
  canvas_rect(&c, lx, ly, 120, 42, grid);
  legend_entry(&c, lx + 10, ly + 10, "train", blue, MARK_NONE);
  legend_entry(&c, lx + 10, ly + 26, "validation", orange, MARK_SQUARE);

  lo = xlo = INFINITY;
  hi = xhi = -INFINITY;
  range_of(&cv->val_acc, &lo, &hi, 0);
  range_of(&cv->val_acc, &xlo, &xhi, 1);
  struct panel acc = {640, 50, 430, 320, make_axis(xlo, xhi, 1), make_axis(lo, hi, 0)};
  draw_axes(&c, &acc, "Validation accuracy", "epoch", "accuracy (%)");
  if (cv->val_acc.n == 0) {
    const char *none = "no validation rows";
    canvas_text(&c, acc.x + (acc.w - text_width(none, 2)) / 2, acc.y + acc.h / 2 - 7, none, frame,
                2);
  }
  draw_series(&c, &acc, &cv->val_acc, green, 2, MARK_CIRCLE);

  int rc = png_write(out, &c, e);
  canvas_free(&c);
  return rc;
}

int viz_plot(const char *run_dir, const char *out_png, struct ct_err *e) {
  char metrics[4200], out[4200];
  if (snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run_dir) >= (int)sizeof metrics)
    return err_set(e, CT_ERR_USAGE, "%s: run directory path too long", run_dir);
  if (!out_png) {
    if (snprintf(out, sizeof out, "%s/curves.png", run_dir) >= (int)sizeof out)
      return err_set(e, CT_ERR_USAGE, "%s: run directory path too long", run_dir);
    out_png = out;
  }
  struct curves cv = {0};
  int rc = read_metrics(metrics, &cv, e);
  if (!rc) rc = draw(&cv, out_png, e);
  if (!rc) log_info("learning curves -> %s", out_png);
  curves_free(&cv);
  return rc;
}
