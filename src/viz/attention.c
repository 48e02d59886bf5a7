/* attention.c — attention weights of one image, to HDF5 and PNG. */
#include "viz/attention.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "config/config.h"
#include "core/log.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "h5/h5io.h"
#include "train/session.h"
#include "train/spec.h"
#include "viz/png.h"

enum {
  SIDE = DATASET_SIDE,
  IMG_SCALE = 8,
  IMG_PX = SIDE * IMG_SCALE, /* 256: the shown image and the heat map's box */
  MARGIN = 24,
  TOP = 64,     /* title and subtitle */
  BOTTOM = 64,  /* tick labels, axis label, captions */
  GAP = 84,     /* room for the heat map's y tick labels and axis label */
  BAR_W = 14,   /* colour bar */
  BAR_GAP = 12, /* heat map to colour bar */
  BAR_TEXT = 72 /* colour bar labels */
};

static const struct rgb white = {255, 255, 255}, black = {0, 0, 0}, grey = {90, 90, 90};

/* One image and what the model made of it. */
struct sample {
  const char *ckpt, *split, *model;
  long index;
  int label, predicted;
  const struct dataset_info *info;
  uint8_t rgb[SIDE * SIDE * 3]; /* HWC, for drawing */
};

/* Side of the square grid of image positions the tokens stand for, or 0
 * when they are something else (channels, ultimus's features). */
static int token_grid(const struct model_spec *spec, const struct attn_shape *a) {
  int side = 0;
  if (strcmp(spec->name, "attn_cnn") == 0) side = 8; /* the stem's 8x8 output positions */
  if (strcmp(spec->name, "vit") == 0) side = spec->image_h / spec->patch;
  return side > 0 && a->tq == side * side && a->tk == side * side ? side : 0;
}

static const char *mask_name(enum mask_kind m) {
  return m == MASK_CAUSAL ? "causal" : m == MASK_GIVEN ? "given" : "none";
}

/* --- HDF5 ------------------------------------------------------------------ */

static int write_root_attrs(hid_t f, const struct sample *s, int layers, const char *file,
                            struct ct_err *e) {
  const struct dataset_info *info = s->info;
  if (h5io_attr_write_str(f, "checkpoint", s->ckpt, file, e) ||
      h5io_attr_write_str(f, "model", s->model, file, e) ||
      h5io_attr_write_str(f, "split", s->split, file, e) ||
      h5io_attr_write_long(f, "index", s->index, file, e) ||
      h5io_attr_write_long(f, "label", s->label, file, e) ||
      h5io_attr_write_str(f, "label_name", info->classes[s->label], file, e) ||
      h5io_attr_write_long(f, "predicted", s->predicted, file, e) ||
      h5io_attr_write_str(f, "predicted_name", info->classes[s->predicted], file, e) ||
      h5io_attr_write_long(f, "layers", layers, file, e))
    return e->code;
  /* The class names as the dataset stores them: fixed-length strings, which
   * h5py reads as a list. */
  return h5io_attr_write_strs(f, "classes", info->classes, (size_t)info->num_classes,
                              DATASET_NAME_LEN, file, e);
}

static int write_layer(hid_t f, int layer, const struct attn_shape *a, const float *probs,
                       const char *file, struct ct_err *e) {
  char name[32];
  snprintf(name, sizeof name, "layer%d", layer);
  const hsize_t dims[3] = {(hsize_t)a->h, (hsize_t)a->tq, (hsize_t)a->tk};
  if (h5io_write(f, name, H5T_NATIVE_FLOAT, 3, dims, probs, file, e)) return e->code;
  return h5io_attr_write_str_of(f, name, "mask", mask_name(a->mask), file, e);
}

/* --- pictures --------------------------------------------------------------- */

static void centred(struct canvas *c, int x, int w, int y, const char *s, struct rgb col,
                    int scale) {
  canvas_text(c, x + (w - text_width(s, scale)) / 2, y, s, col, scale);
}

static void min_max(const float *v, size_t n, double *lo, double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < *lo) *lo = v[i];
    if (v[i] > *hi) *hi = v[i];
  }
}

/* The image with the map (side x side, values lo..hi) blended over it, so
 * the bright squares sit on the part of the picture they stand for. */
static void overlay(struct canvas *c, int x, int y, const struct sample *s, const float *map,
                    int side, double lo, double hi) {
  const double alpha = 0.6, span = hi > lo ? hi - lo : 1;
  for (int j = 0; j < IMG_PX; j++)
    for (int i = 0; i < IMG_PX; i++) {
      const uint8_t *p = s->rgb + ((size_t)(j / IMG_SCALE) * SIDE + i / IMG_SCALE) * 3;
      struct rgb m =
          colormap_viridis((map[(j * side / IMG_PX) * side + i * side / IMG_PX] - lo) / span);
      canvas_pixel(c, x + i, y + j,
                   (struct rgb){(uint8_t)lround((1 - alpha) * p[0] + alpha * m.r),
                                (uint8_t)lround((1 - alpha) * p[1] + alpha * m.g),
                                (uint8_t)lround((1 - alpha) * p[2] + alpha * m.b)});
    }
}

/* Labels for lo and hi with the fewest significant digits (3 or more) that
 * tell them apart: an untrained layer's weights can all lie within 1e-6. */
static int label_digits(double lo, double hi) {
  char a[32], b[32];
  for (int d = 3; d < 9; d++) {
    snprintf(a, sizeof a, "%.*g", d, lo);
    snprintf(b, sizeof b, "%.*g", d, hi);
    if (strcmp(a, b) != 0) return d;
  }
  return 9;
}

static void colour_bar(struct canvas *c, int x, int y, int h, double lo, double hi) {
  char buf[32];
  int digits = label_digits(lo, hi);
  for (int j = 0; j < h; j++)
    canvas_fill_rect(c, x, y + j, BAR_W, 1, colormap_viridis(1.0 - (double)j / (h - 1)));
  canvas_rect(c, x - 1, y - 1, BAR_W + 2, h + 2, grey);
  const double at[3] = {hi, 0.5 * (lo + hi), lo};
  for (int k = 0; k < 3; k++) {
    int ty = y + k * (h - 1) / 2;
    canvas_fill_rect(c, x + BAR_W + 1, ty, 4, 1, grey);
    snprintf(buf, sizeof buf, "%.*g", digits, at[k]);
    canvas_text(c, x + BAR_W + 8, ty - 3, buf, black, 1);
  }
}

/* The image with its true and predicted class, as the notebook's left panel. */
static void image_panel(struct canvas *c, int x, int y, const struct sample *s) {
  char buf[96];
  canvas_blit(c, x, y, s->rgb, SIDE, SIDE, IMG_SCALE);
  snprintf(buf, sizeof buf, "input (class: %s)", s->info->classes[s->label]);
  centred(c, x, IMG_PX, y + IMG_PX + 10, buf, black, 1);
  snprintf(buf, sizeof buf, "predicted: %s", s->info->classes[s->predicted]);
  centred(c, x, IMG_PX, y + IMG_PX + 24, buf, black, 1);
}

/* The (tq, tk) weights of one head at (x, y) in cell x cell squares, with
 * first/last tick labels, axis labels and a colour bar. */
static void heat_panel(struct canvas *c, int x, int y, const struct attn_shape *a, const float *w,
                       int cell) {
  char buf[16];
  double lo, hi;
  min_max(w, (size_t)a->tq * a->tk, &lo, &hi);
  int mw = a->tk * cell, mh = a->tq * cell;
  canvas_heatmap(c, x, y, w, a->tq, a->tk, cell, lo, hi);
  canvas_rect(c, x - 1, y - 1, mw + 2, mh + 2, grey);
  canvas_text(c, x, y + mh + 6, "0", black, 1);
  snprintf(buf, sizeof buf, "%d", a->tk - 1);
  canvas_text(c, x + mw - text_width(buf, 1), y + mh + 6, buf, black, 1);
  canvas_text(c, x - 6 - text_width("0", 1), y, "0", black, 1);
  snprintf(buf, sizeof buf, "%d", a->tq - 1);
  canvas_text(c, x - 6 - text_width(buf, 1), y + mh - 7, buf, black, 1);
  centred(c, x, mw, y + mh + 20, "key position (j)", black, 1);
  const char *ylabel = "query position (i)";
  canvas_text_up(c, x - 40, y + (mh + text_width(ylabel, 1)) / 2, ylabel, black, 1);
  colour_bar(c, x + mw + BAR_GAP, y, mh, lo, hi);
}

/* The weight each key position receives from the average query, on the
 * image: where in the picture the layer looks. */
static void key_map_panel(struct canvas *c, int x, int y, const struct sample *s,
                          const struct attn_shape *a, const float *w, int side) {
  float map[SIDE * SIDE]; /* token_grid's side is at most the image's */
  for (int j = 0; j < a->tk; j++) {
    double sum = 0;
    for (int i = 0; i < a->tq; i++)
      sum += w[(size_t)i * a->tk + j];
    map[j] = (float)(sum / a->tq);
  }
  double lo, hi;
  min_max(map, (size_t)a->tk, &lo, &hi);
  overlay(c, x, y, s, map, side, lo, hi);
  canvas_rect(c, x - 1, y - 1, IMG_PX + 2, IMG_PX + 2, grey);
  char buf[96];
  centred(c, x, IMG_PX, y + IMG_PX + 10, "mean query's weight on each key", black, 1);
  int digits = label_digits(lo, hi);
  snprintf(buf, sizeof buf, "(%dx%d positions, %.*g to %.*g)", side, side, digits, lo, digits, hi);
  centred(c, x, IMG_PX, y + IMG_PX + 24, buf, black, 1);
}

static int head_png(const char *dir, int layer, int head, const struct sample *s,
                    const struct attn_shape *a, const float *w, int side, struct ct_err *e) {
  int n = a->tq > a->tk ? a->tq : a->tk;
  int cell = n >= IMG_PX ? 1 : IMG_PX / n;
  int mw = a->tk * cell, mh = a->tq * cell, box = mh > IMG_PX ? mh : IMG_PX;
  int heat_x = MARGIN + IMG_PX + GAP, bar_end = heat_x + mw + BAR_GAP + BAR_W + BAR_TEXT;
  int width = bar_end + (side ? IMG_PX + MARGIN : 0) + MARGIN;
  struct canvas c;
  if (canvas_init(&c, width, TOP + box + BOTTOM, white, e)) return e->code;
  char buf[160];
  snprintf(buf, sizeof buf, "Attention weights - layer %d, head %d", layer, head);
  canvas_text(&c, MARGIN, 14, buf, black, 2);
  snprintf(buf, sizeof buf,
           "%s, %s, %d queries x %d keys; row i: the weights query i puts on the keys (sum 1)",
           s->model,
           a->mask == MASK_NONE     ? "no mask"
           : a->mask == MASK_CAUSAL ? "causal mask"
                                    : "given mask",
           a->tq, a->tk);
  canvas_text(&c, MARGIN, 38, buf, grey, 1);
  image_panel(&c, MARGIN, TOP, s);
  heat_panel(&c, heat_x, TOP, a, w, cell);
  if (side) key_map_panel(&c, bar_end + MARGIN, TOP, s, a, w, side);
  char path[4200];
  snprintf(path, sizeof path, "%s/attention_layer%d_head%d.png", dir, layer, head);
  int rc = png_write(path, &c, e);
  canvas_free(&c);
  return rc;
}

static int input_png(const char *dir, const struct sample *s, struct ct_err *e) {
  struct canvas c;
  if (canvas_init(&c, IMG_PX, IMG_PX, white, e)) return e->code;
  canvas_blit(&c, 0, 0, s->rgb, SIDE, SIDE, IMG_SCALE);
  char path[4200];
  snprintf(path, sizeof path, "%s/input.png", dir);
  int rc = png_write(path, &c, e);
  canvas_free(&c);
  return rc;
}

/* --- the model ------------------------------------------------------------- */

static int split_size(const struct dataset_info *info, const char *split) {
  return !strcmp(split, "train") ? info->n_train
         : !strcmp(split, "val") ? info->n_val
                                 : info->n_test;
}

/* Builds the checkpoint's model for one image and loads its weights. The cpu
 * backend: a single image needs no device, and the weights can be read
 * straight from the graph's memory. */
static int load_model(const char *ckpt, const struct config *cfg, const struct dataset_info *info,
                      struct session *s, struct ct_err *e) {
  struct model_spec spec;
  /* A batch of one: eval-mode BatchNorm uses its running statistics, so the
   * image's output does not depend on the batch it is in. */
  if (model_spec_from_config(cfg, info, 1, &spec, e)) return e->code;
  int threads = cfg->run.threads > 0 ? cfg->run.threads : omp_get_num_procs();
  return session_load(s, ops_cpu(), &spec, threads, cfg->train.seed, ckpt, e);
}

static int count_attention(const struct graph *g) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++)
    n += g->nodes[i].op == OP_ATTENTION;
  return n;
}

/* One eval-mode forward of the image; fills s->predicted. */
static void run_image(struct session *ss, const struct config *cfg, const struct dataset_info *info,
                      const uint8_t *chw, struct sample *s) {
  struct augment_cfg aug = augment_defaults(); /* no flags: conversion and normalisation only */
  int norm = cfg->data.normalize;
  augment_image(&aug, chw, ss->x.host, norm ? info->mean : NULL, norm ? info->std : NULL, 0, 0);
  ((int32_t *)ss->y.host)[0] = s->label;
  session_upload_batch(ss);
  ss->g.training = 0;
  graph_forward(&ss->g);
  const float *logits = session_logits(ss);
  s->predicted = 0;
  for (int k = 1; k < info->num_classes; k++)
    if (logits[k] > logits[s->predicted]) s->predicted = k;
}

static int write_outputs(const char *dir, const struct graph *g, const struct model_spec *spec,
                         const struct sample *s, struct ct_err *e) {
  char h5[4200];
  snprintf(h5, sizeof h5, "%s/attention.h5", dir);
  hid_t f = h5io_create_file(h5, e);
  if (f < 0) return e->code;
  int rc = write_root_attrs(f, s, count_attention(g), h5, e), layer = 0;
  for (int i = 0; !rc && i < g->nnodes; i++) {
    const struct node *n = &g->nodes[i];
    if (n->op != OP_ATTENTION) continue;
    /* probs (b, h, tq, tk) with b = 1: the image's heads are the whole tensor */
    const float *probs = tensor_f32(g, n->saved[0]);
    const struct attn_shape *a = &n->p.attn;
    rc = write_layer(f, layer, a, probs, h5, e);
    int side = token_grid(spec, a);
    for (int h = 0; !rc && h < a->h; h++)
      rc = head_png(dir, layer, h, s, a, probs + (size_t)h * a->tq * a->tk, side, e);
    layer++;
  }
  rc = h5io_close_file(f, rc, h5, e);
  if (!rc) rc = input_png(dir, s, e);
  if (!rc)
    log_info("attention: %d layer(s) of %s for %s image %ld -> %s", layer, s->model, s->split,
             s->index, dir);
  return rc;
}

int viz_attention(const char *ckpt, const char *data, const char *split, long index,
                  const char *out_dir, struct ct_err *e) {
  if (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test"))
    return err_set(e, CT_ERR_USAGE, "--split must be train, val or test (got '%s')", split);
  struct sample *s = calloc(1, sizeof *s);
  if (!s) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  struct dataset_info info;
  struct session ss;
  uint8_t chw[DATASET_IMAGE_BYTES];
  int32_t label = 0;
  int built = 0, rc;
  struct session_ckpt *k = NULL;
  rc = session_ckpt_read(ckpt, &k, e);
  const struct ckpt_meta *meta = k ? &k->meta : NULL;
  const struct config *cfg = k ? &k->cfg : NULL;
  if (!rc) rc = dataset_read_info(data, &info, e);
  if (!rc && info.num_classes != meta->num_classes)
    rc = err_set(e, CT_ERR_USAGE, "%s has %d classes, the model in %s predicts %ld", data,
                 info.num_classes, ckpt, meta->num_classes);
  if (!rc && (index < 0 || index >= split_size(&info, split)))
    rc = err_set(e, CT_ERR_USAGE, "%s: --index %ld is out of range: split '%s' has %d images", data,
                 index, split, split_size(&info, split));
  if (!rc) rc = dataset_read_rows(data, split, &index, 1, chw, &label, e);
  if (!rc) rc = load_model(ckpt, cfg, &info, &ss, e);
  built = !rc;
  if (!rc && count_attention(&ss.g) == 0)
    rc = err_set(e, CT_ERR_USAGE, "%s: model '%s' has no attention layers", ckpt, ss.spec.name);
  if (!rc && mkdir(out_dir, 0777) != 0 && errno != EEXIST)
    rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot create directory: %s", out_dir, strerror(errno));
  if (!rc) {
    *s = (struct sample){.ckpt = ckpt,
                         .split = split,
                         .model = ss.spec.name,
                         .index = index,
                         .label = label,
                         .info = &info};
    for (int p = 0; p < SIDE * SIDE; p++)
      for (int ch = 0; ch < 3; ch++)
        s->rgb[p * 3 + ch] = chw[ch * SIDE * SIDE + p];
    run_image(&ss, cfg, &info, chw, s);
    rc = write_outputs(out_dir, &ss.g, &ss.spec, s, e);
  }
  if (built) session_free(&ss);
  free(k);
  free(s);
  return rc;
}
