/* png.h — a small RGB canvas for the pictures a notebook would show a
 * student (learning curves, attention heat maps) and its PNG writer (libpng).
 * Drawing clips to the canvas, so callers may draw partly outside it. Text
 * uses a built-in 5x7 bitmap font (two more rows for descenders), 6 pixels
 * a character, scaled by an integer. */
#ifndef CTRAIN_VIZ_PNG_H
#define CTRAIN_VIZ_PNG_H

#include <stdint.h>

#include "core/error.h"

struct rgb {
  uint8_t r, g, b;
};

struct canvas {
  int w, h;
  uint8_t *px; /* h rows of w RGB triples */
};

/* A w x h canvas filled with bg; sizes must be positive. */
int canvas_init(struct canvas *c, int w, int h, struct rgb bg, struct ct_err *e);
void canvas_free(struct canvas *c);

void canvas_fill(struct canvas *c, struct rgb col);
void canvas_pixel(struct canvas *c, int x, int y, struct rgb col);
/* A one-pixel line between two points given in pixel coordinates (any
 * finite values: the segment is clipped to the canvas first). */
void canvas_line(struct canvas *c, double x0, double y0, double x1, double y1, struct rgb col);
/* Outline and filled w x h rectangles with top-left corner (x, y). */
void canvas_rect(struct canvas *c, int x, int y, int w, int h, struct rgb col);
void canvas_fill_rect(struct canvas *c, int x, int y, int w, int h, struct rgb col);

/* Viridis at t in [0, 1] (clamped; NaN gives the low end). */
struct rgb colormap_viridis(double t);

/* A w x h RGB image (rows of RGB triples) at (x, y), each pixel a
 * scale x scale block (nearest neighbour). */
void canvas_blit(struct canvas *c, int x, int y, const uint8_t *rgb, int w, int h, int scale);
/* v (rows, cols), row-major, as cell x cell blocks of viridis from lo (dark)
 * to hi (bright) at (x, y). */
void canvas_heatmap(struct canvas *c, int x, int y, const float *v, int rows, int cols, int cell,
                    double lo, double hi);

/* Draws s with its top-left at (x, y); characters without a glyph show as a
 * box. Returns the width drawn. */
int canvas_text(struct canvas *c, int x, int y, const char *s, struct rgb col, int scale);
int text_width(const char *s, int scale);
/* Draws s turned a quarter counter-clockwise (reading upwards, as a y-axis
 * label) with its first character's bottom-left corner at (x, y). */
void canvas_text_up(struct canvas *c, int x, int y, const char *s, struct rgb col, int scale);

/* Writes the canvas as an 8-bit RGB PNG; a failure removes the partial file
 * and is one line naming it. */
int png_write(const char *path, const struct canvas *c, struct ct_err *e);

#endif
