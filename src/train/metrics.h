/* metrics.h — metrics.jsonl (one JSON object per line) and the console
 * progress line. Only rank 0 opens them. */
#ifndef CTRAIN_METRICS_H
#define CTRAIN_METRICS_H

#include <stdio.h>

#include "core/error.h"

struct metrics {
  FILE *f;
  int tty;
  const char *rate_unit; /* of the progress line's rate: "img/s" when NULL */
};

struct metrics_row {
  const char *split; /* train, val, test */
  long epoch, step;
  double loss, acc;     /* acc < 0: omitted */
  double lr;            /* < 0: omitted */
  double rate;          /* rows per second; < 0: omitted */
  const char *rate_key; /* the rate's key: "images_per_s" when NULL */
  const double *bleu;   /* captioning: corpus BLEU-1..4 as bleu1..bleu4; NULL: omitted */
};

int metrics_open(struct metrics *m, const char *path, struct ct_err *e);
void metrics_write(struct metrics *m, const struct metrics_row *r);
void metrics_close(struct metrics *m);

/* Console progress, on rank 0 only: a bar with ETA on a terminal, a plain line otherwise
 * (every call prints one line when not a terminal). */
void metrics_progress(const struct metrics *m, long epoch, long epochs, long batch, long batches,
                      double eta_s, double loss, double acc, double rate);
void metrics_progress_end(const struct metrics *m);

#endif
