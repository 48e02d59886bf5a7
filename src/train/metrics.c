/* metrics.c — JSON lines and the progress bar. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

int metrics_open(struct metrics *m, const char *path, struct ct_err *e) {
  m->tty = isatty(STDOUT_FILENO);
  m->f = fopen(path, "a");
  if (!m->f)
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot open for writing: %s", path, strerror(errno));
  return CT_OK;
}

/* JSON has no NaN/Inf: write null so the line still parses. */
static void put_num(FILE *f, const char *key, double v) {
  if (isfinite(v))
    fprintf(f, ",\"%s\":%.9g", key, v);
  else
    fprintf(f, ",\"%s\":null", key);
}

void metrics_write(struct metrics *m, const struct metrics_row *r) {
  if (!m->f) return;
  fprintf(m->f, "{\"split\":\"%s\",\"epoch\":%ld,\"step\":%ld", r->split, r->epoch, r->step);
  put_num(m->f, "loss", r->loss);
  if (r->acc >= 0) put_num(m->f, "acc", r->acc);
  if (r->lr >= 0) put_num(m->f, "lr", r->lr);
  if (r->rate >= 0) put_num(m->f, r->rate_key ? r->rate_key : "images_per_s", r->rate);
  for (int n = 0; r->bleu && n < 4; n++) {
    char key[8];
    snprintf(key, sizeof key, "bleu%d", n + 1);
    put_num(m->f, key, r->bleu[n]);
  }
  fputs("}\n", m->f);
  fflush(m->f);
}

void metrics_close(struct metrics *m) {
  if (m->f) fclose(m->f);
  m->f = NULL;
}

void metrics_progress(const struct metrics *m, long epoch, long epochs, long batch, long batches,
                      double eta_s, double loss, double acc, double rate) {
  if (!m->f) return; /* only rank 0 has the metrics file open, and only it prints */
  char bar[31];
  int fill = batches > 0 ? (int)(30 * batch / batches) : 30;
  for (int i = 0; i < 30; i++)
    bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[30] = '\0';
  long eta = (long)(eta_s > 0 ? eta_s : 0);
  printf("%sepoch %ld/%ld [%s] %ld/%ld ETA %02ld:%02ld loss %.4f acc %5.1f%% %.0f %s%s",
         m->tty ? "\r" : "", epoch, epochs, bar, batch, batches, eta / 60, eta % 60, loss,
         100.0 * acc, rate, m->rate_unit ? m->rate_unit : "img/s", m->tty ? "" : "\n");
  fflush(stdout);
}

void metrics_progress_end(const struct metrics *m) {
  if (m->f && m->tty) {
    putchar('\n');
    fflush(stdout);
  }
}
