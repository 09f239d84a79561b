/* rdml/h5.h — parallel HDF5 helpers for results files.
 *
 * Example:
 *
 *   // Every rank writes its own row slab [row_lo, row_lo + nrows) of an N x D float32 dataset.
 *   int save_rows(rdml_ctx *ctx, MPI_Comm comm, const char *path, int64_t N, int64_t D,
 *                 int64_t row_lo, int64_t nrows, const float *my_rows) {
 *       rdml_h5 *h;
 *       RDML_TRY(rdml_h5_create(ctx, comm, path, &h));  // writes results.h5.tmp-XXXX
 *       const char *dset = "/subjects/subj01/embeddings/gabor";
 *       int rc = rdml_h5_write_rows_f32(ctx, h, dset, N, D, row_lo, nrows, my_rows);
 *       if (!rc) rc = rdml_h5_attr_str(ctx, h, dset, "units", "a.u.");
 *       if (!rc) rc = rdml_h5_commit(ctx, &h);  // renames to path: a file that exists is complete
 *       else rdml_h5_abort(&h);                 // removes the temporary file; path untouched
 *       return rc;
 *   }
 *
 * Numeric datasets of at least RDML_H5_SPLIT_BYTES bytes (default 16 MiB) written through a
 * writable handle go into a side file, <path>.d/<job>.h5, linked from the results file by an
 * HDF5 external link (h5py follows it), so that opening a large file for writing copies only
 * the small file. Committed side files never change (changing such a dataset copies it into
 * the handle's own side file); commit deletes those nothing links to; abort deletes its own.
 *
 * Every function here is collective over the communicator given at create/open time and
 * returns the same status on every rank (errors are agreed with rdml_agree before returning),
 * so a failure never hangs. Intermediate groups are created as needed. h5py reads every
 * object written here (strings are variable-length UTF-8).
 */
#ifndef RDML_H5_H
#define RDML_H5_H

#include <mpi.h>
#include <stdint.h>

#include "rdml/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rdml_h5 rdml_h5;

/* Collective. Create a new results file at a temporary name beside `path`
 * (path + ".tmp-" + a job-unique suffix); `path` itself is not touched until commit. */
int rdml_h5_create(rdml_ctx *ctx, MPI_Comm comm, const char *path, rdml_h5 **out);
/* Collective. Open an existing file read-only (writable = 0), or copy it to a temporary name
 * and open that read-write (writable = 1: changes appear at `path` only on commit). */
int rdml_h5_open(rdml_ctx *ctx, MPI_Comm comm, const char *path, int writable, rdml_h5 **out);
/* Collective. Flush, close, and (if written) atomically rename the temporary file to its
 * final path. Sets *h to NULL in all cases. */
int rdml_h5_commit(rdml_ctx *ctx, rdml_h5 **h);
/* Collective. Close and delete the temporary file; the final path is left as it was.
 * Accepts NULL / *h == NULL. */
void rdml_h5_abort(rdml_h5 **h);

/* Collective. Does an object (group or dataset) exist at this path? */
int rdml_h5_exists(rdml_ctx *ctx, rdml_h5 *h, const char *obj, int *exists);
/* Collective. Remove the object at this path (a group with everything below it) if it
 * exists; the space is reused by later writes. */
int rdml_h5_delete(rdml_ctx *ctx, rdml_h5 *h, const char *obj);
/* Collective. Create a group (and parents). Existing groups are fine. */
int rdml_h5_group(rdml_ctx *ctx, rdml_h5 *h, const char *group);
/* Collective. The names of the links in a group, sorted by name (none if the group does not
 * exist); free with rdml_h5_free_strings. */
int rdml_h5_list(rdml_ctx *ctx, rdml_h5 *h, const char *group, char ***names, int64_t *n);

/* Collective. Write a rows x cols float32 dataset (created chunked if absent; it must have
 * these dims if present); this rank writes rows [row_lo, row_lo + nrows) from `data`
 * (row-major, nrows x cols). nrows may be 0. */
int rdml_h5_write_rows_f32(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                           int64_t cols, int64_t row_lo, int64_t nrows, const float *data);
/* Same for float64 and int64 datasets. */
int rdml_h5_write_rows_f64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                           int64_t cols, int64_t row_lo, int64_t nrows, const double *data);
int rdml_h5_write_rows_i64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t rows,
                           int64_t cols, int64_t row_lo, int64_t nrows, const int64_t *data);
/* Collective. A 1-D dataset of n values that every rank holds alike (ids, per-fold scores);
 * an existing dataset of that name is replaced. */
int rdml_h5_write_vec_i64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t n,
                          const int64_t *data);
int rdml_h5_write_vec_f64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t n,
                          const double *data);
/* Collective. Read rows [row_lo, row_lo + nrows) of a 1-D or 2-D numeric dataset (any
 * stored float/int type, converted) into out (row-major, nrows x cols). */
int rdml_h5_read_rows_f32(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                          int64_t nrows, float *out);
int rdml_h5_read_rows_f64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                          int64_t nrows, double *out);
int rdml_h5_read_rows_i64(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int64_t row_lo,
                          int64_t nrows, int64_t *out);
/* Collective. Rank and dims of a dataset (dims has room for 8). */
int rdml_h5_dims(rdml_ctx *ctx, rdml_h5 *h, const char *dset, int *ndim, int64_t *dims);

/* Collective. Attributes on a group or dataset (created or overwritten). All ranks must pass
 * the same values. n == 1 writes a scalar attribute, otherwise a 1-D array. */
int rdml_h5_attr_str(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                     const char *value);
int rdml_h5_attr_i64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                     const int64_t *values, int64_t n);
int rdml_h5_attr_f64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                     const double *values, int64_t n);
/* Collective. Read attributes. Strings: *value is malloc'd. Arrays: up to cap values are
 * stored, *n gets the stored count. */
int rdml_h5_get_attr_str(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                         char **value);
int rdml_h5_get_attr_i64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                         int64_t *values, int64_t cap, int64_t *n);
int rdml_h5_get_attr_f64(rdml_ctx *ctx, rdml_h5 *h, const char *obj, const char *name,
                         double *values, int64_t cap, int64_t *n);

/* Collective. A 1-D dataset of n variable-length UTF-8 strings (all ranks pass the same). */
int rdml_h5_write_strings(rdml_ctx *ctx, rdml_h5 *h, const char *dset,
                          const char *const *strs, int64_t n);
/* Collective. Read it back: *strs is a malloc'd array of malloc'd strings; free with
 * rdml_h5_free_strings. */
int rdml_h5_read_strings(rdml_ctx *ctx, rdml_h5 *h, const char *dset, char ***strs,
                         int64_t *n);
void rdml_h5_free_strings(char **strs, int64_t n);

/* Not collective; call on one rank while no other command writes `path` (rdmlearn run does,
 * holding the output lock). Deletes the side files in <path>.d that neither `path` nor any
 * other HDF5 file in its folder links to: those of a command killed before its commit.
 * Returns how many, or -1 when `path` cannot be read (then nothing is deleted). */
int rdml_h5_remove_orphans(const char *path);

/* The final path this handle writes to / reads from. */
const char *rdml_h5_path(const rdml_h5 *h);

/* Not collective. Switch off HDF5's automatic printing of its error stacks (the HDF5-DIAG
 * lines) for this thread's default stack; callers turn failures into messages of their own.
 * With the environment variable RDML_DEBUG set (not 0), HDF5 prints its stacks as usual. */
void rdml_h5_quiet(void);
/* Not collective. The datasets in the HDF5 file at path, as "/features (30 x 512), /g/ids
 * (30)" (cut with ", ..." when buf is too small), for messages naming what a file holds.
 * Returns how many datasets there are, or -1 when the file cannot be opened as HDF5. */
int rdml_h5_list_datasets(const char *path, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
