#include "data/tar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { BLOCK = 512 };

struct tar_reader {
  gzFile gz;
  const char *path;
  uint8_t *buf;
  size_t cap;
};

/* Reads exactly n bytes; a short read means a truncated or corrupt archive. */
static int read_exact(struct tar_reader *r, void *dst, size_t n, struct ct_err *e) {
  uint8_t *p = dst;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? 1u << 30 : (unsigned)n;
    int got = gzread(r->gz, p, chunk);
    if (got <= 0) {
      int zerr = 0;
      const char *msg = gzerror(r->gz, &zerr);
      return err_set(e, CT_ERR_RUNTIME, "%s: archive is truncated or corrupt (%s)", r->path,
                     zerr ? msg : "unexpected end of data");
    }
    p += got;
    n -= (size_t)got;
  }
  return CT_OK;
}

/* Octal, or GNU base-256 when the top bit of the first byte is set. */
static int parse_size(const uint8_t *f, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (f[0] & 0x80) {
    for (size_t i = 1; i < len; i++)
      v = (v << 8) | f[i];
    *out = v;
    return 0;
  }
  size_t i = 0;
  while (i < len && f[i] == ' ')
    i++;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; i++)
    v = v * 8 + (uint64_t)(f[i] - '0');
  if (i < len && f[i] != 0 && f[i] != ' ') return -1;
  *out = v;
  return 0;
}

/* Finds "path=" in a pax extended header: records are "<len> key=value\n". */
static int pax_path(const uint8_t *data, size_t size, char **out) {
  size_t off = 0;
  while (off < size) {
    size_t len = 0, i = off;
    while (i < size && data[i] >= '0' && data[i] <= '9')
      len = len * 10 + (size_t)(data[i++] - '0');
    if (len == 0 || off + len > size || i >= size || data[i] != ' ') return -1;
    const char *kv = (const char *)data + i + 1;
    size_t kvlen = off + len - (i + 1);
    if (kvlen > 5 && !memcmp(kv, "path=", 5)) {
      size_t n = kvlen - 5 - (kv[kvlen - 1] == '\n');
      free(*out);
      if (!(*out = malloc(n + 1))) return -1;
      memcpy(*out, kv + 5, n);
      (*out)[n] = 0;
    }
    off += len;
  }
  return 0;
}

static int grow(struct tar_reader *r, size_t n, struct ct_err *e) {
  if (n <= r->cap) return CT_OK;
  uint8_t *p = realloc(r->buf, n);
  if (!p) return err_set(e, CT_ERR_RUNTIME, "%s: out of memory (entry of %zu bytes)", r->path, n);
  r->buf = p;
  r->cap = n;
  return CT_OK;
}

static int walk(struct tar_reader *r, tar_entry_fn fn, void *ctx, struct ct_err *e) {
  uint8_t h[BLOCK];
  char *long_name = NULL, name[256 + 2];
  int rc = CT_OK;
  for (;;) {
    if ((rc = read_exact(r, h, BLOCK, e))) break;
    int zero = 1;
    for (int i = 0; i < BLOCK && zero; i++)
      zero = h[i] == 0;
    if (zero) break; /* end-of-archive marker */
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++)
      sum += (i >= 148 && i < 156) ? ' ' : h[i];
    uint64_t stored = 0, size = 0;
    if (parse_size(h + 148, 8, &stored) || stored != sum || parse_size(h + 124, 12, &size)) {
      rc = err_set(e, CT_ERR_RUNTIME, "%s: not a tar archive (bad header checksum)", r->path);
      break;
    }
    size_t padded = (size_t)((size + BLOCK - 1) / BLOCK * BLOCK);
    if ((rc = grow(r, padded + 1, e)) || (rc = read_exact(r, r->buf, padded, e))) break;
    char type = (char)h[156];
    if (type == 'L' || type == 'x') {
      int bad = 0;
      if (type == 'L') {
        free(long_name);
        long_name = strndup((const char *)r->buf, (size_t)size);
        bad = !long_name;
      } else {
        bad = pax_path(r->buf, (size_t)size, &long_name) != 0;
      }
      if (bad) {
        rc = err_set(e, CT_ERR_RUNTIME, "%s: bad long-name record in archive", r->path);
        break;
      }
      continue;
    }
    if (type != '0' && type != 0 && type != '5') {
      free(long_name); /* links, devices, global headers: not dataset content */
      long_name = NULL;
      continue;
    }
    if (!long_name) {
      /* ustar splits long paths into prefix (345..500) and name (0..100). */
      int ustar = !memcmp(h + 257, "ustar\0", 6);
      size_t plen = ustar ? strnlen((const char *)h + 345, 155) : 0;
      size_t nlen = strnlen((const char *)h, 100);
      snprintf(name, sizeof name, "%.*s%s%.*s", (int)plen, (const char *)h + 345, plen ? "/" : "",
               (int)nlen, (const char *)h);
    }
    const char *entry = long_name ? long_name : name;
    rc = fn(ctx, entry, type == '5' ? NULL : r->buf, (size_t)size, e);
    free(long_name);
    long_name = NULL;
    if (rc) break;
  }
  free(long_name);
  return rc;
}

int tar_walk(const char *path, tar_entry_fn fn, void *ctx, struct ct_err *e) {
  struct tar_reader r = {.path = path};
  r.gz = gzopen(path, "rb");
  if (!r.gz)
    return err_set(e, CT_ERR_RUNTIME, "%s: %s", path, errno ? strerror(errno) : "cannot open");
  gzbuffer(r.gz, 1 << 18);
  int rc = walk(&r, fn, ctx, e);
  gzclose(r.gz);
  free(r.buf);
  return rc;
}
