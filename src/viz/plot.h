/* plot.h — `ctrain plot`: the learning curves of a run (seed 000 §5.1) from
 * its metrics.jsonl as a PNG: loss against step (train rows as a line,
 * validation rows as markers at the step they were taken) and validation
 * accuracy against epoch. */
#ifndef CTRAIN_VIZ_PLOT_H
#define CTRAIN_VIZ_PLOT_H

#include "core/error.h"

enum { PLOT_W = 1100, PLOT_H = 440 }; /* the notebook's 11 x 4 inch figure at 100 dpi */

/* Reads RUN_DIR/metrics.jsonl and writes out_png (RUN_DIR/curves.png when
 * NULL). A line that is not a metrics object is an error naming the file and
 * line; rows logged again after a resume replace the earlier ones. */
int viz_plot(const char *run_dir, const char *out_png, struct ct_err *e);

#endif
