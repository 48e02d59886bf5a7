/* tar.h — a streaming reader for .tar.gz (or plain .tar) archives, enough for
 * dataset sources: ustar, GNU long names and pax path records. */
#ifndef CTRAIN_TAR_H
#define CTRAIN_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Called for each directory (data NULL) and regular file in archive order.
 * `data` is valid only during the call. A non-zero return stops the walk and
 * is returned by tar_walk. */
typedef int (*tar_entry_fn)(void *ctx, const char *name, const uint8_t *data, size_t size,
                            struct ct_err *e);

int tar_walk(const char *path, tar_entry_fn fn, void *ctx, struct ct_err *e);

#endif
