/* ckpt_dir.c — the checkpoints/ directory of a run: names, latest,
 * rotation, setting aside and the resume pick. */
#include "ckpt/ckpt_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "core/log.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ckpt_dir_step_path(char *out, size_t len, const char *run_dir, long step) {
  snprintf(out, len, "%s/checkpoints/step_%08ld.h5", run_dir, step);
}

static int is_ckpt_name(const char *name) {
  size_t len = strlen(name);
  return strncmp(name, "step_", 5) == 0 && len > 8 && strcmp(name + len - 3, ".h5") == 0;
}

/* The checkpoints directly in run_dir/checkpoints, newest first; n < 0 when
 * the directory cannot be read. Free with free_names. */
static int list_checkpoints(const char *run_dir, struct dirent ***list) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
  int n = scandir(dir, list, NULL, alphasort), kept = 0;
  for (int i = 0; i < n; i++) {
    struct dirent *d = (*list)[i];
    if (is_ckpt_name(d->d_name))
      (*list)[kept++] = d;
    else
      free(d);
  }
  for (int i = 0; i < kept / 2; i++) {
    struct dirent *d = (*list)[i];
    (*list)[i] = (*list)[kept - 1 - i];
    (*list)[kept - 1 - i] = d;
  }
  return n < 0 ? n : kept;
}

static void free_names(struct dirent **list, int n) {
  for (int i = 0; i < n; i++)
    free(list[i]);
  if (n >= 0) free(list);
}

int ckpt_dir_clean_tmp(const char *run_dir, struct ct_err *e) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
  DIR *dp = opendir(dir);
  if (!dp)
    return errno == ENOENT
               ? CT_OK
               : err_set(e, CT_ERR_RUNTIME, "%s: cannot read: %s", dir, strerror(errno));
  struct dirent *de;
  while ((de = readdir(dp))) {
    size_t len = strlen(de->d_name);
    if (len <= 7 || strcmp(de->d_name + len - 7, ".h5.tmp") != 0) continue;
    char p[4500];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    if (unlink(p) != 0) {
      int rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot remove: %s", p, strerror(errno));
      closedir(dp);
      return rc;
    }
  }
  closedir(dp);
  return CT_OK;
}

int ckpt_dir_commit(const char *run_dir, long step, int keep, struct ct_err *e) {
  char latest[4200], tmp[4300];
  snprintf(latest, sizeof latest, "%s/checkpoints/latest", run_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", latest);
  FILE *f = fopen(tmp, "w");
  int ok = f && fprintf(f, "step_%08ld.h5\n", step) > 0;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, latest) != 0) {
    int err = errno;
    if (f) unlink(tmp);
    return err_set(e, CT_ERR_RUNTIME, "%s: cannot write: %s", latest,
                   err == ENOSPC ? "no space left on device" : strerror(err));
  }
  struct dirent **list;
  int n = list_checkpoints(run_dir, &list);
  for (int i = keep; i < n; i++) {
    char old[4500];
    snprintf(old, sizeof old, "%s/checkpoints/%s", run_dir, list[i]->d_name);
    unlink(old);
  }
  free_names(list, n);
  return CT_OK;
}

int ckpt_dir_set_aside(const char *run_dir, char *aside, size_t len, int *moved, struct ct_err *e) {
  *moved = 0;
  struct dirent **list;
  int n = list_checkpoints(run_dir, &list), rc = CT_OK;
  if (n <= 0) {
    free_names(list, n);
    return CT_OK;
  }
  for (int k = 1;; k++) {
    snprintf(aside, len, "%s/checkpoints/previous_%d", run_dir, k);
    if (mkdir(aside, 0777) == 0) break;
    if (errno != EEXIST) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot create directory: %s", aside, strerror(errno));
      break;
    }
  }
  for (int i = 0; i < n && !rc; i++) {
    char from[4500], to[4500];
    snprintf(from, sizeof from, "%s/checkpoints/%s", run_dir, list[i]->d_name);
    snprintf(to, sizeof to, "%s/%s", aside, list[i]->d_name);
    if (rename(from, to) != 0)
      rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot move to %s: %s", from, aside, strerror(errno));
    else
      ++*moved;
  }
  free_names(list, n);
  if (!rc) {
    char from[4500], to[4500];
    snprintf(from, sizeof from, "%s/checkpoints/latest", run_dir);
    snprintf(to, sizeof to, "%s/latest", aside);
    if (rename(from, to) != 0 && errno != ENOENT)
      rc = err_set(e, CT_ERR_RUNTIME, "%s: cannot move to %s: %s", from, aside, strerror(errno));
  }
  return rc;
}

/* Loads `path` (verified first, so a bad file leaves the model untouched). */
static int try_resume(const char *path, const char *model, struct graph *g, struct optimizer *o,
                      int rng_words, struct ckpt_resume *r, struct ct_err *e) {
  struct ckpt_meta *meta = calloc(1, sizeof *meta);
  if (!meta) return err_set(e, CT_ERR_RUNTIME, "out of memory");
  double t0 = now_s();
  uint64_t *rng = NULL;
  int rc = ckpt_verify(path, e);
  if (!rc) rc = ckpt_read_meta(path, meta, e);
  if (!rc && strcmp(meta->model, model) != 0)
    rc = err_set(e, CT_ERR_USAGE, "%s holds a '%s' model, the config trains '%s'", path,
                 meta->model, model);
  if (!rc && !(rng = calloc((size_t)meta->world_size * rng_words, sizeof *rng)))
    rc = err_set(e, CT_ERR_RUNTIME, "out of memory");
  if (!rc) rc = ckpt_read_rng(path, rng, meta->world_size, rng_words, e);
  /* The data order is a function of (seed, epoch, batch) only, the same on
   * every rank: rows that differ mean the ranks had diverged. */
  for (long i = 1; !rc && i < meta->world_size; i++)
    if (memcmp(rng, rng + i * rng_words, (size_t)rng_words * sizeof *rng) != 0)
      rc =
          err_set(e, CT_ERR_RUNTIME, "%s: /rng/state differs between rank 0 and rank %ld", path, i);
  if (!rc) rc = ckpt_load(path, g, o, e);
  if (!rc) {
    r->step = meta->step;
    r->world_size = meta->world_size;
    snprintf(r->path, sizeof r->path, "%s", path);
    memcpy(r->rng, rng, (size_t)rng_words * sizeof *rng);
    log_info("resumed from %s at step %ld (saved by %ld ranks; verified and loaded in %.1f ms)",
             path, meta->step, meta->world_size, 1e3 * (now_s() - t0));
  }
  free(rng);
  free(meta);
  return rc;
}

int ckpt_dir_resume(const char *run_dir, const char *how, const char *model, struct graph *g,
                    struct optimizer *o, int rng_words, struct ckpt_resume *r, struct ct_err *e) {
  CT_CHECK(rng_words > 0 && rng_words <= CKPT_RNG_MAX_WORDS);
  memset(r, 0, sizeof *r);
  if (ckpt_dir_clean_tmp(run_dir, e)) return e->code;
  if (strcmp(how, "none") == 0) {
    char aside[4300];
    int moved;
    if (ckpt_dir_set_aside(run_dir, aside, sizeof aside, &moved, e)) return e->code;
    if (moved)
      log_info("run.resume = none: the %d checkpoint(s) already in %s/checkpoints moved to %s",
               moved, run_dir, aside);
    return CT_OK;
  }
  if (strcmp(how, "auto") != 0) return try_resume(how, model, g, o, rng_words, r, e);
  struct dirent **list;
  int n = list_checkpoints(run_dir, &list), rc = CT_OK, loaded = 0;
  for (int i = 0; i < n && !loaded; i++) {
    char path[4500];
    snprintf(path, sizeof path, "%s/checkpoints/%s", run_dir, list[i]->d_name);
    rc = try_resume(path, model, g, o, rng_words, r, e);
    if (rc == CT_ERR_USAGE) {
      char why[sizeof e->msg];
      snprintf(why, sizeof why, "%s", e->msg);
      err_set(e, CT_ERR_USAGE,
              "%s: run.dir %s holds another run's checkpoints, left untouched (set run.resume = "
              "none or a new run.dir)",
              why, run_dir);
      break;
    }
    loaded = rc == CT_OK;
    if (!loaded)
      log_error("%s; %s", e->msg,
                i + 1 < n ? "falling back to the previous checkpoint" : "starting fresh");
  }
  free_names(list, n);
  return rc == CT_ERR_USAGE ? rc : CT_OK;
}
