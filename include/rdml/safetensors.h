/* rdml/safetensors.h — reading tensors from a .safetensors file.
 *
 * Example:
 *
 *   int load_projection(rdml_ctx *ctx, const char *path, float **w, int64_t *count) {
 *       rdml_safetensors *st;                              // path: "model.safetensors"
 *       RDML_TRY(rdml_safetensors_open(ctx, path, &st));
 *       const rdml_st_tensor *t = rdml_safetensors_find(st, "visual_projection.weight");
 *       int rc = RDML_OK;
 *       *w = NULL;
 *       if (!t) rc = RDML_FAIL(ctx, RDML_EFORMAT, "%s has no visual_projection.weight", path);
 *       else *w = rdml_malloc(ctx, (size_t)t->count * sizeof **w, t->name);  // t->dtype, ndim,
 *       if (*w) rc = rdml_safetensors_read_f32(ctx, st, t, *w);  // shape[]; F32, F16, BF16, F64
 *       else if (!rc) rc = ctx->code;                            // converted
 *       if (!rc) *count = t->count;
 *       rdml_safetensors_close(&st);
 *       return rc;
 *   }
 *
 * The layout: 8-byte little-endian header length N, N bytes of JSON (parsed with jansson)
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, "__metadata__": {..}},
 * then the data; offsets are relative to the byte after the header. Validated as the
 * reference reader does: header <= 100 MB and inside the file, every entry well formed,
 * e - b == elements x dtype size, offsets contiguous from 0 without gaps or overlaps, and the
 * data ending exactly at the end of the file. Errors name the file and the tensor.
 * Not collective; data is read with pread (offsets need not be aligned).
 */
#ifndef RDML_SAFETENSORS_H
#define RDML_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rdml_st_dtype {
    RDML_ST_F32 = 0, RDML_ST_F16, RDML_ST_BF16, RDML_ST_F64, RDML_ST_I64, RDML_ST_I32,
    RDML_ST_I16, RDML_ST_I8, RDML_ST_U8, RDML_ST_BOOL, RDML_ST_NDTYPE
} rdml_st_dtype;

const char *rdml_st_dtype_name(rdml_st_dtype t); /* "F32", ... */
int rdml_st_dtype_size(rdml_st_dtype t);

#define RDML_ST_MAXDIM 8

typedef struct rdml_st_tensor {
    char *name;
    rdml_st_dtype dtype;
    int ndim;
    int64_t shape[RDML_ST_MAXDIM];
    int64_t count;      /* product of shape */
    int64_t begin, end; /* byte offsets relative to the data start */
} rdml_st_tensor;

typedef struct rdml_safetensors rdml_safetensors;

int rdml_safetensors_open(rdml_ctx *ctx, const char *path, rdml_safetensors **out);
/* Parse a whole file image held in memory (for fuzzing and tests); `what` names it. The
 * returned handle reads tensor data from the buffer, which must outlive it. */
int rdml_safetensors_parse(rdml_ctx *ctx, const char *what, const uint8_t *buf, size_t len,
                           rdml_safetensors **out);
void rdml_safetensors_close(rdml_safetensors **st);
int64_t rdml_safetensors_count(const rdml_safetensors *st);
const rdml_st_tensor *rdml_safetensors_at(const rdml_safetensors *st, int64_t i);
/* NULL when absent. */
const rdml_st_tensor *rdml_safetensors_find(const rdml_safetensors *st, const char *name);
/* The tensor's position i for rdml_safetensors_at (0 .. count - 1), -1 when absent. */
int64_t rdml_safetensors_index(const rdml_safetensors *st, const char *name);
const char *rdml_safetensors_path(const rdml_safetensors *st);
/* Read a float tensor (F32, F16, BF16 or F64) converted to float32, count values. */
int rdml_safetensors_read_f32(rdml_ctx *ctx, const rdml_safetensors *st,
                              const rdml_st_tensor *t, float *out);

#ifdef __cplusplus
}
#endif
#endif
