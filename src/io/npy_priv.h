/* src/io/npy_priv.h — pieces of npy.c shared with pymap.c (not part of the public API). */
#ifndef RDML_IO_NPY_PRIV_H
#define RDML_IO_NPY_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/npy.h"

/* The header numpy 1.24 writes for this array (magic, version, length, dict, padding, '\n'),
 * into buf (cap bytes). Returns its length, or 0 when it does not fit or the shape is invalid. */
size_t rdml_npy_header_bytes(char *buf, size_t cap, rdml_dtype dtype, int fortran_order,
                             int ndim, const int64_t *shape);

/* Write a then b to path.tmp-<pid>, then rename to path. On failure the temporary file is
 * removed, an existing file at path is untouched, and ctx names the path. */
int rdml_npy_write_atomic(rdml_ctx *ctx, const char *path, const void *a, size_t alen,
                          const void *b, size_t blen);

/* pread exactly n bytes at off; a short read is an error naming f->path ("truncated?"). */
int rdml_npy_pread_all(rdml_ctx *ctx, const char *path, int fd, void *buf, size_t n,
                       int64_t off);

#endif
