/* data_fixtures.h — inputs for the data-layer tests, all generated on the
 * spot: a scratch directory, PNG/JPEG files, .tar.gz archives, raw HDF5. */
#ifndef CTRAIN_DATA_FIXTURES_H
#define CTRAIN_DATA_FIXTURES_H

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <dirent.h>
#include <jpeglib.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static char fx_root[64];

static inline const char *fx_dir(void) {
  if (!fx_root[0]) {
    snprintf(fx_root, sizeof fx_root, "/tmp/ctrain-data-XXXXXX");
    if (!mkdtemp(fx_root)) {
      perror("mkdtemp");
      exit(1);
    }
  }
  return fx_root;
}

/* A path under the scratch directory (rotating static buffers). */
static inline const char *fx_path(const char *rel) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  if (snprintf(b, sizeof bufs[0], "%s/%s", fx_dir(), rel) >= (int)sizeof bufs[0]) {
    fprintf(stderr, "fixture path too long: %s\n", rel);
    exit(1);
  }
  return b;
}

static inline void fx_mkdirs(const char *rel) {
  char p[512];
  snprintf(p, sizeof p, "%s", fx_path(rel));
  for (char *s = p + strlen(fx_dir()) + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      mkdir(p, 0755);
      *s = '/';
    }
  mkdir(p, 0755);
}

static inline void fx_rm(const char *p) {
  struct stat st;
  if (lstat(p, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(p);
    for (struct dirent *de; d && (de = readdir(d));) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      char sub[1024];
      if (snprintf(sub, sizeof sub, "%s/%s", p, de->d_name) < (int)sizeof sub) fx_rm(sub);
    }
    if (d) closedir(d);
  }
  remove(p);
}

static inline void fx_cleanup(void) {
  if (fx_root[0]) fx_rm(fx_root);
}

static inline void fx_write(const char *rel, const void *data, size_t n) {
  FILE *f = fopen(fx_path(rel), "wb");
  if (!f || fwrite(data, 1, n, f) != n) {
    perror(rel);
    exit(1);
  }
  fclose(f);
}

/* Encodes w x h pixels (HWC, `comps` = 1 or 3) into a malloc'd PNG. */
static inline size_t fx_png(const uint8_t *hwc, int w, int h, int comps, uint8_t **out) {
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)w;
  img.height = (png_uint_32)h;
  img.format = comps == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png_alloc_size_t n = 0;
  png_image_write_to_memory(&img, NULL, &n, 0, hwc, 0, NULL);
  *out = malloc(n);
  png_image_write_to_memory(&img, *out, &n, 0, hwc, 0, NULL);
  return n;
}

/* Encodes w x h pixels (HWC, 1 or 3 components) into a malloc'd JPEG. */
static inline size_t fx_jpeg(const uint8_t *hwc, int w, int h, int comps, int quality,
                             uint8_t **out) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  unsigned long n = 0;
  *out = NULL;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, out, &n);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = comps;
  c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)(hwc + (size_t)c.next_scanline * w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  return n;
}

/* A ustar .tar.gz of the given members; a NULL data pointer makes a directory. */
struct fx_member {
  const char *name;
  const uint8_t *data;
  size_t size;
};

static inline void fx_targz(const char *rel, const struct fx_member *m, int n) {
  gzFile gz = gzopen(fx_path(rel), "wb");
  uint8_t h[512], zero[1024] = {0};
  for (int i = 0; i < n; i++) {
    memset(h, 0, sizeof h);
    snprintf((char *)h, 100, "%s", m[i].name);
    snprintf((char *)h + 100, 8, "%07o", m[i].data ? 0644 : 0755);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011zo", m[i].data ? m[i].size : 0);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = m[i].data ? '0' : '5';
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int k = 0; k < 512; k++)
      sum += h[k];
    snprintf((char *)h + 148, 8, "%06o", sum);
    gzwrite(gz, h, 512);
    if (m[i].data) {
      gzwrite(gz, m[i].data, (unsigned)m[i].size);
      gzwrite(gz, zero, (unsigned)((512 - m[i].size % 512) % 512));
    }
  }
  gzwrite(gz, zero, sizeof zero);
  gzclose(gz);
}

#endif
