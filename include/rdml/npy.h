/* rdml/npy.h — numpy .npy files: header parsing, partial reads with pread, writing.
 *
 * Example:
 *
 *   // Read rows [lo, hi) and the columns cols[0..ncols) of an fMRI file without loading it.
 *   int read_part(rdml_ctx *ctx, const char *path, int64_t lo, int64_t hi, const int64_t *cols,
 *                 int64_t ncols, float **blk) {
 *       rdml_npy f;                                // path: "subj01/.../lh_training_fmri.npy"
 *       RDML_TRY(rdml_npy_open(ctx, path, 0, &f)); // f.ndim == 2: f.shape[0] images x vertices
 *       *blk = rdml_malloc(ctx, (size_t)((hi - lo) * ncols + 1) * sizeof(float), "fmri block");
 *       int rc = *blk ? rdml_npy_read_f32(ctx, &f, lo, hi, cols, ncols, *blk)  // row-major
 *                     : ctx->code;                                            // (hi-lo) x ncols
 *       rdml_npy_close(&f);
 *       return rc;
 *   }
 *
 * Supported: versions 1.0, 2.0, 3.0; dtypes <f4 <f8 <i4 <i8 |u1 |b1 (and their big-endian
 * forms >f4 ..., byte-swapped on read), fortran_order True/False, shapes of 0 to 8 dims,
 * '|O' headers (object arrays; only the header, for rdml/pymap.h). Not collective.
 */
#ifndef RDML_NPY_H
#define RDML_NPY_H

#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_dtype {
    RDML_DT_F4 = 0, /* float32 */
    RDML_DT_F8,     /* float64 */
    RDML_DT_I4,     /* int32 */
    RDML_DT_I8,     /* int64 */
    RDML_DT_U1,     /* uint8 */
    RDML_DT_B1,     /* bool, one byte 0/1 */
    RDML_DT_OBJ     /* '|O' pickled object: header only */
} rdml_dtype;

#define RDML_NPY_MAXDIM 8

typedef struct rdml_npy {
    char *path;          /* owned copy, for messages */
    int fd;              /* -1 when closed */
    int major, minor;    /* format version */
    rdml_dtype dtype;
    int itemsize;        /* bytes per element */
    int swap;            /* stored big-endian: bytes are swapped on read */
    int fortran_order;   /* element (i,j) at j*shape[0] + i */
    int ndim;
    int64_t shape[RDML_NPY_MAXDIM];
    int64_t count;       /* product of shape (1 for shape ()) */
    int64_t data_offset; /* byte offset of the first element */
    int64_t file_size;
} rdml_npy;

/* Name as numpy spells it, e.g. "<f4". */
const char *rdml_dtype_name(rdml_dtype t);
int rdml_dtype_size(rdml_dtype t);

/* Open and validate the header: magic, version, header length inside the file, dict syntax
 * (any key order, spacing, trailing comma, 10L longs), supported descr, and for non-object
 * dtypes that the file size equals data_offset + count * itemsize. writable opens O_RDWR.
 * On error nothing stays open and the message names the path and what is wrong. */
int rdml_npy_open(rdml_ctx *ctx, const char *path, int writable, rdml_npy *out);
/* Parse a header from memory (the first `len` bytes of a file): for fuzzing and tests.
 * Fills everything but path/fd/file_size; does not check the data size. */
int rdml_npy_parse_header(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                          rdml_npy *out);
/* Close the file and free path; safe on a zeroed or closed struct. */
void rdml_npy_close(rdml_npy *f);

/* Rows [row_lo, row_hi) of a 1-D or 2-D numeric array (1-D: one column), columns `cols`
 * (ncols of them, any order, repeats allowed; NULL = all columns in order, with ncols 0 or
 * the column count), converted to float / double / int64 and stored row-major in out
 * ((row_hi - row_lo) x ncols). A 0-d array reads as one row of one column. Reads with pread
 * in bounded chunks, never the whole file unless asked for it. int64 conversion refuses
 * non-integral floating values. */
int rdml_npy_read_f32(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                      const int64_t *cols, int64_t ncols, float *out);
int rdml_npy_read_f64(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                      const int64_t *cols, int64_t ncols, double *out);
int rdml_npy_read_i64(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                      const int64_t *cols, int64_t ncols, int64_t *out);

/* Write a whole array (C order unless fortran_order) as numpy would: little-endian, format
 * 1.0 unless the header needs 2.0, header padded with spaces so the data starts at a
 * multiple of 64 bytes, ending in '\n'. Written to path.tmp-<pid> then renamed. */
int rdml_npy_save(rdml_ctx *ctx, const char *path, rdml_dtype dtype, int fortran_order,
                  int ndim, const int64_t *shape, const void *data);

/* For parallel writers: write the header and size the file (ftruncate) to its final length,
 * zero-filled, so ranks can then fill disjoint rows with rdml_npy_write_rows. C order only. */
int rdml_npy_create(rdml_ctx *ctx, const char *path, rdml_dtype dtype, int ndim,
                    const int64_t *shape);
/* Write rows [row_lo, row_hi) from src (row-major, the file's dtype) with pwrite. The file
 * must have been opened writable. */
int rdml_npy_write_rows(rdml_ctx *ctx, const rdml_npy *f, int64_t row_lo, int64_t row_hi,
                        const void *src);

#ifdef __cplusplus
}
#endif
#endif
