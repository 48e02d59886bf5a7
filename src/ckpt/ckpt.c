/* ckpt.c — checkpoint save and load. */
#include "ckpt/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "h5/h5io.h"

static hid_t h5_type(enum dtype dt) {
  switch (dt) {
  case DT_F32:
    return H5T_NATIVE_FLOAT;
  case DT_I32:
    return H5T_NATIVE_INT32;
  case DT_I64:
    return H5T_NATIVE_INT64;
  case DT_U8:
    return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_FLOAT;
}

static int is_state(const struct tensor *t) {
  return (t->kind == TK_PARAM || t->kind == TK_BUFFER) && t->name[0];
}

/* Host staging for tensors in backend memory: NULL on the cpu backend, whose
 * memory HDF5 reads and writes directly; else a buffer for the largest
 * parameter or buffer. */
static int stage_alloc(const struct graph *g, void **stage, struct ct_err *e) {
  *stage = NULL;
  if (backend_host_memory(g->ops)) return CT_OK;
  size_t bytes = 1;
  for (int i = 0; i < g->ntensors; i++) {
    const struct tensor *t = &g->tensors[i];
    if (is_state(t) && t->numel * dtype_size(t->dtype) > bytes)
      bytes = t->numel * dtype_size(t->dtype);
  }
  *stage = malloc(bytes);
  if (!*stage) return err_set(e, CT_ERR_RUNTIME, "out of memory for checkpoint staging");
  return CT_OK;
}

/* `bytes` of backend memory at p, readable on the host. */
static const void *to_host(const struct ops_backend *o, const void *p, size_t bytes, void *stage) {
  if (!stage) return p;
  o->download(o, stage, p, bytes);
  return stage;
}

static int write_tensor(hid_t f, const char *group, const struct tensor *t, const void *data,
                        const char *file, struct ct_err *e) {
  char name[GRAPH_NAME_LEN + 32];
  hsize_t dims[GRAPH_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++)
    dims[i] = (hsize_t)t->shape[i];
  snprintf(name, sizeof name, "%s/%s", group, t->name);
  return h5io_write(f, name, h5_type(t->dtype), t->ndim, dims, data, file, e);
}

/* The root attributes as one text, for `meta_crc32`: a flipped bit in `step`
 * or any other position must make the file count as damaged. */
static uint32_t meta_crc(const struct ckpt_meta *m, long schedule_step, long optimizer_step,
                         const char *version) {
  char head[512];
  int n = snprintf(head, sizeof head, "%ld\n%s\n%s\n%ld\n%ld\n%ld\n%ld\n%ld\n%a\n%ld\n%ld\n",
                   (long)CKPT_FORMAT_VERSION, version, m->model, m->num_classes, m->step, m->epoch,
                   m->epoch_batch, schedule_step, m->lr, m->world_size, optimizer_step);
  return h5io_crc32(h5io_crc32(0, head, (size_t)n), m->config, strlen(m->config));
}

static int save_body(hid_t f, const char *file, const struct graph *g, const struct optimizer *o,
                     const struct ckpt_meta *meta, const uint64_t *rng, int rng_words, void *stage,
                     struct ct_err *e) {
  if (rng) {
    hsize_t dims[2] = {(hsize_t)meta->world_size, (hsize_t)rng_words};
    if (h5io_write(f, "/rng/state", H5T_NATIVE_UINT64, 2, dims, rng, file, e)) return e->code;
  }
  for (int i = 0; i < g->ntensors; i++) {
    const struct tensor *t = &g->tensors[i];
    if (!is_state(t)) continue;
    size_t bytes = t->numel * dtype_size(t->dtype);
    if (write_tensor(f, "/model", t, to_host(g->ops, t->data, bytes, stage), file, e))
      return e->code;
    if (t->kind != TK_PARAM || !o) continue;
    size_t off = (size_t)((const float *)t->data - g->params);
    if (write_tensor(f, "/optim/exp_avg", t, to_host(o->ops, o->m + off, bytes, stage), file, e))
      return e->code;
    if (o->kind != OPTIM_SGD &&
        write_tensor(f, "/optim/exp_avg_sq", t, to_host(o->ops, o->v + off, bytes, stage), file, e))
      return e->code;
  }
  if (h5io_attr_write_long(f, "format_version", CKPT_FORMAT_VERSION, file, e) ||
      h5io_attr_write_str(f, "ctrain_version", CTRAIN_VERSION, file, e) ||
      h5io_attr_write_str(f, "model", meta->model, file, e) ||
      h5io_attr_write_long(f, "num_classes", meta->num_classes, file, e) ||
      h5io_attr_write_long(f, "step", meta->step, file, e) ||
      h5io_attr_write_long(f, "epoch", meta->epoch, file, e) ||
      h5io_attr_write_long(f, "epoch_batch", meta->epoch_batch, file, e) ||
      h5io_attr_write_long(f, "schedule_step", meta->step, file, e) ||
      h5io_attr_write_double(f, "lr", meta->lr, file, e) ||
      h5io_attr_write_long(f, "world_size", meta->world_size, file, e) ||
      h5io_attr_write_long(f, "optimizer_step", o ? o->step : 0, file, e) ||
      h5io_attr_write_str(f, "config", meta->config, file, e) ||
      h5io_attr_write_long(f, "meta_crc32",
                           (long)meta_crc(meta, meta->step, o ? o->step : 0, CTRAIN_VERSION), file,
                           e))
    return e->code;
  return CT_OK;
}

static int fsync_path(const char *path, int directory) {
  int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int ckpt_save(const char *path, const struct graph *g, const struct optimizer *o,
              const struct ckpt_meta *meta, const uint64_t *rng, int rng_words, struct ct_err *e) {
  char tmp[4200], dir[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  void *stage;
  if (stage_alloc(g, &stage, e)) return e->code;
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  const char *d = slash ? dir : ".";
  errno = 0;
  hid_t f = h5io_ckpt_create(tmp, e);
  int rc = f < 0 ? e->code : save_body(f, tmp, g, o, meta, rng, rng_words, stage, e);
  free(stage);
  int saved = errno;
  if (f >= 0) {
    int before = rc;
    /* A failed close can be a full disk that the writes did not see. */
    if ((rc = h5io_close_file(f, rc, tmp, e)) && !before) saved = errno;
  }
  if (!rc && fsync_path(tmp, 0) != 0) {
    saved = errno;
    rc = err_set(e, CT_ERR_RUNTIME, "%s: fsync failed: %s", tmp, strerror(errno));
  }
  if (!rc && rename(tmp, path) != 0) {
    saved = errno;
    rc = err_set(e, CT_ERR_RUNTIME, "%s: rename to %s failed: %s", tmp, path, strerror(errno));
  }
  if (rc) {
    struct statvfs vfs;
    if (saved == ENOSPC || saved == EDQUOT || (statvfs(d, &vfs) == 0 && vfs.f_bavail == 0))
      err_set(e, CT_ERR_RUNTIME, "%s: no space left on device (checkpoint not written)", path);
    unlink(tmp);
    return rc;
  }
  fsync_path(d, 1);
  return CT_OK;
}

static int read_meta(hid_t f, const char *path, struct ckpt_meta *m, struct ct_err *e) {
  long version;
  memset(m, 0, sizeof *m);
  if (!h5io_attr_exists(f, "format_version"))
    return err_set(e, CT_ERR_RUNTIME,
                   "%s: not a ctrain checkpoint (no format_version attribute; a dataset file?)",
                   path);
  if (h5io_attr_read_long(f, "format_version", &version, path, e)) return e->code;
  /* Format 2 had no root checksum: refused, since a damaged step in such a
   * file cannot be told from a good one and resuming from it can delete the
   * older checkpoints. */
  if (version != CKPT_FORMAT_VERSION)
    return err_set(e, CT_ERR_RUNTIME, "%s: checkpoint format %ld, this ctrain reads %d", path,
                   version, CKPT_FORMAT_VERSION);
  if (h5io_attr_read_str(f, "model", m->model, sizeof m->model, path, e) ||
      h5io_attr_read_long(f, "num_classes", &m->num_classes, path, e) ||
      h5io_attr_read_long(f, "step", &m->step, path, e) ||
      h5io_attr_read_long(f, "epoch", &m->epoch, path, e) ||
      h5io_attr_read_long(f, "epoch_batch", &m->epoch_batch, path, e) ||
      h5io_attr_read_double(f, "lr", &m->lr, path, e) ||
      h5io_attr_read_long(f, "world_size", &m->world_size, path, e) ||
      h5io_attr_read_str(f, "config", m->config, sizeof m->config, path, e))
    return e->code;
  long schedule_step, optimizer_step, crc;
  char ver[64];
  if (h5io_attr_read_long(f, "schedule_step", &schedule_step, path, e) ||
      h5io_attr_read_long(f, "optimizer_step", &optimizer_step, path, e) ||
      h5io_attr_read_str(f, "ctrain_version", ver, sizeof ver, path, e) ||
      h5io_attr_read_long(f, "meta_crc32", &crc, path, e))
    return e->code;
  if ((uint32_t)crc != meta_crc(m, schedule_step, optimizer_step, ver))
    return err_set(e, CT_ERR_RUNTIME, "%s: checksum mismatch in the root attributes (corrupt file)",
                   path);
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  long named;
  char tail[8];
  if (sscanf(base, "step_%8ld.h5%7s", &named, tail) == 1 && strlen(base) == 16 && named != m->step)
    return err_set(e, CT_ERR_RUNTIME, "%s: holds step %ld, its name says %ld (damaged file)", path,
                   m->step, named);
  return CT_OK;
}

int ckpt_read_meta(const char *path, struct ckpt_meta *meta, struct ct_err *e) {
  hid_t f = h5io_ckpt_open(path, e);
  if (f < 0) return e->code;
  int rc = read_meta(f, path, meta, e);
  h5io_close(&f);
  return rc;
}

int ckpt_read_rng(const char *path, uint64_t *rng, long ranks, int words, struct ct_err *e) {
  hid_t f = h5io_ckpt_open(path, e);
  if (f < 0) return e->code;
  int ndim = 0, rc;
  hsize_t dims[8];
  rc = h5io_shape(f, "/rng/state", &ndim, dims, path, e);
  if (!rc && (ndim != 2 || dims[0] != (hsize_t)ranks || dims[1] != (hsize_t)words))
    rc = err_set(e, CT_ERR_RUNTIME, "%s: /rng/state is not (%ld, %d) as world_size says", path,
                 ranks, words);
  if (!rc) rc = h5io_read(f, "/rng/state", H5T_NATIVE_UINT64, (size_t)ranks * words, rng, path, e);
  h5io_close(&f);
  return rc;
}

/* Reads group/name into `data`, backend memory of `o`, through `stage`. */
static int load_tensor(hid_t f, const char *path, const char *group, const struct tensor *t,
                       const struct ops_backend *o, void *data, void *stage, struct ct_err *e) {
  char name[GRAPH_NAME_LEN + 32];
  int nd;
  hsize_t dims[8];
  snprintf(name, sizeof name, "%s/%s", group, t->name);
  if (h5io_shape(f, name, &nd, dims, path, e)) return e->code;
  int same = nd == t->ndim;
  for (int i = 0; same && i < nd; i++)
    same = dims[i] == (hsize_t)t->shape[i];
  if (!same) {
    char file_shape[128], model_shape[128];
    hsize_t mdims[8];
    for (int i = 0; i < t->ndim; i++)
      mdims[i] = (hsize_t)t->shape[i];
    h5io_shape_name(nd, dims, file_shape, sizeof file_shape);
    h5io_shape_name(t->ndim, mdims, model_shape, sizeof model_shape);
    return err_set(e, CT_ERR_USAGE, "%s: '%s' is %s in the checkpoint, %s in the model", path, name,
                   file_shape, model_shape);
  }
  if (h5io_read(f, name, h5_type(t->dtype), t->numel, stage ? stage : data, path, e))
    return e->code;
  if (stage) o->upload(o, data, stage, t->numel * dtype_size(t->dtype));
  return CT_OK;
}

int ckpt_load(const char *path, struct graph *g, struct optimizer *o, struct ct_err *e) {
  void *stage;
  if (stage_alloc(g, &stage, e)) return e->code;
  hid_t f = h5io_ckpt_open(path, e);
  if (f < 0) {
    free(stage);
    return e->code;
  }
  struct ckpt_meta meta;
  int rc = read_meta(f, path, &meta, e);
  for (int i = 0; !rc && i < g->ntensors; i++) {
    const struct tensor *t = &g->tensors[i];
    if (!is_state(t)) continue;
    rc = load_tensor(f, path, "/model", t, g->ops, t->data, stage, e);
    if (rc || t->kind != TK_PARAM || !o) continue;
    size_t off = (size_t)((const float *)t->data - g->params);
    rc = load_tensor(f, path, "/optim/exp_avg", t, o->ops, o->m + off, stage, e);
    if (!rc && o->kind != OPTIM_SGD)
      rc = load_tensor(f, path, "/optim/exp_avg_sq", t, o->ops, o->v + off, stage, e);
  }
  if (!rc && o) rc = h5io_attr_read_long(f, "optimizer_step", &o->step, path, e);
  h5io_close(&f);
  free(stage);
  return rc;
}

int ckpt_verify(const char *path, struct ct_err *e) {
  hid_t f = h5io_ckpt_open(path, e);
  if (f < 0) return e->code;
  struct ckpt_meta *meta = malloc(sizeof *meta);
  int rc = meta ? read_meta(f, path, meta, e) : err_set(e, CT_ERR_RUNTIME, "out of memory");
  free(meta);
  if (!rc) rc = h5io_walk(f, NULL, path, e);
  h5io_close(&f);
  return rc;
}

int ckpt_inspect(const char *path, FILE *out, struct ct_err *e) {
  hid_t f = h5io_ckpt_open(path, e);
  if (f < 0) return e->code;
  int rc = h5io_walk(f, out, path, e);
  /* A checkpoint (a dataset file has no format_version) is verified as
   * resume would: the metadata's checksum too, and the verdict said. */
  if (!rc && h5io_attr_exists(f, "format_version") > 0) {
    struct ckpt_meta *meta = malloc(sizeof *meta);
    rc = meta ? read_meta(f, path, meta, e) : err_set(e, CT_ERR_RUNTIME, "out of memory");
    free(meta);
    if (!rc) fprintf(out, "verified: metadata and every dataset match their checksums\n");
  }
  h5io_close(&f);
  return rc;
}
